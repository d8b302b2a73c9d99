-- Herald schema version 13: what a delivered event costs the database.
--
-- 1. Attempt rows without a foreign key to their event. The key checked every attempt row
--    with a query that locks the event row again (FOR KEY SHARE), which writes a lock record
--    to the event's heap page and to the WAL: measured at about 30-45 µs of PostgreSQL CPU per
--    event, a third of the bookkeeping of a delivered event. What it guaranteed is kept by
--    Herald itself:
--    - the recorder writes an attempt row only for an event that exists: the outcome's UPDATE
--      locks the events it marks, and outcomes that matched no row (a lease taken over, or an
--      event deleted while its delivery was in flight) are checked, under the same lock, in
--      the rare flush that has any;
--    - retention and the removal of a one-off scheduled event delete an event's attempts in
--      the statement that deletes the event (what ON DELETE CASCADE did).
--    A partitioned log (herald partition) never had the key: partitions are dropped together.
ALTER TABLE herald.invocation_log DROP CONSTRAINT IF EXISTS invocation_log_event_id_fkey;

-- 2. The payload index holds finished events only. Captures and claims leave an event
--    pending, and every claim and outcome is an update that is not HOT (it changes indexed
--    columns), so a full index took each event's GIN entries three times: at the capture, the
--    claim and the outcome. Indexing only rows that left pending takes them once, at the
--    outcome. Searches of pending events (the console, redeliver and skip filters) read the
--    pending partial indexes instead, which hold only the backlog (EventFilter). Rebuilding
--    the index locks writes to the log while it is built: on a large log, run the upgrade
--    (install-triggers) at a quiet time.
DROP INDEX herald.event_log_payload;
CREATE INDEX event_log_payload ON herald.event_log USING gin (payload jsonb_path_ops)
    WITH (gin_pending_list_limit = 64) WHERE status <> 'pending';

-- 3. A short pending list for the payload index. GIN batches new entries in a pending list
--    and merges it into the index when it reaches gin_pending_list_limit (4 MB by default),
--    inside whichever statement crosses the limit (an outcome, since 2.; before it also a
--    writer's INSERT or a claim). At 2,000 events/s that merge came every few seconds and
--    stalled its statement for 100 ms or more (steady 2,000/s: p99.9 123 ms). With 64 kB the merges are small and frequent: p99.9
--    15 ms at the same drain rate (scripts/bench --setup-sql, same run). The index is made
--    with it above (partitions inherit it); the function below sets it on any payload index
--    that lacks it, here and when the maintainer makes a partition.
CREATE FUNCTION herald.tune_payload_indexes() RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    payload_index regclass;
BEGIN
    FOR payload_index IN
        SELECT c.oid::regclass
        FROM pg_catalog.pg_class c
        JOIN pg_catalog.pg_index x ON x.indexrelid = c.oid
        JOIN pg_catalog.pg_am a ON a.oid = c.relam
        JOIN pg_catalog.pg_class t ON t.oid = x.indrelid
        WHERE t.relnamespace = 'herald'::regnamespace AND t.relname LIKE 'event_log%'
          AND a.amname = 'gin' AND c.relkind = 'i'
          AND NOT coalesce(c.reloptions, '{}') @> ARRAY['gin_pending_list_limit=64']
    LOOP
        EXECUTE pg_catalog.format('ALTER INDEX %s SET (gin_pending_list_limit = 64)', payload_index);
    END LOOP;
END;
$$;
SELECT herald.tune_payload_indexes();
