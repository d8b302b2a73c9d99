-- Herald schema version 18: capture on Citus shards.
--
-- On a Citus cluster, a trigger on a distributed table runs on each shard, on the node that
-- holds it, inside the writer's transaction there. Every node (the coordinator and each
-- worker node) has its own schema herald, installed node by node with DDL propagation off,
-- and the shard's trigger writes into that node's own event log: no cross-node round trip
-- per row. Workers claim from every node's log.
--
-- herald.capture_shard() is herald.capture() and herald.capture_ordered() for such tables:
-- - The table is named by the trigger's arguments, not by TG_TABLE_NAME, which is the
--   shard's (orders_102008): Hasura's payload names the table the application wrote.
-- - It never lets the writer's transaction NOTIFY. Citus commits a transaction that wrote
--   on several nodes with two-phase commit, and PREPARE TRANSACTION refuses one that sent
--   NOTIFY, so a notifying capture would make such writes fail. It marks the transaction as
--   notified, which keeps the herald_wake trigger (version 17) from queueing its check;
--   workers look at these logs on a short interval instead.
--
-- Arguments: trigger name, schema, table, key columns as text[] ('' when the trigger does
-- not deliver in order per key), then the payload columns, if the payload is limited.
--
-- OR REPLACE: Citus copies this function (and schema herald, empty) onto a worker node
-- added after the triggers were created; install-triggers then migrates that node's schema
-- in place, under the shard triggers already using it.
CREATE OR REPLACE FUNCTION herald.capture_shard() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
AS $$
DECLARE
    old_row      pg_catalog.jsonb;
    new_row      pg_catalog.jsonb;
    key_row      pg_catalog.jsonb;
    key_value    pg_catalog.jsonb;
    key_column   pg_catalog.text;
    session_text pg_catalog.text;
    session      pg_catalog.jsonb;
    trace_text   pg_catalog.text;
    trace        pg_catalog.jsonb;
BEGIN
    IF TG_OP OPERATOR(pg_catalog.<>) 'INSERT' THEN
        old_row := pg_catalog.to_jsonb(OLD);
    END IF;
    IF TG_OP OPERATOR(pg_catalog.<>) 'DELETE' THEN
        new_row := pg_catalog.to_jsonb(NEW);
    END IF;

    -- The key comes from the whole row, before the payload's column filter.
    IF TG_ARGV[3] OPERATOR(pg_catalog.<>) '' THEN
        key_row := coalesce(new_row, old_row);
        key_value := '[]';
        FOREACH key_column IN ARRAY TG_ARGV[3]::pg_catalog.text[] LOOP
            key_value := key_value OPERATOR(pg_catalog.||)
                         pg_catalog.jsonb_build_array(key_row OPERATOR(pg_catalog.->) key_column);
        END LOOP;
    END IF;

    IF TG_NARGS OPERATOR(pg_catalog.>) 4 THEN
        old_row := (SELECT pg_catalog.jsonb_object_agg(key, value) FROM pg_catalog.jsonb_each(old_row)
                    WHERE key OPERATOR(pg_catalog.=) ANY (TG_ARGV[4:TG_NARGS OPERATOR(pg_catalog.-) 1]));
        new_row := (SELECT pg_catalog.jsonb_object_agg(key, value) FROM pg_catalog.jsonb_each(new_row)
                    WHERE key OPERATOR(pg_catalog.=) ANY (TG_ARGV[4:TG_NARGS OPERATOR(pg_catalog.-) 1]));
    END IF;

    session_text := pg_catalog.current_setting('hasura.user', true);
    IF session_text OPERATOR(pg_catalog.<>) '' THEN
        BEGIN
            session := session_text::pg_catalog.jsonb;
        EXCEPTION WHEN invalid_text_representation THEN
            session := pg_catalog.to_jsonb(session_text);
        END;
    END IF;

    trace_text := pg_catalog.current_setting('hasura.tracecontext', true);
    IF trace_text IS NULL OR trace_text OPERATOR(pg_catalog.=) '' THEN
        trace_text := pg_catalog.current_setting('herald.traceparent', true);
    END IF;
    IF trace_text OPERATOR(pg_catalog.<>) '' THEN
        trace := herald.trace_context(trace_text);
    END IF;

    -- Before the insert: the herald_wake trigger's WHEN reads it, and must not queue a
    -- NOTIFY (above).
    IF coalesce(pg_catalog.current_setting('herald.notified', true) OPERATOR(pg_catalog.<>) 'on', true) THEN
        PERFORM pg_catalog.set_config('herald.notified', 'on', true);
    END IF;

    INSERT INTO herald.event_log (trigger_name, schema_name, table_name, payload, ordering_key)
    VALUES (TG_ARGV[0], TG_ARGV[1], TG_ARGV[2],
            pg_catalog.jsonb_build_object('op', TG_OP,
                               'data', pg_catalog.jsonb_build_object('old', old_row, 'new', new_row),
                               'session_variables', session,
                               'trace_context', trace),
            key_value::pg_catalog.text);

    RETURN NULL;
END;
$$;
REVOKE EXECUTE ON FUNCTION herald.capture_shard() FROM PUBLIC;
