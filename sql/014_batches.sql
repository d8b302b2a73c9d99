-- Herald schema version 14: batched delivery (a trigger's `batch:`).
--
-- A batch is one request carrying many events; each event still gets its own attempt row
-- (its tries, backoff and failure are its own), and the row names the request it went in:
-- the batch id that was the request's webhook-id. NULL for an event sent alone.
--
-- Every event of a batch was sent with the same headers and got the same response, so the
-- recorder stores them once per batch: on the first event's attempt row. The others keep
-- request_headers '{}' and no response body, and readers (the console) take both from the
-- batch's first row through this index, which holds one entry per batch. With 100 events per
-- request, writing the headers and body a hundred times was most of the attempt log's volume.
ALTER TABLE herald.invocation_log ADD COLUMN batch_id text;
CREATE INDEX invocation_log_batch ON herald.invocation_log (batch_id)
    WHERE batch_id IS NOT NULL AND request_headers <> '{}'::jsonb;
