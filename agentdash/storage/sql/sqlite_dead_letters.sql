-- The dead-letter store (storage/embedded/dead_letters.py), in its own file <data-dir>/dead-letters.sqlite: the
-- server holds the read models' file, and `agentdash dlq` must work while it runs.

-- name: connect
-- WAL: the projector's look-ups never wait for a CLI write.
PRAGMA journal_mode=WAL

-- name: schema
CREATE TABLE IF NOT EXISTS dead_letters (
    seq INTEGER PRIMARY KEY,          -- the log entry
    org_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    type TEXT NOT NULL,
    error TEXT NOT NULL,              -- of the last failed attempt
    failed_us INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('dead', 'retry', 'dropped')),
    dropped_us INTEGER
)

-- name: bury
-- A failed retry is one attempt more; burying a dead one again (two workers bisecting the same chunk) is not.
INSERT INTO dead_letters (seq, org_id, event_id, type, error, failed_us, attempts, state)
VALUES (:seq, :org_id, :event_id, :type, :error, :failed_us, 1, 'dead')
ON CONFLICT (seq) DO UPDATE SET error = excluded.error, failed_us = excluded.failed_us,
                                attempts = dead_letters.attempts + CASE WHEN dead_letters.state = 'retry' THEN 1 ELSE 0 END,
                                state = 'dead'
WHERE dead_letters.state <> 'dropped'

-- name: unbury
DELETE FROM dead_letters WHERE seq = :seq AND state = 'dead'

-- name: list_letters
SELECT seq, org_id, event_id, type, error, failed_us, attempts, state FROM dead_letters
WHERE :include_dropped OR state <> 'dropped' ORDER BY seq

-- name: skipped
SELECT seq FROM dead_letters WHERE seq > :after_seq AND seq <= :last_seq

-- name: mark_retry
UPDATE dead_letters SET state = 'retry' WHERE seq = :seq AND state <> 'dropped'
RETURNING seq, org_id, event_id, type, error, failed_us, attempts, state

-- name: mark_all_retry
UPDATE dead_letters SET state = 'retry' WHERE state <> 'dropped'
RETURNING seq, org_id, event_id, type, error, failed_us, attempts, state

-- name: to_retry
SELECT seq FROM dead_letters WHERE state = 'retry' ORDER BY seq

-- name: forget
DELETE FROM dead_letters WHERE seq = :seq AND state = 'retry'

-- name: drop
UPDATE dead_letters SET state = 'dropped', dropped_us = :dropped_us WHERE seq = :seq AND state <> 'dropped'
RETURNING seq, org_id, event_id, type, error, failed_us, attempts, state

-- name: count
SELECT count(*) FROM dead_letters WHERE state <> 'dropped' AND (:org_id IS NULL OR org_id = :org_id)
