-- Herald schema version 1: the event log and the invocation log.

-- Identifies this Herald database. Payload ids (and the webhook-id header) are UUIDs made of
-- this id and the event's number, so they are unique across databases while the log itself
-- keys on a sequential bigint: a random-UUID primary key made captured inserts measurably
-- slower (index pages touched at random instead of appended).
CREATE TABLE herald.installation (
    singleton   boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    id          uuid        NOT NULL DEFAULT gen_random_uuid(),
    created_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO herald.installation DEFAULT VALUES;

-- One row per captured change (or manual invocation). The row is the unit of delivery and
-- keeps its id across every attempt and every redelivery.
CREATE TABLE herald.event_log (
    id               bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    trigger_name     text        NOT NULL,
    schema_name      text        NOT NULL,
    table_name       text        NOT NULL,
    -- The Hasura "event" object: {op, data: {old, new}, session_variables, trace_context}.
    payload          jsonb       NOT NULL,
    status           text        NOT NULL DEFAULT 'pending'
                                 CHECK (status IN ('pending', 'delivered', 'failed')),
    -- Attempts made so far; delivery_info.current_retry of the next attempt.
    tries            integer     NOT NULL DEFAULT 0 CHECK (tries >= 0),
    created_at       timestamptz NOT NULL DEFAULT now(),
    -- When the event is next due. A claim moves it to the lease expiry, so an expired
    -- lease makes the event due again without any extra condition in the claim query.
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    locked_at        timestamptz,
    locked_by        text,
    -- When the event left pending (delivered or failed).
    finished_at      timestamptz,
    last_status_code integer,
    last_error       text
);

-- The claim query's index: only pending events, ordered by due time. Delivered and failed
-- rows are not in it, so claiming stays constant-time however long the log grows.
CREATE INDEX event_log_pending_due ON herald.event_log (next_attempt_at)
    WHERE status = 'pending';

-- One row per delivery attempt.
CREATE TABLE herald.invocation_log (
    id               bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id         bigint      NOT NULL REFERENCES herald.event_log (id) ON DELETE CASCADE,
    trigger_name     text        NOT NULL,
    -- 1 for the first attempt.
    attempt          integer     NOT NULL CHECK (attempt >= 1),
    -- HTTP status when a response arrived; otherwise NULL and error_class says why.
    status_code      integer,
    -- timeout | connection | dns | redirect | http | tls | protocol | internal
    error_class      text,
    error_message    text,
    -- Headers as sent, with secret values replaced by "<redacted>".
    request_headers  jsonb       NOT NULL DEFAULT '{}',
    -- Truncated to worker.stored_response_bytes.
    response_body    text,
    duration_ms      double precision NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX invocation_log_event ON herald.invocation_log (event_id);
