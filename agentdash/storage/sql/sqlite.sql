-- The event log of the embedded backend (storage/embedded/event_log.py), <data-dir>/events.sqlite.
-- Loaded by name with storage/queries.py. A block may hold several statements, one per `;` line end.

-- name: connect
PRAGMA journal_mode=WAL;
-- NORMAL in WAL mode: a commit survives the process being killed (the OS holds the write);
-- only a power cut can lose the last transactions. FULL would fsync every batch (see durable).
PRAGMA synchronous=NORMAL;
PRAGMA cache_size=-262144;
PRAGMA busy_timeout=10000

-- name: durable
-- --durable, after connect: fsync the WAL at every commit, so a 200 survives a power cut too.
PRAGMA synchronous=FULL

-- name: synchronous
PRAGMA synchronous

-- name: schema
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,          -- arrival order, dense, assigned by the writer
    dedupe_key INTEGER NOT NULL,      -- 64-bit hash of (org_id, id); indexed in memory, not on disk
    received_us INTEGER NOT NULL,
    -- user_id and session_id: '' for none (pr.* events). A log from before them has NOT NULL here, which
    -- SQLite can drop only by copying the table: '' costs nothing and reads back as NULL (NULLIF below).
    id TEXT NOT NULL, type TEXT NOT NULL, org_id TEXT NOT NULL, user_id TEXT NOT NULL,
    session_id TEXT NOT NULL, run_id TEXT, team_id TEXT, occurred_us INTEGER NOT NULL,
    status TEXT, failure_category TEXT, input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL,
    cost_usd REAL NOT NULL, model TEXT, repo TEXT, attributes TEXT,
    -- last, where ALTER TABLE puts them in a log written before the usage event type (see upgrade)
    cache_read_tokens INTEGER NOT NULL DEFAULT 0, cache_write_tokens INTEGER NOT NULL DEFAULT 0,
    -- then those of the pr.* events (see upgrade_pr): NULL on other events, one header byte each
    branch TEXT, pr_number INTEGER, author TEXT, agent_mark TEXT,
    -- then those of code.changed (see upgrade_code)
    lines_added INTEGER NOT NULL DEFAULT 0, lines_removed INTEGER NOT NULL DEFAULT 0,
    commits INTEGER NOT NULL DEFAULT 0, series TEXT,
    -- then attributes.agent (see upgrade_agent)
    agent TEXT
)

-- name: columns
SELECT name FROM pragma_table_info('events')

-- name: upgrade
-- A log written before the cache token columns existed: its events had none, so 0 is their value.
ALTER TABLE events ADD COLUMN cache_read_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN cache_write_tokens INTEGER NOT NULL DEFAULT 0

-- name: upgrade_pr
-- A log written before pr.* events: their columns NULL, but a run's branch, which was in its attributes only.
ALTER TABLE events ADD COLUMN branch TEXT;
ALTER TABLE events ADD COLUMN pr_number INTEGER;
ALTER TABLE events ADD COLUMN author TEXT;
ALTER TABLE events ADD COLUMN agent_mark TEXT;
UPDATE events SET branch = CAST(json_extract(attributes, '$.branch') AS TEXT) WHERE instr(attributes, '"branch"') > 0

-- name: upgrade_code
-- A log written before code.changed events: none of its events has counts.
ALTER TABLE events ADD COLUMN lines_added INTEGER NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN lines_removed INTEGER NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN commits INTEGER NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN series TEXT

-- name: upgrade_agent
-- A log written before the agent column: an event's agent was in its attributes only.
ALTER TABLE events ADD COLUMN agent TEXT;
UPDATE events SET agent = CAST(json_extract(attributes, '$.agent') AS TEXT) WHERE instr(attributes, '"agent"') > 0

-- name: append
-- One row per new event: seq, dedupe_key, received_us, then the Event's fields in declaration order.
INSERT INTO events (seq, dedupe_key, received_us, id, type, org_id, user_id, session_id, run_id, team_id, occurred_us,
                    status, failure_category, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,
                    cost_usd, model, repo, attributes, branch, pr_number, author, agent_mark,
                    lines_added, lines_removed, commits, series, agent)
VALUES (?,?,?,?,?,?,coalesce(?, ''),coalesce(?, ''),?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)

