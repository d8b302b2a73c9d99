-- Herald schema version 9: scheduled events (Hasura's scheduled triggers). Cron ticks and
-- one-off events are rows of herald.event_log like captured changes, so the same claim,
-- delivery, retry and bookkeeping serve them; what is new is how they are made.

-- One row per tick of a cron trigger, written in the same statement as the tick's event.
-- The primary key is what makes a tick happen exactly once however many workers run: each
-- worker's scheduler inserts the ticks it sees due with ON CONFLICT DO NOTHING, and only
-- the insert that wins creates the event. The newest tick of a trigger is also where a
-- scheduler resumes after every worker was down: ticks since then within the trigger's
-- tolerance become events, older ones are recorded here as missed.
CREATE TABLE herald.cron_ticks (
    trigger_name    text        NOT NULL,
    scheduled_time  timestamptz NOT NULL,
    -- created: an event was logged for the tick; missed: no worker ran within the tolerance.
    outcome         text        NOT NULL CHECK (outcome IN ('created', 'missed')),
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (trigger_name, scheduled_time)
);

-- scheduled_time as Hasura sends it: RFC 3339 in UTC, fractional seconds only when present.
CREATE FUNCTION herald.scheduled_time_text(t timestamptz) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
    RETURN CASE WHEN pg_catalog.date_part('microseconds', t) = pg_catalog.floor(pg_catalog.date_part('seconds', t)) * 1000000
                THEN pg_catalog.to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
                ELSE pg_catalog.to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') END;

-- A one-off scheduled event (Hasura's create_scheduled_event), callable inside the
-- application's own transaction: the event exists if and only if that transaction commits.
-- Returns the event's id (its payload id and webhook-id).
--
-- SECURITY DEFINER with a pinned search_path and qualified names: callers need no rights on
-- schema herald, and nothing on their search_path can stand in for a function used here.
-- EXECUTE is revoked from PUBLIC: scheduling a request to any URL is a privilege (grant it
-- to the roles that should have it).
CREATE FUNCTION herald.schedule_event(
    webhook        text,
    scheduled_time timestamptz,
    payload        jsonb DEFAULT NULL,
    headers        jsonb DEFAULT '[]',
    retry_conf     jsonb DEFAULT '{}',
    comment        text  DEFAULT NULL
) RETURNS uuid
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    event_id uuid := pg_catalog.gen_random_uuid();
    header   jsonb;
    key      text;
BEGIN
    IF webhook IS NULL OR webhook !~* '^https?://[^/?#@\s]' THEN
        RAISE EXCEPTION 'herald.schedule_event: webhook must be an http:// or https:// URL with a host'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF scheduled_time IS NULL THEN
        RAISE EXCEPTION 'herald.schedule_event: scheduled_time is required' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF pg_catalog.jsonb_typeof(coalesce(headers, '[]')) <> 'array' THEN
        RAISE EXCEPTION 'herald.schedule_event: headers must be a JSON array of {name, value} or {name, value_from_env}'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR header IN SELECT * FROM pg_catalog.jsonb_array_elements(coalesce(headers, '[]')) LOOP
        IF pg_catalog.jsonb_typeof(header) <> 'object' OR pg_catalog.jsonb_typeof(header -> 'name') IS DISTINCT FROM 'string'
           OR (pg_catalog.jsonb_typeof(header -> 'value') IS DISTINCT FROM 'string')
              = (pg_catalog.jsonb_typeof(header -> 'value_from_env') IS DISTINCT FROM 'string') THEN
            RAISE EXCEPTION 'herald.schedule_event: header % must be {name, value} or {name, value_from_env}', header
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END LOOP;
    IF pg_catalog.jsonb_typeof(coalesce(retry_conf, '{}')) <> 'object' THEN
        RAISE EXCEPTION 'herald.schedule_event: retry_conf must be a JSON object' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR key IN SELECT * FROM pg_catalog.jsonb_object_keys(coalesce(retry_conf, '{}')) LOOP
        IF key NOT IN ('num_retries', 'retry_interval_seconds', 'timeout_seconds', 'tolerance_seconds') THEN
            RAISE EXCEPTION 'herald.schedule_event: unknown retry_conf key % (expected num_retries, retry_interval_seconds, timeout_seconds, tolerance_seconds)', key
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF pg_catalog.jsonb_typeof(retry_conf -> key) <> 'number' OR (retry_conf ->> key)::numeric < 0
           OR (retry_conf ->> key)::numeric <> pg_catalog.trunc((retry_conf ->> key)::numeric) THEN
            RAISE EXCEPTION 'herald.schedule_event: retry_conf.% must be a whole number of at least 0', key
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END LOOP;
    INSERT INTO herald.event_log (trigger_name, schema_name, table_name, payload, next_attempt_at, imported_id)
    VALUES ('@scheduled', 'herald', 'scheduled_events',
            pg_catalog.jsonb_build_object(
                'scheduled_time', herald.scheduled_time_text(scheduled_time),
                'payload', payload, 'comment', comment, 'webhook', webhook,
                'headers', coalesce(headers, '[]'), 'retry_conf', coalesce(retry_conf, '{}')),
            scheduled_time, event_id);
    RETURN event_id;
END
$$;
REVOKE ALL ON FUNCTION herald.schedule_event(text, timestamptz, jsonb, jsonb, jsonb, text) FROM PUBLIC;
