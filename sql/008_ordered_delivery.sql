-- Herald schema version 8: ordered delivery per key (a trigger's `ordering:`).
--
-- An ordered trigger's capture writes the event's key (the values of its key columns, from
-- the new row, or the old one for DELETE, as a JSON array text). Among pending events of
-- one trigger and key only the head is claimed: the one with the lowest position, which is
-- its id (capture order) unless a redelivery sent it to the back of its key
-- (ordering_position, taken from the id sequence so it sorts after every event captured
-- so far). "C" collation: keys are compared byte-wise, fast and the same everywhere.
ALTER TABLE herald.event_log
    ADD COLUMN ordering_key      text COLLATE "C",
    ADD COLUMN ordering_position bigint,
    -- When a head that failed for good started holding its key (`on_failure: block`); the
    -- head then stays pending and never due until an operator redelivers or skips it.
    ADD COLUMN blocked_at        timestamptz;

-- The heads of each key: the first entry after a key is the next key's head, so the claim
-- walks keys one index probe each and never reads the events waiting behind a head.
CREATE INDEX event_log_pending_key_heads
    ON herald.event_log (trigger_name, ordering_key, (coalesce(ordering_position, id)))
    WHERE status = 'pending' AND ordering_key IS NOT NULL;

-- The due-time index of version 4 now holds only events without a key: keyed events are
-- claimed through their heads, and the waiting ones would otherwise be read (and skipped)
-- by every claim.
DROP INDEX herald.event_log_pending_trigger_due;
CREATE INDEX event_log_pending_trigger_due ON herald.event_log (trigger_name, next_attempt_at)
    WHERE status = 'pending' AND ordering_key IS NULL;

-- Blocked keys per trigger for `herald stats` and /metrics: they are few.
CREATE INDEX event_log_blocked ON herald.event_log (trigger_name, blocked_at)
    WHERE blocked_at IS NOT NULL AND status = 'pending';

-- The capture function of ordered triggers:
--   EXECUTE FUNCTION herald.capture_ordered('<trigger>', '<key columns as text[]>' [, '<payload column>' ...])
-- It differs from herald.capture() only in writing ordering_key. herald.capture() keeps its
-- own copy of the session and trace handling below because every captured row of every
-- unordered trigger would otherwise pay one more function call.
CREATE FUNCTION herald.capture_ordered() RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
    old_row      jsonb;
    new_row      jsonb;
    key_row      jsonb;
    key_value    jsonb := '[]';
    key_column   text;
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

    -- The key comes from the whole row, before the payload's column filter.
    key_row := coalesce(new_row, old_row);
    FOREACH key_column IN ARRAY TG_ARGV[1]::text[] LOOP
        key_value := key_value || jsonb_build_array(key_row -> key_column);
    END LOOP;

    IF TG_NARGS > 2 THEN
        old_row := (SELECT jsonb_object_agg(key, value) FROM jsonb_each(old_row)
                    WHERE key = ANY (TG_ARGV[2:TG_NARGS - 1]));
        new_row := (SELECT jsonb_object_agg(key, value) FROM jsonb_each(new_row)
                    WHERE key = ANY (TG_ARGV[2:TG_NARGS - 1]));
    END IF;

    session_text := current_setting('hasura.user', true);
    IF session_text IS NOT NULL AND session_text <> '' THEN
        BEGIN
            session := session_text::jsonb;
        EXCEPTION WHEN invalid_text_representation THEN
            session := to_jsonb(session_text);
        END;
    END IF;

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

    INSERT INTO herald.event_log (trigger_name, schema_name, table_name, payload, ordering_key)
    VALUES (TG_ARGV[0], TG_TABLE_SCHEMA, TG_TABLE_NAME,
            jsonb_build_object('op', TG_OP,
                               'data', jsonb_build_object('old', old_row, 'new', new_row),
                               'session_variables', session,
                               'trace_context', trace),
            key_value::text);

    IF current_setting('herald.notified', true) IS DISTINCT FROM 'on' THEN
        PERFORM pg_notify('herald_events', '');
        PERFORM set_config('herald.notified', 'on', true);
    END IF;

    RETURN NULL;
END;
$$;
