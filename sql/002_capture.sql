-- Herald schema version 2: the capture function every Herald trigger calls.
--
-- Installed as: AFTER INSERT|UPDATE|DELETE ... FOR EACH ROW
--               EXECUTE FUNCTION herald.capture('<trigger name>' [, '<payload column>' ...])
-- Extra arguments, when present, restrict data.old / data.new to those columns (Hasura's
-- "payload"). Column filtering for UPDATE is done by the trigger's WHEN clause, so an
-- update that changes no listed column never calls this function.
CREATE OR REPLACE FUNCTION herald.capture() RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
    old_row      jsonb;
    new_row      jsonb;
    session_text text;
    session      jsonb;
BEGIN
    IF TG_OP <> 'INSERT' THEN
        old_row := to_jsonb(OLD);
    END IF;
    IF TG_OP <> 'DELETE' THEN
        new_row := to_jsonb(NEW);
    END IF;

    IF TG_NARGS > 1 THEN
        old_row := (SELECT jsonb_object_agg(key, value) FROM jsonb_each(old_row)
                    WHERE key = ANY (TG_ARGV[1:TG_NARGS - 1]));
        new_row := (SELECT jsonb_object_agg(key, value) FROM jsonb_each(new_row)
                    WHERE key = ANY (TG_ARGV[1:TG_NARGS - 1]));
    END IF;

    -- Hasura's convention: the app may put the session into the hasura.user setting.
    session_text := current_setting('hasura.user', true);
    IF session_text IS NOT NULL AND session_text <> '' THEN
        BEGIN
            session := session_text::jsonb;
        EXCEPTION WHEN invalid_text_representation THEN
            -- Never fail the application's transaction over a malformed session.
            session := to_jsonb(session_text);
        END;
    END IF;

    INSERT INTO herald.event_log (trigger_name, schema_name, table_name, payload)
    VALUES (TG_ARGV[0], TG_TABLE_SCHEMA, TG_TABLE_NAME,
            jsonb_build_object('op', TG_OP,
                               'data', jsonb_build_object('old', old_row, 'new', new_row),
                               'session_variables', session,
                               'trace_context', NULL));

    -- One NOTIFY per transaction: NOTIFY takes a global lock at commit, and workers only
    -- need to know that something is due. The transaction-local setting resets at commit
    -- or rollback (and with a rolled-back savepoint, together with the NOTIFY itself).
    IF current_setting('herald.notified', true) IS DISTINCT FROM 'on' THEN
        PERFORM pg_notify('herald_events', '');
        PERFORM set_config('herald.notified', 'on', true);
    END IF;

    RETURN NULL;
END;
$$;
