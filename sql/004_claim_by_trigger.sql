-- Herald schema version 4: the claim reads due events trigger by trigger.
--
-- Flow control claims a quota per trigger (a saturated receiver's trigger is left out of
-- the claim, rate limits and circuit breakers will set quotas too). With this index each
-- trigger's quota is one range scan of its own pending, due events, however large another
-- trigger's backlog; delivered and failed rows are not in it. It replaces the index by due
-- time alone, which only the claim used.
CREATE INDEX event_log_pending_trigger_due ON herald.event_log (trigger_name, next_attempt_at)
    WHERE status = 'pending';
DROP INDEX herald.event_log_pending_due;
