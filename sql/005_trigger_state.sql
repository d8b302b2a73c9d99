-- Herald schema version 5: trigger state every worker honours, and shared rate limits.

-- One row per trigger that was ever disabled, enabled or had its breaker change state. A
-- missing row means enabled. Every worker's claim skips disabled triggers, so a disable by
-- an operator, a receiver (410 Gone, webhook-delivery: disable) or disable_after holds for
-- the whole fleet; their events stay pending until `herald enable-trigger`.
CREATE TABLE herald.trigger_state (
    trigger_name        text        PRIMARY KEY,
    enabled             boolean     NOT NULL DEFAULT true,
    changed_at          timestamptz NOT NULL DEFAULT now(),
    -- Why and by whom it was last disabled or enabled.
    reason              text,
    changed_by          text,
    -- The circuit breaker as last reported by a worker (breakers are per worker process).
    circuit_state       text        NOT NULL DEFAULT 'closed'
                                    CHECK (circuit_state IN ('closed', 'open', 'half_open')),
    circuit_changed_at  timestamptz,
    circuit_worker      text
);

-- Token buckets of `rate_limit: {shared: true}` triggers. Workers reserve tokens in blocks
-- (about a quarter second's worth), one statement per block, not per event.
CREATE TABLE herald.rate_limit_bucket (
    trigger_name  text             PRIMARY KEY,
    tokens        double precision NOT NULL,
    refilled_at   timestamptz      NOT NULL,
    -- Tokens handed out by the last reservation (read back by the reserving worker).
    granted       integer          NOT NULL DEFAULT 0
);
