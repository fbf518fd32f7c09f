-- The ingest key store of the Postgres backend (storage/postgres/key_store.py), in the shared database.

-- name: schema
SELECT pg_advisory_xact_lock(1634492787, 3);  -- the schema lock of postgres.sql: processes create it once
CREATE TABLE IF NOT EXISTS ingest_keys (
    id TEXT PRIMARY KEY,              -- the public part of the key: adk_<id>_<secret>
    name TEXT NOT NULL,
    orgs TEXT[] NOT NULL,             -- the org ids the key may write
    secret_sha256 BYTEA NOT NULL,     -- the secret itself is never stored
    created_us BIGINT NOT NULL,
    revoked_us BIGINT
)

-- name: add
INSERT INTO ingest_keys (id, name, orgs, secret_sha256, created_us) VALUES ($id, $name, $orgs, $secret_sha256, $created_us)

-- name: list_keys
SELECT id, name, orgs, created_us, revoked_us FROM ingest_keys ORDER BY created_us, id

-- name: get_key
SELECT id, name, orgs, created_us, revoked_us FROM ingest_keys WHERE id = $id

-- name: revoke
UPDATE ingest_keys SET revoked_us = $revoked_us WHERE id = $id AND revoked_us IS NULL

-- name: active_keys
SELECT id, orgs, secret_sha256 FROM ingest_keys WHERE revoked_us IS NULL
