-- Herald schema version 5: indexes for the console's event search.
--
-- "Find the event of order 42" and "events whose payload contains {…}" are JSON
-- containment (payload @> …). jsonb_path_ops indexes only containment, so it is the
-- smallest GIN index that serves it; without it every such search reads the whole log.
-- GIN's pending list (fastupdate, on by default) batches the index work of captured
-- inserts, so capture pays little per row.
CREATE INDEX event_log_payload ON herald.event_log USING gin (payload jsonb_path_ops);

-- The console lists failed events newest first (and bulk redelivery counts them); they are
-- few among millions of delivered rows, so without this a page of them walks the whole
-- primary key backwards.
CREATE INDEX event_log_failed ON herald.event_log (id) WHERE status = 'failed';
