-- Herald schema version 14: batched delivery (a trigger's `batch:`).
--
-- A batch is one request carrying many events; each event still gets its own attempt row
-- (its tries, backoff and failure are its own), and the row names the request it went in:
-- the batch id that was the request's webhook-id. NULL for an event sent alone.
ALTER TABLE herald.invocation_log ADD COLUMN batch_id text;