-- name: archive_schema
-- The identities of archived entries (storage/embedded/archive.py): what keeps their ids duplicates for ever once
-- their rows left `events`, and their seqs taken (the log's high-water mark is max(seq) over both tables).
CREATE TABLE IF NOT EXISTS archived_ids (
    seq INTEGER PRIMARY KEY, dedupe_key INTEGER NOT NULL, org_id TEXT NOT NULL, id TEXT NOT NULL
)

-- name: dedupe_keys
-- Start-up: the key column, live and archived, after what the dedupe snapshot holds (all of it without one).
SELECT dedupe_key, seq FROM events WHERE seq > :after_seq
UNION ALL SELECT dedupe_key, seq FROM archived_ids WHERE seq > :after_seq

-- name: dedupe_key_at
-- One entry's key, live or archived: how a dedupe snapshot is checked to belong to this log.
SELECT dedupe_key FROM events WHERE seq = :seq UNION ALL SELECT dedupe_key FROM archived_ids WHERE seq = :seq

-- name: last_seq
-- The log's high-water mark, live or archived (both by their primary key: two b-tree lookups).
SELECT max(coalesce((SELECT max(seq) FROM events), 0), coalesce((SELECT max(seq) FROM archived_ids), 0))

-- name: stored_identities
-- What is really stored under candidate seqs, live or archived; {seqs} becomes one `?` per seq (given twice).
SELECT seq, org_id, id FROM events WHERE seq IN ({seqs})
UNION ALL SELECT seq, org_id, id FROM archived_ids WHERE seq IN ({seqs})

-- name: archive_span
-- The arrival times of the folded entries before the cutoff: which months an archive run visits.
SELECT min(received_us), max(received_us) FROM events WHERE seq <= :checkpoint AND received_us < :before_us

-- name: archive_rows
-- One batch of a month's folded entries before the cutoff: seq, received_us, then the Event's fields (archive.py).
SELECT seq, received_us, id, type, org_id, NULLIF(user_id, ''), NULLIF(session_id, ''), run_id, team_id, occurred_us,
       status, failure_category, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cost_usd,
       model, repo, attributes, branch, pr_number, author, agent_mark, lines_added, lines_removed, commits, series,
       agent
FROM events
WHERE seq > :after_seq AND seq <= :checkpoint AND received_us >= :start_us AND received_us < :end_us
ORDER BY seq LIMIT :limit

-- name: archiving_table
-- The seqs one archive or restore transaction moves, on its own connection.
CREATE TEMP TABLE IF NOT EXISTS archiving (seq INTEGER PRIMARY KEY)

-- name: archiving_clear
DELETE FROM archiving

-- name: archiving_add
INSERT INTO archiving (seq) VALUES (?)

-- name: archive_move
-- The written and verified rows leave the live log; their identities stay.
INSERT INTO archived_ids (seq, dedupe_key, org_id, id)
SELECT seq, dedupe_key, org_id, id FROM events WHERE seq IN (SELECT seq FROM archiving);
DELETE FROM events WHERE seq IN (SELECT seq FROM archiving)

-- name: archived_count
SELECT count(*) FROM archived_ids

-- name: archived_identities
SELECT seq, org_id, id FROM archived_ids WHERE seq IN (SELECT seq FROM archiving)

-- name: live_identities
SELECT seq, org_id, id FROM events WHERE seq IN (SELECT seq FROM archiving)

-- name: restore_row
-- An archived entry back in the live log under its seq (the columns of `append`).
INSERT INTO events (seq, dedupe_key, received_us, id, type, org_id, user_id, session_id, run_id, team_id, occurred_us,
                    status, failure_category, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,
                    cost_usd, model, repo, attributes, branch, pr_number, author, agent_mark,
                    lines_added, lines_removed, commits, series, agent)
VALUES (?,?,?,?,?,?,coalesce(?, ''),coalesce(?, ''),?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)

-- name: restored
-- After restore_row: the restored seqs are live again, no longer archived.
DELETE FROM archived_ids WHERE seq IN (SELECT seq FROM archiving)

-- name: received_at
SELECT received_us FROM events WHERE seq = :seq

-- name: read_chunk
-- The columns of base.LOG_COLUMNS, in that order.
SELECT seq, id, type, org_id, NULLIF(user_id, '') AS user_id, NULLIF(session_id, '') AS session_id, run_id, team_id,
       occurred_us, status, failure_category, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,
       cost_usd, model, repo, branch, pr_number, agent_mark, attributes, lines_added, lines_removed, commits, series,
       agent
FROM events WHERE seq > :after_seq ORDER BY seq LIMIT :limit

-- name: log_entries
-- seq, received_us, then the Event's fields in declaration order.
SELECT seq, received_us, id, type, org_id, NULLIF(user_id, ''), NULLIF(session_id, ''), run_id, team_id, occurred_us,
       status, failure_category, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cost_usd,
       model, repo, attributes, branch, pr_number, author, agent_mark, lines_added, lines_removed, commits, series,
       agent
FROM events WHERE seq > :after_seq ORDER BY seq LIMIT :limit
