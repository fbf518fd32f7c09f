-- The agent-rule store of the Postgres backend (storage/postgres/agent_rules.py), in the shared database.

-- name: schema
SELECT pg_advisory_xact_lock(1634492787, 3);  -- the schema lock of postgres.sql: processes create it once
CREATE TABLE IF NOT EXISTS agent_rules (
    org_id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('branch_prefix', 'author', 'body_pattern')),
    value TEXT NOT NULL,              -- authors in lower case: logins compare case-insensitively
    agent TEXT NOT NULL,
    created_us BIGINT NOT NULL,
    PRIMARY KEY (org_id, kind, value)
)

-- name: exists
SELECT 1 FROM agent_rules WHERE org_id = $org_id AND kind = $kind AND value = $value

-- name: add
INSERT INTO agent_rules (org_id, kind, value, agent, created_us) VALUES ($org_id, $kind, $value, $agent, $created_us)
ON CONFLICT (org_id, kind, value) DO UPDATE SET agent = excluded.agent, created_us = excluded.created_us

-- name: list_rules
SELECT org_id, kind, value, agent, created_us FROM agent_rules
WHERE $org_id::text IS NULL OR org_id = $org_id ORDER BY org_id, kind, value

-- name: remove
DELETE FROM agent_rules WHERE org_id = $org_id AND kind = $kind AND value = $value
RETURNING org_id, kind, value, agent, created_us
