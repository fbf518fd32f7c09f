-- The agent-rule store (storage/embedded/agent_rules.py), in its own file <data-dir>/agent-rules.sqlite.

-- name: connect
-- WAL: the server's reloads never wait for a CLI write.
PRAGMA journal_mode=WAL

-- name: schema
CREATE TABLE IF NOT EXISTS agent_rules (
    org_id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('branch_prefix', 'author', 'body_pattern')),
    value TEXT NOT NULL,              -- authors in lower case: logins compare case-insensitively
    agent TEXT NOT NULL,
    created_us INTEGER NOT NULL,
    PRIMARY KEY (org_id, kind, value)
)

-- name: exists
SELECT 1 FROM agent_rules WHERE org_id = :org_id AND kind = :kind AND value = :value

-- name: add
INSERT INTO agent_rules (org_id, kind, value, agent, created_us) VALUES (:org_id, :kind, :value, :agent, :created_us)
ON CONFLICT (org_id, kind, value) DO UPDATE SET agent = excluded.agent, created_us = excluded.created_us

-- name: list_rules
SELECT org_id, kind, value, agent, created_us FROM agent_rules
WHERE :org_id IS NULL OR org_id = :org_id ORDER BY org_id, kind, value

-- name: remove
DELETE FROM agent_rules WHERE org_id = :org_id AND kind = :kind AND value = :value
RETURNING org_id, kind, value, agent, created_us
