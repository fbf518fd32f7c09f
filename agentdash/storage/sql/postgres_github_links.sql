-- The GitHub link store of the Postgres backend (storage/postgres/github_links.py), in the shared database.

-- name: schema
SELECT pg_advisory_xact_lock(1634492787, 3);  -- the schema lock of postgres.sql: processes create it once
CREATE TABLE IF NOT EXISTS github_links (
    owner TEXT NOT NULL,              -- lower case
    repo TEXT NOT NULL,               -- lower case; '' for every repo of the owner
    org_id TEXT NOT NULL,
    secret TEXT NOT NULL,             -- in plain text: verifying GitHub's HMAC needs it
    created_us BIGINT NOT NULL,
    PRIMARY KEY (owner, repo)
)

-- name: exists
SELECT 1 FROM github_links WHERE owner = $owner AND repo = $repo

-- name: link
INSERT INTO github_links (owner, repo, org_id, secret, created_us) VALUES ($owner, $repo, $org_id, $secret, $created_us)
ON CONFLICT (owner, repo) DO UPDATE SET org_id = excluded.org_id, secret = excluded.secret, created_us = excluded.created_us

-- name: list_links
SELECT owner, repo, org_id, created_us FROM github_links ORDER BY owner, repo

-- name: unlink
DELETE FROM github_links WHERE owner = $owner AND repo = $repo RETURNING owner, repo, org_id, created_us

-- name: secrets
SELECT owner, repo, org_id, secret FROM github_links
