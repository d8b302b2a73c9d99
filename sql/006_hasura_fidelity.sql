-- Herald schema version 6: payload ids indistinguishable from random, imported Hasura
-- events, and trace context captured as Hasura captures it.

-- The secret payload ids are derived from (see EventID in the Swift sources): a keyed
-- permutation of the event number, so ids reveal neither the installation nor how many
-- events came before. 244 random bits; it never leaves the database and the worker.
ALTER TABLE herald.installation
    ADD COLUMN id_key bytea NOT NULL DEFAULT (uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid()));

-- An event moved from Hasura's hdb_catalog.event_log keeps Hasura's UUID as its payload id
-- and webhook-id: receivers may have seen an attempt already and dedupe on it. NULL for
-- Herald's own events. Unique, so a second migration run cannot import an event twice.
ALTER TABLE herald.event_log ADD COLUMN imported_id uuid;
CREATE UNIQUE INDEX event_log_imported_id ON herald.event_log (imported_id) WHERE imported_id IS NOT NULL;

-- Events captured before this version that may still be sent (pending, or failed and so
-- likely to be redelivered) keep the id receivers may already have seen: the version 8
-- UUID of installation bytes 0-7 and the event number. Delivered ones are not rewritten.
UPDATE herald.event_log e
SET imported_id = encode(
        set_byte(substr(uuid_send(i.id), 1, 8), 6, (get_byte(uuid_send(i.id), 6) & 15) | 128)
        || set_byte(int8send(e.id), 0, (get_byte(int8send(e.id), 0) & 63) | 128),
        'hex')::uuid
FROM herald.installation i
WHERE e.status <> 'delivered';

-- The capture function of version 2, plus trace_context: Hasura reads the
-- hasura.tracecontext setting; a W3C traceparent (in that setting or in
-- herald.traceparent) becomes {trace_id, span_id, sampling_state, traceparent}.
CREATE OR REPLACE FUNCTION herald.capture() RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
    old_row      jsonb;
    new_row      jsonb;
    session_text text;
    session      jsonb;
    trace_text   text;
    trace        jsonb;
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

    -- One expression and one test when no trace is set: this runs for every captured row.
    trace_text := coalesce(nullif(current_setting('hasura.tracecontext', true), ''),
                           nullif(current_setting('herald.traceparent', true), ''));
    IF trace_text IS NOT NULL THEN
        IF trace_text ~ '^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$' THEN
            trace := jsonb_build_object(
                'trace_id', split_part(trace_text, '-', 2),
                'span_id', split_part(trace_text, '-', 3),
                'sampling_state', CASE WHEN (('x' || split_part(trace_text, '-', 4))::bit(8)::int & 1) = 1
                                       THEN '1' ELSE '0' END,
                'traceparent', trace_text);
        ELSE
            BEGIN
                trace := trace_text::jsonb;
            EXCEPTION WHEN invalid_text_representation THEN
                trace := to_jsonb(trace_text);
            END;
        END IF;
    END IF;

    INSERT INTO herald.event_log (trigger_name, schema_name, table_name, payload)
    VALUES (TG_ARGV[0], TG_TABLE_SCHEMA, TG_TABLE_NAME,
            jsonb_build_object('op', TG_OP,
                               'data', jsonb_build_object('old', old_row, 'new', new_row),
                               'session_variables', session,
                               'trace_context', trace));

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
