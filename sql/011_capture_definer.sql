-- Herald schema version 11: capture functions that writers cannot subvert or call.
--
-- Before: the capture functions ran as the writing role with the writer's search_path and
-- called functions unqualified, so a role able to create a function on that path (say
-- public.to_jsonb(public.orders), an exact match that beats pg_catalog's polymorphic one)
-- ran code as whoever wrote a captured table; and every writer needed INSERT on
-- herald.event_log, so any writer could forge events that Herald delivers with the
-- trigger's secret headers.
--
-- Now: SECURITY DEFINER, running as the role that owns schema herald (the one that runs
-- install-triggers), with search_path pinned to pg_catalog then pg_temp (pg_temp last, so a
-- temporary object never shadows a catalog one) and every function and type qualified
-- besides. Writers need no grant on schema herald at all, and EXECUTE is revoked from
-- PUBLIC so nobody can attach the functions to a table of their own to forge events
-- (PostgreSQL checks EXECUTE when a trigger is created, not when it fires, so the
-- installed triggers keep working for every writer).
--
-- The SET clause costs a configuration save and restore per captured row; scripts/bench-capture
-- measures it against the unpinned forms in the same run.
CREATE OR REPLACE FUNCTION herald.capture() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    old_row      pg_catalog.jsonb;
    new_row      pg_catalog.jsonb;
    session_text pg_catalog.text;
    session      pg_catalog.jsonb;
    trace_text   pg_catalog.text;
    trace        pg_catalog.jsonb;
BEGIN
    IF TG_OP <> 'INSERT' THEN
        old_row := pg_catalog.to_jsonb(OLD);
    END IF;
    IF TG_OP <> 'DELETE' THEN
        new_row := pg_catalog.to_jsonb(NEW);
    END IF;

    IF TG_NARGS > 1 THEN
        old_row := (SELECT pg_catalog.jsonb_object_agg(key, value) FROM pg_catalog.jsonb_each(old_row)
                    WHERE key = ANY (TG_ARGV[1:TG_NARGS - 1]));
        new_row := (SELECT pg_catalog.jsonb_object_agg(key, value) FROM pg_catalog.jsonb_each(new_row)
                    WHERE key = ANY (TG_ARGV[1:TG_NARGS - 1]));
    END IF;

    -- Hasura's convention: the app may put the session into the hasura.user setting.
    session_text := pg_catalog.current_setting('hasura.user', true);
    IF session_text IS NOT NULL AND session_text <> '' THEN
        BEGIN
            session := session_text::pg_catalog.jsonb;
        EXCEPTION WHEN invalid_text_representation THEN
            -- Never fail the application's transaction over a malformed session.
            session := pg_catalog.to_jsonb(session_text);
        END;
    END IF;

    -- One expression and one test when no trace is set: this runs for every captured row.
    trace_text := coalesce(nullif(pg_catalog.current_setting('hasura.tracecontext', true), ''),
                           nullif(pg_catalog.current_setting('herald.traceparent', true), ''));
    IF trace_text IS NOT NULL THEN
        trace := herald.trace_context(trace_text);
    END IF;

    INSERT INTO herald.event_log (trigger_name, schema_name, table_name, payload)
    VALUES (TG_ARGV[0], TG_TABLE_SCHEMA, TG_TABLE_NAME,
            pg_catalog.jsonb_build_object('op', TG_OP,
                               'data', pg_catalog.jsonb_build_object('old', old_row, 'new', new_row),
                               'session_variables', session,
                               'trace_context', trace));

    -- One NOTIFY per transaction (see version 2). A transaction-local setting made inside
    -- a function with a SET clause outlives the call: only the clause's own variable is
    -- restored at exit.
    IF pg_catalog.current_setting('herald.notified', true) IS DISTINCT FROM 'on' THEN
        PERFORM pg_catalog.pg_notify('herald_events', '');
        PERFORM pg_catalog.set_config('herald.notified', 'on', true);
    END IF;

    RETURN NULL;
END;
$$;

-- The trace context of a captured row, from Hasura's hasura.tracecontext or a W3C
-- traceparent: shared by both capture functions, called only when a trace is set.
CREATE FUNCTION herald.trace_context(trace_text pg_catalog.text) RETURNS pg_catalog.jsonb
LANGUAGE plpgsql
IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF trace_text ~ '^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$' THEN
        RETURN pg_catalog.jsonb_build_object(
            'trace_id', pg_catalog.split_part(trace_text, '-', 2),
            'span_id', pg_catalog.split_part(trace_text, '-', 3),
            'sampling_state', CASE WHEN (('x' || pg_catalog.split_part(trace_text, '-', 4))::pg_catalog.bit(8)::pg_catalog.int4 & 1) = 1
                                   THEN '1' ELSE '0' END,
            'traceparent', trace_text);
    END IF;
    BEGIN
        RETURN trace_text::pg_catalog.jsonb;
    EXCEPTION WHEN invalid_text_representation THEN
        RETURN pg_catalog.to_jsonb(trace_text);
    END;
END;
$$;

CREATE OR REPLACE FUNCTION herald.capture_ordered() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
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
    IF TG_OP <> 'INSERT' THEN
        old_row := pg_catalog.to_jsonb(OLD);
    END IF;
    IF TG_OP <> 'DELETE' THEN
        new_row := pg_catalog.to_jsonb(NEW);
    END IF;

    -- The key comes from the whole row, before the payload's column filter.
    key_row := coalesce(new_row, old_row);
    FOREACH key_column IN ARRAY TG_ARGV[1]::pg_catalog.text[] LOOP
        key_value := key_value || pg_catalog.jsonb_build_array(key_row -> key_column);
    END LOOP;

    IF TG_NARGS > 2 THEN
        old_row := (SELECT pg_catalog.jsonb_object_agg(key, value) FROM pg_catalog.jsonb_each(old_row)
                    WHERE key = ANY (TG_ARGV[2:TG_NARGS - 1]));
        new_row := (SELECT pg_catalog.jsonb_object_agg(key, value) FROM pg_catalog.jsonb_each(new_row)
                    WHERE key = ANY (TG_ARGV[2:TG_NARGS - 1]));
    END IF;

    session_text := pg_catalog.current_setting('hasura.user', true);
    IF session_text IS NOT NULL AND session_text <> '' THEN
        BEGIN
            session := session_text::pg_catalog.jsonb;
        EXCEPTION WHEN invalid_text_representation THEN
            session := pg_catalog.to_jsonb(session_text);
        END;
    END IF;

    trace_text := coalesce(nullif(pg_catalog.current_setting('hasura.tracecontext', true), ''),
                           nullif(pg_catalog.current_setting('herald.traceparent', true), ''));
    IF trace_text IS NOT NULL THEN
        trace := herald.trace_context(trace_text);
    END IF;

    INSERT INTO herald.event_log (trigger_name, schema_name, table_name, payload, ordering_key)
    VALUES (TG_ARGV[0], TG_TABLE_SCHEMA, TG_TABLE_NAME,
            pg_catalog.jsonb_build_object('op', TG_OP,
                               'data', pg_catalog.jsonb_build_object('old', old_row, 'new', new_row),
                               'session_variables', session,
                               'trace_context', trace),
            key_value::pg_catalog.text);

    IF pg_catalog.current_setting('herald.notified', true) IS DISTINCT FROM 'on' THEN
        PERFORM pg_catalog.pg_notify('herald_events', '');
        PERFORM pg_catalog.set_config('herald.notified', 'on', true);
    END IF;

    RETURN NULL;
END;
$$;

REVOKE EXECUTE ON FUNCTION herald.capture(), herald.capture_ordered(), herald.trace_context(pg_catalog.text) FROM PUBLIC;
