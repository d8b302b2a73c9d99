-- Herald schema version 20: event ids made with SipHash rounds from here on.
--
-- A payload id (webhook-id) is a keyed permutation of the event's number (see EventID in
-- the worker). Version 1 used HMAC-SHA256 as its round function, about a third of the
-- worker's claiming CPU per event; version 2 uses SipHash-2-4. Receivers deduplicate on the
-- id, so an event keeps the id its first attempt carried: events numbered before the
-- boundary recorded here keep version 1 ids (redeliveries, retries and lookups included),
-- events numbered from it get version 2. The boundary is past every number the id
-- sequence has handed out (pg_sequences.last_value is the value logged ahead, never
-- behind) and every row in the log; on a new installation it is the first number.
ALTER TABLE herald.installation ADD COLUMN event_id_v2_from bigint;
UPDATE herald.installation SET event_id_v2_from = greatest(
    (SELECT coalesce(q.last_value + 1, q.start_value)
     FROM pg_catalog.pg_sequences q
     WHERE pg_catalog.format('%I.%I', q.schemaname, q.sequencename)
           = pg_catalog.pg_get_serial_sequence('herald.event_log', 'id')),
    (SELECT coalesce(max(id), 0) + 1 FROM herald.event_log),
    1);
ALTER TABLE herald.installation ALTER COLUMN event_id_v2_from SET NOT NULL,
    ALTER COLUMN event_id_v2_from SET DEFAULT 1;
