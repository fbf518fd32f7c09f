-- The alert store (storage/embedded/alerts.py), in its own file <data-dir>/alerts.sqlite.

-- name: connect
-- WAL: the server's reads never wait for a CLI write.
PRAGMA journal_mode=WAL

-- name: schema
CREATE TABLE IF NOT EXISTS alert_rules (
    id TEXT PRIMARY KEY,              -- 12 hex characters
    org_id TEXT NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,               -- budget | success_rate | failed_runs
    threshold REAL NOT NULL,
    period TEXT NOT NULL,             -- month | day | 7d
    min_runs INTEGER NOT NULL,
    team_id TEXT,
    user_id TEXT,
    webhook_url TEXT NOT NULL,        -- may hold a credential (Slack): the file is 0600
    created_us INTEGER NOT NULL,
    updated_us INTEGER NOT NULL
)

-- name: add
INSERT INTO alert_rules (id, org_id, name, kind, threshold, period, min_runs, team_id, user_id, webhook_url,
                         created_us, updated_us)
VALUES (:id, :org_id, :name, :kind, :threshold, :period, :min_runs, :team_id, :user_id, :webhook_url,
        :created_us, :updated_us)

-- name: update
UPDATE alert_rules SET name = :name, kind = :kind, threshold = :threshold, period = :period, min_runs = :min_runs,
                       team_id = :team_id, user_id = :user_id, webhook_url = :webhook_url, updated_us = :updated_us
WHERE id = :id AND org_id = :org_id
RETURNING id, org_id, name, kind, threshold, period, webhook_url, min_runs, team_id, user_id, created_us, updated_us

-- name: get
SELECT id, org_id, name, kind, threshold, period, webhook_url, min_runs, team_id, user_id, created_us, updated_us
FROM alert_rules WHERE id = :id

-- name: list_rules
SELECT id, org_id, name, kind, threshold, period, webhook_url, min_runs, team_id, user_id, created_us, updated_us
FROM alert_rules WHERE :org_id IS NULL OR org_id = :org_id ORDER BY org_id, name, id

-- name: remove
DELETE FROM alert_rules WHERE id = :id
RETURNING id, org_id, name, kind, threshold, period, webhook_url, min_runs, team_id, user_id, created_us, updated_us

-- name: state_schema
-- Each rule's last evaluated state, every change of state (the history, with its delivery), and how far the
-- evaluation got: written together in one transaction (record), so a crash neither loses nor repeats a change.
CREATE TABLE IF NOT EXISTS alert_state (
    rule_id TEXT PRIMARY KEY,
    firing INTEGER NOT NULL,
    value REAL,
    period_key TEXT NOT NULL,
    changed_us INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS alert_history (
    id INTEGER PRIMARY KEY,
    rule_id TEXT NOT NULL,
    org_id TEXT NOT NULL,
    rule_name TEXT NOT NULL,
    kind TEXT NOT NULL,
    team_id TEXT,
    user_id TEXT,
    state TEXT NOT NULL,              -- firing | resolved
    value REAL,
    threshold REAL NOT NULL,
    period_key TEXT NOT NULL,         -- 2026-12, 2026-12-02, or the 7 days' last day
    at_us INTEGER NOT NULL,
    text TEXT NOT NULL,
    webhook_url TEXT NOT NULL,
    delivery TEXT NOT NULL,           -- pending | delivered | failed
    attempts INTEGER NOT NULL,
    next_attempt_us INTEGER NOT NULL,
    last_status INTEGER,
    last_error TEXT NOT NULL,
    delivered_us INTEGER
);
CREATE INDEX IF NOT EXISTS alert_history_by_org ON alert_history (org_id, id);
CREATE INDEX IF NOT EXISTS alert_history_pending ON alert_history (next_attempt_us) WHERE delivery = 'pending';
CREATE TABLE IF NOT EXISTS alert_checkpoint (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    seq INTEGER NOT NULL,
    evaluated_us INTEGER NOT NULL
)

-- name: states
SELECT rule_id, firing, value, period_key, changed_us FROM alert_state

-- name: save_state
INSERT INTO alert_state (rule_id, firing, value, period_key, changed_us)
VALUES (:rule_id, :firing, :value, :period_key, :changed_us)
ON CONFLICT (rule_id) DO UPDATE SET firing = excluded.firing, value = excluded.value, period_key = excluded.period_key,
                                    changed_us = excluded.changed_us

-- name: add_history
INSERT INTO alert_history (rule_id, org_id, rule_name, kind, team_id, user_id, state, value, threshold, period_key,
                           at_us, text, webhook_url, delivery, attempts, next_attempt_us, last_error)
VALUES (:rule_id, :org_id, :rule_name, :kind, :team_id, :user_id, :state, :value, :threshold, :period_key,
        :at_us, :text, :webhook_url, 'pending', 0, :at_us, '')
RETURNING id

-- name: save_checkpoint
INSERT INTO alert_checkpoint (one, seq, evaluated_us) VALUES (1, :seq, :evaluated_us)
ON CONFLICT (one) DO UPDATE SET seq = excluded.seq, evaluated_us = excluded.evaluated_us

-- name: checkpoint
SELECT seq, evaluated_us FROM alert_checkpoint

-- name: history
SELECT id, rule_id, org_id, rule_name, kind, team_id, user_id, state, value, threshold, period_key, at_us, text,
       webhook_url, delivery, attempts, last_status, last_error, delivered_us
FROM alert_history WHERE :org_id IS NULL OR org_id = :org_id ORDER BY id DESC LIMIT :limit

-- name: due
SELECT id, rule_id, org_id, rule_name, kind, team_id, user_id, state, value, threshold, period_key, at_us, text,
       webhook_url, delivery, attempts, last_status, last_error, delivered_us
FROM alert_history WHERE delivery = 'pending' AND next_attempt_us <= :now_us ORDER BY id LIMIT :limit

-- name: lease
UPDATE alert_history SET next_attempt_us = :until_us WHERE id = :id

-- name: mark_delivery
UPDATE alert_history SET delivery = :delivery, attempts = attempts + 1, next_attempt_us = :next_attempt_us,
                         last_status = :last_status, last_error = :last_error, delivered_us = :delivered_us
WHERE id = :id
