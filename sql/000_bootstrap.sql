-- Herald bootstrap: the schema and the version table the migrations below are recorded in.
-- Idempotent; applied before every migration run.
CREATE SCHEMA IF NOT EXISTS herald;

CREATE TABLE IF NOT EXISTS herald.schema_version (
    version     integer PRIMARY KEY,
    name        text        NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
);
