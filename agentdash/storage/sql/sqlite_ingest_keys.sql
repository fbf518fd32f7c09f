-- The ingest key store (storage/embedded/key_store.py), in its own file <data-dir>/ingest-keys.sqlite.

-- name: connect
-- WAL: the server's reads never wait for a CLI write.
PRAGMA journal_mode=WAL

-- name: schema
CREATE TABLE IF NOT EXISTS ingest_keys (
    id TEXT PRIMARY KEY,              -- the public part of the key: adk_<id>_<secret>
    name TEXT NOT NULL,
    orgs TEXT NOT NULL,               -- JSON array of the org ids the key may write
    secret_sha256 BLOB NOT NULL,      -- the secret itself is never stored
    created_us INTEGER NOT NULL,
    revoked_us INTEGER
)

-- name: add
INSERT INTO ingest_keys (id, name, orgs, secret_sha256, created_us) VALUES (:id, :name, :orgs, :secret_sha256, :created_us)

-- name: list_keys
SELECT id, name, orgs, created_us, revoked_us FROM ingest_keys ORDER BY created_us, id

-- name: get_key
SELECT id, name, orgs, created_us, revoked_us FROM ingest_keys WHERE id = :id

-- name: revoke
UPDATE ingest_keys SET revoked_us = :revoked_us WHERE id = :id AND revoked_us IS NULL

-- name: active_keys
SELECT id, orgs, secret_sha256 FROM ingest_keys WHERE revoked_us IS NULL
