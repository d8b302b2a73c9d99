-- Herald schema version 17: writers NOTIFY only while a worker waits to be woken.
--
-- Until now every capturing transaction sent NOTIFY. A NOTIFY takes a database-wide lock at
-- commit that every notifying transaction waits for in turn, through its commit's WAL
-- flush: measured, about half of what capture adds to a single-row insert. Yet a worker that
-- is draining a backlog claims again at once and gains nothing from it; only a worker that
-- waits needs waking.
--
-- The wake gate: 64 advisory lock slots in Herald's own key space (classid 1213353028,
-- "HRLD"; objid 0-63).
-- - A worker about to wait holds every slot in SHARE mode (herald.wake_gate_arm()). It takes
--   all 64 or none, and never waits for one.
-- - A capturing transaction decides at commit, in herald.wake_at_commit(): a deferred
--   constraint trigger on the event log, queued by the transaction's first captured row.
--   It tries its slot (its backend pid mod 64) in EXCLUSIVE mode. If a waiting worker holds
--   the slot, it sends NOTIFY as before. If not, it keeps the slot until its commit has
--   ended, and sends nothing.
-- - A worker that claims again at once (its last claim came back full) releases the slots
--   (herald.wake_gate_disarm()). Before it waits again it must take them all back, which
--   it cannot while any transaction holds one. So every transaction that did not notify
--   has committed, and is visible, before the claim that follows the arm. Locks are
--   released after a commit becomes visible.
--
-- Writers that insert into the event log themselves (backfill, redeliver, imports, cron
-- ticks) NOTIFY explicitly as before: the trigger's WHEN fires only under a capture trigger
-- (pg_trigger_depth() > 0), so a bulk insert queues nothing.

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

    -- The transaction's first captured row queued herald.wake_at_commit() (the WHEN of the
    -- herald_wake trigger on the event log reads this setting); later rows need not.
    IF coalesce(pg_catalog.current_setting('herald.notified', true) OPERATOR(pg_catalog.<>) 'on', true) THEN
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

    -- The transaction's first captured row queued herald.wake_at_commit() (the WHEN of the
    -- herald_wake trigger on the event log reads this setting); later rows need not.
    IF coalesce(pg_catalog.current_setting('herald.notified', true) OPERATOR(pg_catalog.<>) 'on', true) THEN
        PERFORM pg_catalog.set_config('herald.notified', 'on', true);
    END IF;

    RETURN NULL;
END;
$$;

-- At commit, once per capturing transaction: NOTIFY only if a worker waits (holds the slot).
CREATE FUNCTION herald.wake_at_commit() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
AS $$
BEGIN
    IF NOT pg_catalog.pg_try_advisory_xact_lock(1213353028,
            pg_catalog.pg_backend_pid() OPERATOR(pg_catalog.%) 64) THEN
        PERFORM pg_catalog.pg_notify('herald_events', '');
    END IF;
    RETURN NULL;
END;
$$;
REVOKE EXECUTE ON FUNCTION herald.wake_at_commit() FROM PUBLIC;

-- The trigger, on herald.event_log as it is now (partitioning calls this again for the
-- partitioned table it creates).
CREATE FUNCTION herald.add_wake_trigger() RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    EXECUTE 'CREATE CONSTRAINT TRIGGER herald_wake AFTER INSERT ON herald.event_log '
         || 'DEFERRABLE INITIALLY DEFERRED FOR EACH ROW '
         || 'WHEN (pg_catalog.pg_trigger_depth() OPERATOR(pg_catalog.>) 0 AND '
         || 'coalesce(pg_catalog.current_setting(''herald.notified'', true) OPERATOR(pg_catalog.<>) ''on'', true)) '
         || 'EXECUTE FUNCTION herald.wake_at_commit()';
END;
$$;
SELECT herald.add_wake_trigger();

-- A worker about to wait: every slot in SHARE mode, or none (false) while a transaction
-- that did not notify is still committing. Session locks outlive an error, so one raised
-- half-way (out of shared memory for locks, a cancel) gives back what was taken first.
CREATE FUNCTION herald.wake_gate_arm() RETURNS boolean
LANGUAGE plpgsql
AS $$
DECLARE
    slot  integer;
    taken integer[] := '{}';
BEGIN
    BEGIN
        FOR slot IN 0..63 LOOP
            IF NOT pg_catalog.pg_try_advisory_lock_shared(1213353028, slot) THEN
                PERFORM pg_catalog.pg_advisory_unlock_shared(1213353028, held) FROM pg_catalog.unnest(taken) AS held;
                RETURN false;
            END IF;
            taken := taken OPERATOR(pg_catalog.||) slot;
        END LOOP;
    EXCEPTION WHEN OTHERS THEN
        PERFORM pg_catalog.pg_advisory_unlock_shared(1213353028, held) FROM pg_catalog.unnest(taken) AS held;
        RAISE;
    END;
    RETURN true;
END;
$$;

-- A worker that claims again at once: writers need not wake it.
-- (PL/pgSQL: a LANGUAGE sql function returning void may stop after the query's first row.)
CREATE FUNCTION herald.wake_gate_disarm() RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM pg_catalog.pg_advisory_unlock_shared(1213353028, slot) FROM pg_catalog.generate_series(0, 63) AS slot;
END;
$$;
