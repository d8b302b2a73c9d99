-- Herald schema version 3: indexes for operating the log (retention, stats).

-- Retention deletes finished events oldest first; pending events are never candidates.
CREATE INDEX event_log_finished ON herald.event_log (finished_at) WHERE status <> 'pending';

-- "Failures in the last hour" and the last error per trigger read recent invocations only.
CREATE INDEX invocation_log_recent ON herald.invocation_log (created_at);
