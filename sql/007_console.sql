-- Herald schema version 7: indexes for the console's event search.
--
-- "Find the event of order 42" and "events whose payload contains {…}" are JSON
-- containment (payload @> …). jsonb_path_ops indexes only containment, so it is the
-- smallest GIN index that serves it; without it every such search reads the whole log.
-- GIN's pending list (fastupdate, on by default) batches the index work of captured
-- inserts, so capture pays little per row.
CREATE INDEX event_log_payload ON herald.event_log USING gin (payload jsonb_path_ops);

-- The console lists failed events newest first (and bulk redelivery counts them); they are
-- few among millions of delivered rows, so without this a page of them walks the whole
-- primary key backwards. trigger_name rides along so the overview counts failed events
-- per trigger from the index alone.
CREATE INDEX event_log_failed ON herald.event_log (id) INCLUDE (trigger_name) WHERE status = 'failed';

-- The overview shows each trigger's last error; failed attempts are few, so this index is
-- small, and the newest error of a trigger is its first entry read backwards instead of a
-- sort of every error row.
CREATE INDEX invocation_log_errors ON herald.invocation_log (trigger_name, id) WHERE error_class IS NOT NULL;
