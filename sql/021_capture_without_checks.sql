-- Herald schema version 21: a captured row's INSERT checks no CHECK constraint.
--
-- Each captured change is an INSERT of its own, run by the capture trigger, and PostgreSQL
-- prepares a table's CHECK constraints anew for every statement: it reads each stored
-- expression back from its text form and plans it, then checks the one row. The log's two
-- (status is pending, delivered or failed; tries is not negative) were 7% of a capturing
-- single-row transaction's PostgreSQL CPU (perf, schema version 20): about 10 µs per
-- captured row, more than building the payload's JSON. Hasura's event log has none either.
--
-- What they guarded is kept by the only writer of those columns: every statement that sets
-- status is Herald's own and writes one of the three (a literal, or the worker's decision
-- type), and tries only counts up from its default of 0.
--
-- A partitioned log (herald partition) holds a copy in each partition, made with the
-- partition from the parent (CREATE TABLE ... LIKE ... INCLUDING CONSTRAINTS) and so kept
-- when the parent's is dropped: each is dropped, the parent's first.
DO $$
DECLARE
    target record;
BEGIN
    FOR target IN
        -- (The tree lists no rows for a log that is not partitioned.)
        SELECT 'herald.event_log'::pg_catalog.regclass AS relid, 0 AS level
        UNION
        SELECT tree.relid, tree.level
        FROM pg_catalog.pg_partition_tree('herald.event_log'::pg_catalog.regclass) tree
        ORDER BY level
    LOOP
        EXECUTE pg_catalog.format('ALTER TABLE %s DROP CONSTRAINT IF EXISTS event_log_status_check, '
                                  'DROP CONSTRAINT IF EXISTS event_log_tries_check', target.relid::pg_catalog.regclass);
    END LOOP;
END;
$$;
