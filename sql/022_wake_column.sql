-- Herald schema version 22: the wake trigger's WHEN reads one column of the row.
--
-- The herald_wake trigger (version 17) queues herald.wake_at_commit() for a transaction's
-- first captured row. Its WHEN read the trigger depth and the herald.notified setting, and
-- PostgreSQL reads a trigger's WHEN back from its stored text and plans it for every
-- statement: each captured row is an INSERT of its own, so every captured row paid for it,
-- 7.2% of a capturing single-row transaction's PostgreSQL CPU (perf, schema version 20).
-- Now the capture function marks that first row itself (wake = true; NULL on every other
-- row, so it costs no space) and the WHEN is the column alone: 1.4% in the same profile.
--
-- The decision is the same: only a capture function sets wake, and only on the first row
-- it writes in a transaction (the herald.notified setting, as before), so backfill,
-- redeliver, imports and cron ticks, which insert into the log themselves, still queue
-- nothing; herald.capture_shard() (version 18) never sets it, so Citus shard captures still
-- never notify.
ALTER TABLE herald.event_log ADD COLUMN wake boolean;

CREATE OR REPLACE FUNCTION herald.capture() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
AS $$
DECLARE
    old_row      pg_catalog.jsonb;
    new_row      pg_catalog.jsonb;
    session_text pg_catalog.text;
    session      pg_catalog.jsonb;
    trace_text   pg_catalog.text;
    trace        pg_catalog.jsonb;
    first_row    pg_catalog.bool;
BEGIN
    IF TG_OP OPERATOR(pg_catalog.<>) 'INSERT' THEN
        old_row := pg_catalog.to_jsonb(OLD);
    END IF;
    IF TG_OP OPERATOR(pg_catalog.<>) 'DELETE' THEN
        new_row := pg_catalog.to_jsonb(NEW);
    END IF;

    IF TG_NARGS OPERATOR(pg_catalog.>) 1 THEN
        old_row := (SELECT pg_catalog.jsonb_object_agg(key, value) FROM pg_catalog.jsonb_each(old_row)
                    WHERE key OPERATOR(pg_catalog.=) ANY (TG_ARGV[1:TG_NARGS OPERATOR(pg_catalog.-) 1]));
        new_row := (SELECT pg_catalog.jsonb_object_agg(key, value) FROM pg_catalog.jsonb_each(new_row)
                    WHERE key OPERATOR(pg_catalog.=) ANY (TG_ARGV[1:TG_NARGS OPERATOR(pg_catalog.-) 1]));
    END IF;

    -- Hasura's convention: the app may put the session into the hasura.user setting.
    -- (NULL <> '' is NULL, so one test covers both.)
    session_text := pg_catalog.current_setting('hasura.user', true);
    IF session_text OPERATOR(pg_catalog.<>) '' THEN
        BEGIN
            session := session_text::pg_catalog.jsonb;
        EXCEPTION WHEN invalid_text_representation THEN
            -- Never fail the application's transaction over a malformed session.
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

    -- The transaction's first captured row carries wake, which queues
    -- herald.wake_at_commit() (the herald_wake trigger's WHEN); later rows need not.
    first_row := coalesce(pg_catalog.current_setting('herald.notified', true) OPERATOR(pg_catalog.<>) 'on', true);
    IF first_row THEN
        PERFORM pg_catalog.set_config('herald.notified', 'on', true);
    END IF;

    INSERT INTO herald.event_log (trigger_name, schema_name, table_name, payload, wake)
    VALUES (TG_ARGV[0], TG_TABLE_SCHEMA, TG_TABLE_NAME,
            pg_catalog.jsonb_build_object('op', TG_OP,
                               'data', pg_catalog.jsonb_build_object('old', old_row, 'new', new_row),
                               'session_variables', session,
                               'trace_context', trace),
            CASE WHEN first_row THEN true END);

    RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION herald.capture_ordered() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
AS $$
DECLARE
    old_row      pg_catalog.jsonb;
    new_row      pg_catalog.jsonb;
    key_row      pg_catalog.jsonb;
    key_value    pg_catalog.jsonb := '[]';
    key_column   pg_catalog.text;
    session_text pg_catalog.text;
    session      pg_catalog.jsonb;
    trace_text   pg_catalog.text;
    trace        pg_catalog.jsonb;
    first_row    pg_catalog.bool;
BEGIN
    IF TG_OP OPERATOR(pg_catalog.<>) 'INSERT' THEN
        old_row := pg_catalog.to_jsonb(OLD);
    END IF;
    IF TG_OP OPERATOR(pg_catalog.<>) 'DELETE' THEN
        new_row := pg_catalog.to_jsonb(NEW);
    END IF;

    -- The key comes from the whole row, before the payload's column filter.
    key_row := coalesce(new_row, old_row);
    FOREACH key_column IN ARRAY TG_ARGV[1]::pg_catalog.text[] LOOP
        key_value := key_value OPERATOR(pg_catalog.||)
                     pg_catalog.jsonb_build_array(key_row OPERATOR(pg_catalog.->) key_column);
    END LOOP;

    IF TG_NARGS OPERATOR(pg_catalog.>) 2 THEN
        old_row := (SELECT pg_catalog.jsonb_object_agg(key, value) FROM pg_catalog.jsonb_each(old_row)
                    WHERE key OPERATOR(pg_catalog.=) ANY (TG_ARGV[2:TG_NARGS OPERATOR(pg_catalog.-) 1]));
        new_row := (SELECT pg_catalog.jsonb_object_agg(key, value) FROM pg_catalog.jsonb_each(new_row)
                    WHERE key OPERATOR(pg_catalog.=) ANY (TG_ARGV[2:TG_NARGS OPERATOR(pg_catalog.-) 1]));
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

    -- The transaction's first captured row carries wake, which queues
    -- herald.wake_at_commit() (the herald_wake trigger's WHEN); later rows need not.
    first_row := coalesce(pg_catalog.current_setting('herald.notified', true) OPERATOR(pg_catalog.<>) 'on', true);
    IF first_row THEN
        PERFORM pg_catalog.set_config('herald.notified', 'on', true);
    END IF;

    INSERT INTO herald.event_log (trigger_name, schema_name, table_name, payload, ordering_key, wake)
    VALUES (TG_ARGV[0], TG_TABLE_SCHEMA, TG_TABLE_NAME,
            pg_catalog.jsonb_build_object('op', TG_OP,
                               'data', pg_catalog.jsonb_build_object('old', old_row, 'new', new_row),
                               'session_variables', session,
                               'trace_context', trace),
            key_value::pg_catalog.text, CASE WHEN first_row THEN true END);

    RETURN NULL;
END;
$$;

-- The trigger, on herald.event_log as it is now (partitioning calls this again for the
-- partitioned table it creates, which clones it onto every partition).
CREATE OR REPLACE FUNCTION herald.add_wake_trigger() RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    EXECUTE 'CREATE CONSTRAINT TRIGGER herald_wake AFTER INSERT ON herald.event_log '
         || 'DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.wake) '
         || 'EXECUTE FUNCTION herald.wake_at_commit()';
END;
$$;
DROP TRIGGER herald_wake ON herald.event_log;
SELECT herald.add_wake_trigger();
