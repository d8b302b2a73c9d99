-- Herald schema version 16: the resumable stream (GET /v1/stream/{trigger}).
--
-- A stream replays a trigger's events in commit order and follows new ones. Ids are drawn
-- when a row is captured, not when its transaction commits, so an event can commit after a
-- later-numbered one: a reader that remembered "up to id N" would skip it. A stream cursor
-- remembers a snapshot instead ("everything visible in it has been served"), and each event
-- records the transaction that wrote it; the events after a cursor are those whose
-- transaction the snapshot did not see: begun at or after its xmax, or in progress (its xip
-- list). PostgreSQL's own visibility rules decide, so nothing a snapshot had not seen is
-- ever skipped and nothing it had seen is served twice.
--
-- The column is added without a default first, so existing rows are not rewritten (a
-- volatile default would rewrite the table); they stay NULL and are not in any stream. The
-- default then applies to every new row. pg_current_xact_id() returns the top-level
-- transaction's id (the one snapshots list), also for a capture inside a savepoint; the
-- writer's transaction has one already, since it wrote the captured row.
ALTER TABLE herald.event_log ADD COLUMN xid xid8;
ALTER TABLE herald.event_log ALTER COLUMN xid SET DEFAULT pg_catalog.pg_current_xact_id();

-- A stream reads one trigger's events by transaction range, then id within a transaction
-- (a page may end inside a large transaction).
CREATE INDEX event_log_stream ON herald.event_log (trigger_name, xid, id) WHERE xid IS NOT NULL;

-- The newest transaction any of whose events of a trigger were deleted (retention, the
-- removal of a one-off scheduled event, a dropped partition). A cursor that has not yet
-- served every transaction up to this one may have lost events: the stream answers 410 Gone
-- with the oldest cursor still whole. Written by the statement that deletes, in its
-- transaction, so a stream reading in the same snapshot sees the deletion and its horizon
-- together.
CREATE TABLE herald.stream_horizon (
    trigger_name text PRIMARY KEY,
    xid          xid8 NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
