-- Herald schema version 10: backfills (`herald backfill`), one row per run.
--
-- A backfill walks a table in primary-key order and creates a MANUAL event per row. Each
-- batch's events and the key of its last row are committed together, so an interrupted
-- backfill resumes after the last committed row: no row is skipped and none is sent twice.
-- A run is known by its trigger and its condition (the --where text and the trigger's
-- filter); a second run with the same ones continues the unfinished one.
CREATE TABLE herald.backfills (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    trigger_name  text        NOT NULL,
    schema_name   text        NOT NULL,
    table_name    text        NOT NULL,
    condition     text        NOT NULL DEFAULT '',
    key_columns   text[]      NOT NULL,
    -- The last backfilled row's key, one text value per key column; NULL before the first batch.
    last_key      text[],
    rows_done     bigint      NOT NULL DEFAULT 0,
    started_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz
);

-- At most one unfinished run per trigger and condition: the one a rerun resumes.
CREATE UNIQUE INDEX backfills_unfinished ON herald.backfills (trigger_name, condition)
    WHERE finished_at IS NULL;
