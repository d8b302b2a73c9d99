-- Herald schema version 12: console login sessions, revocable server-side.
--
-- A console login gets a random 32-byte id in its cookie; only its HMAC-SHA256 keyed by the
-- console token is stored, so reading this table (a backup, a read-only role) gives no
-- cookie that works, and a new token ends every session. Logout and
-- `herald console-logout --all` set revoked_at; rows past expires_at are deleted at the
-- next login or console-logout.
CREATE TABLE herald.console_sessions (
    id_hash     bytea PRIMARY KEY CHECK (length(id_hash) = 32),
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    last_seen   timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz,
    user_agent  text,
    remote_addr text
);

-- Pruning deletes by expiry.
CREATE INDEX console_sessions_expiry ON herald.console_sessions (expires_at);
