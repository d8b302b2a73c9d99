-- Herald schema version 15: the capture functions without a SET clause, every name and
-- every operator qualified.
--
-- Version 11 pinned search_path with `SET search_path = pg_catalog, pg_temp`, so a writer's
-- path could not put a look-alike function in front of a catalog one. A SET clause is paid
-- for on every captured row: PostgreSQL saves the setting, applies it and restores it around
-- each call, and each change throws away the cached namespace path, which the next name
-- lookup rebuilds. scripts/bench-capture measures what that costs, against this form, in
-- one run (the `pinned` variant).
--
-- The same guarantee comes without the clause when nothing in the body is looked up on the
-- path at all:
-- - every function, type and table is schema-qualified, as before;
-- - every operator is written `OPERATOR(pg_catalog.op)` (an unqualified `<>` or `=` is
--   found on the writer's path, and a writer's path may list pg_catalog after public);
-- - constructs that find an operator implicitly are not used: `nullif` and
--   `IS DISTINCT FROM` look up `=` on the path, so they are written with qualified operators;
-- - pg_temp is never searched for functions or operators, and the one table is qualified.
-- Still SECURITY DEFINER, EXECUTE still revoked from PUBLIC (version 11). herald.trace_context
-- keeps its SET clause: it runs only when a trace is set.
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

    INSERT INTO herald.event_log (trigger_name, schema_name, table_name, payload)
    VALUES (TG_ARGV[0], TG_TABLE_SCHEMA, TG_TABLE_NAME,
            pg_catalog.jsonb_build_object('op', TG_OP,
                               'data', pg_catalog.jsonb_build_object('old', old_row, 'new', new_row),
                               'session_variables', session,
                               'trace_context', trace));

    -- One NOTIFY per transaction (see version 2).
    IF coalesce(pg_catalog.current_setting('herald.notified', true) OPERATOR(pg_catalog.<>) 'on', true) THEN
        PERFORM pg_catalog.pg_notify('herald_events', '');
        PERFORM pg_catalog.set_config('herald.notified', 'on', true);
    END IF;

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

    INSERT INTO herald.event_log (trigger_name, schema_name, table_name, payload, ordering_key)
    VALUES (TG_ARGV[0], TG_TABLE_SCHEMA, TG_TABLE_NAME,
            pg_catalog.jsonb_build_object('op', TG_OP,
                               'data', pg_catalog.jsonb_build_object('old', old_row, 'new', new_row),
                               'session_variables', session,
                               'trace_context', trace),
            key_value::pg_catalog.text);

    IF coalesce(pg_catalog.current_setting('herald.notified', true) OPERATOR(pg_catalog.<>) 'on', true) THEN
        PERFORM pg_catalog.pg_notify('herald_events', '');
        PERFORM pg_catalog.set_config('herald.notified', 'on', true);
    END IF;

    RETURN NULL;
END;
$$;
