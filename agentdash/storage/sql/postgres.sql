-- The PostgreSQL backend (storage/postgres/): event log, read models and queries in one database,
-- shared by every agentdash process pointed at it. Loaded by name with storage/queries.py with pyformat=True: `$name`
-- parameters become psycopg's `%(name)s`. A block may hold several statements, one per `;` line end.
--
-- The read models mean exactly what they mean in duckdb.sql and fold the same way: every runs and
-- sessions column is a min, a max or the value of the earliest/latest event by (occurred_us, id)
-- (DISTINCT ON here, arg_min/arg_max there), so any order or grouping of events gives the same rows.
-- Ids compare byte-wise (COLLATE "C"), as in DuckDB and the oracle, whatever the database's locale.
-- Advisory lock keys: (1634492787, n) with n = 1 log append, 2 fold, 3 schema.

-- name: schema
SELECT pg_advisory_xact_lock(1634492787, 3);  -- processes starting together create the tables once
-- The log is partitioned by month of arrival (received_us; storage/postgres/archive.py makes the partitions
-- events_YYYY_MM as appends need them, and drops those archived whole). A key of a partitioned table must hold the
-- partition key: seq is unique by the append (under the log lock), and event_ids does the dedupe.
CREATE TABLE IF NOT EXISTS events (
    seq BIGINT NOT NULL,              -- commit order, dense: appends hold the log lock until COMMIT
    received_us BIGINT NOT NULL,
    id TEXT NOT NULL, type TEXT NOT NULL, org_id TEXT NOT NULL,
    user_id TEXT, session_id TEXT,    -- NULL on pr.* events only (upgrade_log drops an older log's NOT NULL)
    run_id TEXT, team_id TEXT, occurred_us BIGINT NOT NULL,
    status TEXT, failure_category TEXT, input_tokens BIGINT NOT NULL, output_tokens BIGINT NOT NULL,
    cost_usd NUMERIC NOT NULL,        -- the decimal the producer sent, so sums are exact
    model TEXT, repo TEXT, attributes TEXT,
    cache_read_tokens BIGINT NOT NULL DEFAULT 0, cache_write_tokens BIGINT NOT NULL DEFAULT 0,  -- see upgrade_log
    branch TEXT, pr_number BIGINT, author TEXT, agent_mark TEXT,  -- pr.* events (branch: a run's too)
    lines_added BIGINT NOT NULL DEFAULT 0, lines_removed BIGINT NOT NULL DEFAULT 0,  -- code.changed events
    commits BIGINT NOT NULL DEFAULT 0, series TEXT,
    agent TEXT,                       -- attributes.agent (see upgrade_log)
    PRIMARY KEY (seq, received_us)    -- by seq: the fold's ranges, max(seq), one index per partition
) PARTITION BY RANGE (received_us);
-- Dedupe for ever: every id ever logged, archived ones too, with its seq (restore checks an entry against it).
CREATE TABLE IF NOT EXISTS event_ids (org_id TEXT NOT NULL, id TEXT NOT NULL, seq BIGINT NOT NULL,
                                      PRIMARY KEY (org_id, id));
CREATE TABLE IF NOT EXISTS read_model_version (version INTEGER NOT NULL);

-- name: log_is_current
SELECT count(*) = 5 FROM information_schema.columns
WHERE table_schema = current_schema() AND table_name = 'events'
  AND (column_name IN ('cache_read_tokens', 'agent_mark', 'lines_added', 'agent') OR column_name = 'user_id' AND is_nullable = 'YES')

-- name: upgrade_log
-- A log written before the cache token columns existed: its events had none, so 0 is their value; one written
-- before pr.* events: their columns NULL but a run's branch, copied from its attributes; user and session
-- nullable.
-- Run only when log_is_current says so: ALTER TABLE locks the log, even when IF NOT EXISTS finds nothing to do.
ALTER TABLE events ADD COLUMN IF NOT EXISTS cache_read_tokens BIGINT NOT NULL DEFAULT 0,
                   ADD COLUMN IF NOT EXISTS cache_write_tokens BIGINT NOT NULL DEFAULT 0,
                   ADD COLUMN IF NOT EXISTS branch TEXT, ADD COLUMN IF NOT EXISTS pr_number BIGINT,
                   ADD COLUMN IF NOT EXISTS author TEXT, ADD COLUMN IF NOT EXISTS agent_mark TEXT,
                   ADD COLUMN IF NOT EXISTS lines_added BIGINT NOT NULL DEFAULT 0,
                   ADD COLUMN IF NOT EXISTS lines_removed BIGINT NOT NULL DEFAULT 0,
                   ADD COLUMN IF NOT EXISTS commits BIGINT NOT NULL DEFAULT 0, ADD COLUMN IF NOT EXISTS series TEXT,
                   ADD COLUMN IF NOT EXISTS agent TEXT,
                   ALTER COLUMN user_id DROP NOT NULL, ALTER COLUMN session_id DROP NOT NULL;
UPDATE events SET branch = (attributes::jsonb) ->> 'branch' WHERE branch IS NULL AND strpos(attributes, '"branch"') > 0;
-- an event's agent was in its attributes only
UPDATE events SET agent = (attributes::jsonb) ->> 'agent' WHERE agent IS NULL AND strpos(attributes, '"agent"') > 0

-- name: read_models
CREATE TABLE IF NOT EXISTS runs (
    org_id TEXT NOT NULL, run_id TEXT NOT NULL, day DATE NOT NULL,
    first_us BIGINT NOT NULL, first_id TEXT NOT NULL,
    user_id TEXT NOT NULL, team_id TEXT, session_id TEXT NOT NULL,
    queued_us BIGINT, started_us BIGINT, handoff_us BIGINT,
    finished_us BIGINT, finished_id TEXT,
    status TEXT, failure_category TEXT,
    input_tokens BIGINT, output_tokens BIGINT, cache_read_tokens BIGINT, cache_write_tokens BIGINT, cost_usd NUMERIC,
    model_us BIGINT, model_id TEXT, model TEXT,       -- from the earliest event carrying a model
    repo_us BIGINT, repo_id TEXT, repo TEXT,
    followed_up BOOLEAN NOT NULL DEFAULT false,
    branch_us BIGINT, branch_id TEXT, branch TEXT,    -- attributes.branch, like repo
    agent_us BIGINT, agent_id TEXT, agent TEXT,       -- attributes.agent, like repo
    PRIMARY KEY (org_id, run_id)
);
-- Every column the metric queries read, so a year's metrics scan this (a third of the table's width,
-- whose ids are long) by index-only scan; pages a fold changed since the last vacuum cost a heap visit.
CREATE INDEX IF NOT EXISTS runs_by_day ON runs (org_id, day)
    INCLUDE (status, queued_us, started_us, finished_us, handoff_us, followed_up, cost_usd, input_tokens,
             output_tokens, cache_read_tokens, cache_write_tokens, session_id, user_id, team_id, model, repo, agent);
-- usage_items and code_items look up the run of each usage event and code change: by index-only scan of this
-- (a fifth of the table's width) instead of the whole table.
CREATE INDEX IF NOT EXISTS runs_by_run ON runs (org_id, run_id) INCLUDE (day, team_id, user_id, model, repo, agent);
CREATE INDEX IF NOT EXISTS runs_by_session ON runs (org_id, session_id);
CREATE INDEX IF NOT EXISTS runs_by_branch ON runs (org_id, branch) WHERE branch IS NOT NULL;  -- fold_pr_links
CREATE TABLE IF NOT EXISTS sessions (
    org_id TEXT NOT NULL, session_id TEXT NOT NULL, day DATE NOT NULL,
    first_us BIGINT NOT NULL, first_id TEXT NOT NULL,
    user_id TEXT NOT NULL, team_id TEXT,
    first_message_us BIGINT, last_message_us BIGINT,
    PRIMARY KEY (org_id, session_id)
);
CREATE INDEX IF NOT EXISTS sessions_by_day ON sessions (org_id, day);
CREATE TABLE IF NOT EXISTS activity (org_id TEXT NOT NULL, day DATE NOT NULL, user_id TEXT NOT NULL, team_id TEXT);
CREATE INDEX IF NOT EXISTS activity_by_day ON activity (org_id, day);
CREATE TABLE IF NOT EXISTS queued (
    org_id TEXT NOT NULL, session_id TEXT NOT NULL, user_id TEXT NOT NULL, run_id TEXT NOT NULL, queued_us BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS queued_by_session ON queued (org_id, session_id);
-- Every usage event; where it counts (its run, else its session) is looked up at query time, as in duckdb.sql.
CREATE TABLE IF NOT EXISTS usage (
    org_id TEXT NOT NULL, run_id TEXT, session_id TEXT NOT NULL, day DATE NOT NULL, model TEXT,
    input_tokens BIGINT NOT NULL, output_tokens BIGINT NOT NULL, cache_read_tokens BIGINT NOT NULL,
    cache_write_tokens BIGINT NOT NULL, cost_usd NUMERIC NOT NULL,
    agent TEXT  -- its own; without one it counts under its run's (usage_items)
);
CREATE INDEX IF NOT EXISTS usage_by_day ON usage (org_id, day);
-- Every code.changed event, counts as sent and what they count; see duckdb.sql and fold_code.
CREATE TABLE IF NOT EXISTS code_changes (
    org_id TEXT NOT NULL, id TEXT NOT NULL, run_id TEXT, session_id TEXT NOT NULL, day DATE NOT NULL,
    occurred_us BIGINT NOT NULL, model TEXT, repo TEXT, series TEXT,
    lines_added BIGINT NOT NULL, lines_removed BIGINT NOT NULL, commits BIGINT NOT NULL,
    added BIGINT NOT NULL, removed BIGINT NOT NULL, committed BIGINT NOT NULL,
    agent TEXT,  -- its own, as usage
    PRIMARY KEY (org_id, id)
);
CREATE INDEX IF NOT EXISTS code_changes_by_day ON code_changes (org_id, day);
CREATE INDEX IF NOT EXISTS code_changes_by_series ON code_changes (org_id, series) WHERE series IS NOT NULL;
-- One row per pull request, as in duckdb.sql (first_*, who_*, last_*: the earliest/latest event by (us, id)).
CREATE TABLE IF NOT EXISTS prs (
    org_id TEXT NOT NULL, repo_key TEXT NOT NULL, pr_number BIGINT NOT NULL,
    first_us BIGINT NOT NULL, first_id TEXT NOT NULL, pr_repo TEXT NOT NULL, head_branch TEXT NOT NULL,
    who_us BIGINT, who_id TEXT, event_user_id TEXT, event_team_id TEXT,
    opened_us BIGINT, merged_us BIGINT,
    last_us BIGINT NOT NULL, last_id TEXT NOT NULL, last_type TEXT NOT NULL,
    marked BOOLEAN NOT NULL,
    linked BOOLEAN NOT NULL DEFAULT false, user_id TEXT, team_id TEXT, model TEXT, repo TEXT,
    mark_us BIGINT, mark_id TEXT, mark TEXT,  -- the earliest agent_mark
    agent TEXT,                               -- the run's agent, else mark
    PRIMARY KEY (org_id, repo_key, pr_number)
);
CREATE INDEX IF NOT EXISTS prs_by_branch ON prs (org_id, repo_key, head_branch);
-- A PR's title and url, each of its latest event carrying it, as in duckdb.sql.
CREATE TABLE IF NOT EXISTS pr_texts (
    org_id TEXT NOT NULL, repo_key TEXT NOT NULL, pr_number BIGINT NOT NULL,
    title_us BIGINT, title_id TEXT, title TEXT, url_us BIGINT, url_id TEXT, url TEXT,
    PRIMARY KEY (org_id, repo_key, pr_number)
);
CREATE TABLE IF NOT EXISTS checkpoint (seq BIGINT NOT NULL, folded_at_us BIGINT);
INSERT INTO checkpoint SELECT 0, NULL WHERE NOT EXISTS (SELECT 1 FROM checkpoint)

-- name: log_is_partitioned
SELECT EXISTS (SELECT 1 FROM pg_partitioned_table WHERE partrelid = 'events'::regclass)

-- name: partition_log_table
-- The upgrade of a log written before partitioning (archive.partition_log, under the schema lock, in one
-- transaction): a partitioned copy with the same columns in the same order, its partitions made next.
CREATE TABLE events_partitioned (LIKE events INCLUDING DEFAULTS) PARTITION BY RANGE (received_us);
ALTER TABLE events_partitioned ADD PRIMARY KEY (seq, received_us)

-- name: partition_log_span
SELECT min(received_us), max(received_us) FROM events

-- name: partition_log_copy
INSERT INTO events_partitioned SELECT * FROM events;
INSERT INTO event_ids (org_id, id, seq) SELECT org_id, id, seq FROM events ON CONFLICT (org_id, id) DO NOTHING;
DROP TABLE events;
ALTER TABLE events_partitioned RENAME TO events

-- name: event_ids_missing
-- A partitioned log without its ids: restored from a dump that left event_ids out (pg_dump -t 'events*' does).
SELECT NOT EXISTS (SELECT 1 FROM event_ids) AND EXISTS (SELECT 1 FROM events)

-- name: event_ids_fill
INSERT INTO event_ids (org_id, id, seq) SELECT org_id, id, seq FROM events ON CONFLICT (org_id, id) DO NOTHING

-- name: partition_exists
SELECT to_regclass($name) IS NOT NULL

-- name: create_partition
-- A month's partition ({name}, [{start_us}, {end_us}): psycopg.sql fills them in). CREATE + ATTACH rather than
-- CREATE … PARTITION OF: attaching locks `events` only against other schema changes, not against reads.
CREATE TABLE {name} (LIKE events INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
ALTER TABLE events ATTACH PARTITION {name} FOR VALUES FROM ({start_us}) TO ({end_us})

-- name: upgrade_partition
-- partition_log's: a month of the new table, filled in the same transaction.
CREATE TABLE {name} PARTITION OF events_partitioned FOR VALUES FROM ({start_us}) TO ({end_us})

-- name: drop_partition
-- A month archived whole.
DROP TABLE IF EXISTS {name}

-- name: drop_read_models
DROP TABLE IF EXISTS runs, sessions, activity, queued, usage, code_changes, prs, pr_texts, checkpoint

-- name: load_version
SELECT max(version) FROM read_model_version

-- name: save_version
DELETE FROM read_model_version;
INSERT INTO read_model_version VALUES ($version)

-- name: lock_log
-- Held until COMMIT: appends commit one after another, so rows become visible in seq order and a
-- reader of `seq > checkpoint` never sees seq n+1 before seq n.
SELECT pg_advisory_xact_lock(1634492787, 1)

-- name: append_events
-- One statement per group commit. Under the log lock nobody else appends, so NOT EXISTS is exact and
-- seq stays dense; event_ids' primary key is what guarantees dedupe, ON CONFLICT never fires in practice.
-- max(seq) is the high-water mark: an archive never takes the newest entry (archive.py), so it stays in events.
WITH incoming AS (
    SELECT * FROM unnest($id::text[], $type::text[], $org_id::text[], $user_id::text[], $session_id::text[],
                         $run_id::text[], $team_id::text[], $occurred_us::bigint[], $status::text[],
                         $failure_category::text[], $input_tokens::bigint[], $output_tokens::bigint[],
                         $cache_read_tokens::bigint[], $cache_write_tokens::bigint[],
                         $cost_usd::numeric[], $model::text[], $repo::text[], $attributes::text[],
                         $branch::text[], $pr_number::bigint[], $author::text[], $agent_mark::text[],
                         $lines_added::bigint[], $lines_removed::bigint[], $commits::bigint[], $series::text[],
                         $agent::text[])
        WITH ORDINALITY AS i(id, type, org_id, user_id, session_id, run_id, team_id, occurred_us, status,
                             failure_category, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,
                             cost_usd, model, repo, attributes, branch, pr_number, author, agent_mark,
                             lines_added, lines_removed, commits, series, agent, ord)
),
fresh AS (  -- new events, each once (its first copy in the group), numbered after the log's end
    SELECT (SELECT coalesce(max(seq), 0) FROM events) + row_number() OVER (ORDER BY ord) AS seq, f.*
    FROM (SELECT DISTINCT ON (org_id, id) * FROM incoming i
          WHERE NOT EXISTS (SELECT 1 FROM event_ids e WHERE e.org_id = i.org_id AND e.id = i.id)
          ORDER BY org_id, id, ord) f
),
ids AS (
    INSERT INTO event_ids (org_id, id, seq) SELECT org_id, id, seq FROM fresh
    ON CONFLICT (org_id, id) DO NOTHING
    RETURNING seq
)
INSERT INTO events (seq, received_us, id, type, org_id, user_id, session_id, run_id, team_id, occurred_us, status,
                    failure_category, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cost_usd,
                    model, repo, attributes, branch, pr_number, author, agent_mark,
                    lines_added, lines_removed, commits, series, agent)
SELECT seq, $received_us,
       id, type, org_id, user_id, session_id, run_id, team_id, occurred_us, status,
       failure_category, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cost_usd,
       model, repo, attributes, branch, pr_number, author, agent_mark, lines_added, lines_removed, commits, series,
       agent
FROM fresh WHERE seq IN (SELECT seq FROM ids)
RETURNING org_id, id

-- name: log_position
SELECT (SELECT coalesce(max(seq), 0) FROM events) AS last_seq,
       (SELECT received_us FROM events WHERE seq = $after_seq + 1) AS oldest_unfolded_received_us

-- name: log_footprint
-- For /metrics: entries, the partitions' bytes (indexes and TOAST too), event_ids (table and key) as the dedupe.
SELECT (SELECT coalesce(max(seq), 0) FROM events) AS events,
       (SELECT coalesce(sum(pg_total_relation_size(inhrelid)), 0) FROM pg_inherits
        WHERE inhparent = 'events'::regclass)::bigint AS bytes,
       (SELECT coalesce(max(seq), 0) FROM events) AS dedupe_entries,
       pg_total_relation_size('event_ids'::regclass) AS dedupe_bytes

-- name: log_end
SELECT least($after_seq + $limit, coalesce(max(seq), 0)) FROM events

-- name: log_entries
-- seq, received_us, then the Event's fields in declaration order; money back as the float it was sent as
-- (the stored decimal is its repr, so the cast gives the same float).
SELECT seq, received_us, id, type, org_id, user_id, session_id, run_id, team_id, occurred_us, status,
       failure_category, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cost_usd::float8,
       model, repo, attributes, branch, pr_number, author, agent_mark, lines_added, lines_removed, commits, series,
       agent
FROM events WHERE seq > $after_seq ORDER BY seq LIMIT $limit

-- name: try_archive_lock
-- One archive run at a time across every process (storage/postgres/archive.py), on a session of its own.
SELECT pg_try_advisory_lock(1634492787, 4)

-- name: archive_lock
-- The same lock, waited for: a restore (it must not run beside an archive run or another restore).
SELECT pg_advisory_lock(1634492787, 4)

-- name: archive_unlock
SELECT pg_advisory_unlock(1634492787, 4)

-- name: archive_bounds
-- Folded entries only, and never the newest (its seq is the log's high-water mark, max(seq)); dead letters stay.
SELECT (SELECT seq FROM checkpoint) AS checkpoint, (SELECT coalesce(max(seq), 0) FROM events) AS last_seq,
       (SELECT coalesce(array_agg(seq), '{}') FROM dead_letters) AS dead

-- name: archive_span
SELECT min(received_us), max(received_us) FROM events
WHERE seq <= $checkpoint AND seq < $last_seq AND received_us < $before_us

-- name: archive_rows
-- One batch of a month's archivable entries: seq, received_us, then the Event's fields (archive.ARCHIVE_COLUMNS).
SELECT seq, received_us, id, type, org_id, user_id, session_id, run_id, team_id, occurred_us, status,
       failure_category, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cost_usd::float8,
       model, repo, attributes, branch, pr_number, author, agent_mark, lines_added, lines_removed, commits, series,
       agent
FROM events
WHERE received_us >= $start_us AND received_us < $end_us AND seq > $after_seq AND seq <= $checkpoint
  AND seq < $last_seq
ORDER BY seq LIMIT $limit

-- name: month_rows
SELECT count(*) FROM events WHERE received_us >= $start_us AND received_us < $end_us

-- name: archive_delete
DELETE FROM events WHERE received_us >= $start_us AND received_us < $end_us AND seq = ANY($seqs::bigint[])

-- name: archived_count
-- Ids logged and no longer live: what only the archive holds.
SELECT (SELECT count(*) FROM event_ids) - (SELECT count(*) FROM events)

-- name: restore_known
-- The seqs this log gave these identities (event_ids), and which of the entries' seqs are live.
SELECT (SELECT coalesce(array_agg(k.seq ORDER BY i.ord), '{}') FROM unnest($org_id::text[], $id::text[])
          WITH ORDINALITY AS i(org_id, id, ord) LEFT JOIN event_ids k USING (org_id, id)) AS known,
       (SELECT coalesce(array_agg(seq), '{}') FROM events WHERE seq = ANY($seq::bigint[])) AS live

-- name: restore_rows
-- Archived entries back under their seqs (their ids are in event_ids already).
INSERT INTO events (seq, received_us, id, type, org_id, user_id, session_id, run_id, team_id, occurred_us, status,
                    failure_category, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cost_usd,
                    model, repo, attributes, branch, pr_number, author, agent_mark,
                    lines_added, lines_removed, commits, series, agent)
SELECT * FROM unnest($seq::bigint[], $received_us::bigint[], $id::text[], $type::text[], $org_id::text[],
                     $user_id::text[], $session_id::text[], $run_id::text[], $team_id::text[], $occurred_us::bigint[],
                     $status::text[], $failure_category::text[], $input_tokens::bigint[], $output_tokens::bigint[],
                     $cache_read_tokens::bigint[], $cache_write_tokens::bigint[], $cost_usd::numeric[],
                     $model::text[], $repo::text[], $attributes::text[], $branch::text[], $pr_number::bigint[],
                     $author::text[], $agent_mark::text[], $lines_added::bigint[], $lines_removed::bigint[],
                     $commits::bigint[], $series::text[], $agent::text[])

-- name: try_fold_lock
-- One folder at a time across every process; released at COMMIT, ROLLBACK or when the folder dies.
SELECT pg_try_advisory_xact_lock(1634492787, 2)

-- name: wait_fold_lock
SELECT pg_advisory_xact_lock(1634492787, 2)

-- name: load_checkpoint
SELECT seq, folded_at_us FROM checkpoint

-- name: save_checkpoint
UPDATE checkpoint SET seq = $seq, folded_at_us = $folded_at_us

-- name: fold_chunk
-- Dead letters (postgres_dead_letters.sql) are left out, in any state: a rebuild skips them too until retried.
CREATE TEMP TABLE chunk ON COMMIT DROP AS
SELECT seq, id, type, org_id, user_id, session_id, run_id, team_id, occurred_us, status, failure_category,
       input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cost_usd, model, repo,
       branch, pr_number, agent_mark, DATE '1970-01-01' + floor(occurred_us / 86400000000.0)::int AS day,
       lines_added, lines_removed, commits, series, agent
FROM events WHERE seq > $after_seq AND seq <= $last_seq
  AND seq NOT IN (SELECT seq FROM dead_letters WHERE seq > $after_seq AND seq <= $last_seq);
ANALYZE chunk

-- name: refold_chunk
-- fold_chunk's columns, of those dead letters in the seqs given that are still marked for retry.
CREATE TEMP TABLE chunk ON COMMIT DROP AS
SELECT seq, id, type, org_id, user_id, session_id, run_id, team_id, occurred_us, status, failure_category,
       input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cost_usd, model, repo,
       branch, pr_number, agent_mark, DATE '1970-01-01' + floor(occurred_us / 86400000000.0)::int AS day,
       lines_added, lines_removed, commits, series, agent
FROM events WHERE seq IN (SELECT seq FROM dead_letters WHERE seq = ANY($seqs::bigint[]) AND state = 'retry');
ANALYZE chunk

-- name: analyze_read_models
-- After a big fold, outside its transaction (read_models.ANALYZE_*): fresh statistics before autovacuum's round.
ANALYZE runs, sessions, activity, queued, usage, code_changes, prs, pr_texts

-- name: chunk_seqs
SELECT seq FROM chunk

-- name: forget_refolded
-- In the refold's transaction: folded and no longer dead letters, together.
DELETE FROM dead_letters WHERE seq IN (SELECT seq FROM chunk)

-- name: fold_runs
CREATE TEMP TABLE run_parts ON COMMIT DROP AS
WITH parts AS (
    SELECT org_id, run_id, first_us, first_id, user_id, team_id, session_id,
           queued_us, started_us, handoff_us, finished_us, finished_id,
           status, failure_category, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cost_usd,
           model_us, model_id, model, repo_us, repo_id, repo, branch_us, branch_id, branch, agent_us, agent_id, agent
    FROM runs WHERE (org_id, run_id) IN (SELECT org_id, run_id FROM chunk WHERE run_id IS NOT NULL)
    UNION ALL
    SELECT org_id, run_id, occurred_us, id, user_id, team_id, session_id,
           CASE WHEN type = 'run.queued' THEN occurred_us END,
           CASE WHEN type = 'run.started' THEN occurred_us END,
           CASE WHEN type = 'handoff' THEN occurred_us END,
           CASE WHEN type = 'run.finished' THEN occurred_us END,
           CASE WHEN type = 'run.finished' THEN id END,
           CASE WHEN type = 'run.finished' THEN status END,
           CASE WHEN type = 'run.finished' THEN failure_category END,
           CASE WHEN type = 'run.finished' THEN input_tokens END,
           CASE WHEN type = 'run.finished' THEN output_tokens END,
           CASE WHEN type = 'run.finished' THEN cache_read_tokens END,
           CASE WHEN type = 'run.finished' THEN cache_write_tokens END,
           CASE WHEN type = 'run.finished' THEN cost_usd END,
           CASE WHEN model IS NOT NULL THEN occurred_us END, CASE WHEN model IS NOT NULL THEN id END, model,
           CASE WHEN repo IS NOT NULL THEN occurred_us END, CASE WHEN repo IS NOT NULL THEN id END, repo,
           CASE WHEN branch IS NOT NULL THEN occurred_us END, CASE WHEN branch IS NOT NULL THEN id END, branch,
           CASE WHEN agent IS NOT NULL THEN occurred_us END, CASE WHEN agent IS NOT NULL THEN id END, agent
    FROM chunk WHERE run_id IS NOT NULL
),
anchor AS (  -- the earliest event: user, team, session
    SELECT DISTINCT ON (org_id, run_id) org_id, run_id, first_us, first_id, user_id, team_id, session_id
    FROM parts ORDER BY org_id, run_id, first_us, first_id COLLATE "C"
),
times AS (
    SELECT org_id, run_id, min(queued_us) AS queued_us, min(started_us) AS started_us, min(handoff_us) AS handoff_us
    FROM parts GROUP BY org_id, run_id
),
outcome AS (  -- the latest run.finished wins
    SELECT DISTINCT ON (org_id, run_id) org_id, run_id, finished_us, finished_id,
           status, failure_category, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cost_usd
    FROM parts WHERE finished_us IS NOT NULL
    ORDER BY org_id, run_id, finished_us DESC, finished_id COLLATE "C" DESC
),
first_model AS (
    SELECT DISTINCT ON (org_id, run_id) org_id, run_id, model_us, model_id, model
    FROM parts WHERE model_us IS NOT NULL ORDER BY org_id, run_id, model_us, model_id COLLATE "C"
),
first_repo AS (
    SELECT DISTINCT ON (org_id, run_id) org_id, run_id, repo_us, repo_id, repo
    FROM parts WHERE repo_us IS NOT NULL ORDER BY org_id, run_id, repo_us, repo_id COLLATE "C"
),
first_branch AS (
    SELECT DISTINCT ON (org_id, run_id) org_id, run_id, branch_us, branch_id, branch
    FROM parts WHERE branch_us IS NOT NULL ORDER BY org_id, run_id, branch_us, branch_id COLLATE "C"
),
first_agent AS (
    SELECT DISTINCT ON (org_id, run_id) org_id, run_id, agent_us, agent_id, agent
    FROM parts WHERE agent_us IS NOT NULL ORDER BY org_id, run_id, agent_us, agent_id COLLATE "C"
)
SELECT org_id, run_id, DATE '1970-01-01' + floor(a.first_us / 86400000000.0)::int AS day,
       a.first_us, a.first_id, a.user_id, a.team_id, a.session_id,
       t.queued_us, t.started_us, t.handoff_us, o.finished_us, o.finished_id,
       o.status, o.failure_category, o.input_tokens, o.output_tokens, o.cache_read_tokens, o.cache_write_tokens,
       o.cost_usd, m.model_us, m.model_id, m.model, r.repo_us, r.repo_id, r.repo, false AS followed_up,
       b.branch_us, b.branch_id, b.branch, g.agent_us, g.agent_id, g.agent
FROM anchor a JOIN times t USING (org_id, run_id)
LEFT JOIN outcome o USING (org_id, run_id)
LEFT JOIN first_model m USING (org_id, run_id)
LEFT JOIN first_repo r USING (org_id, run_id)
LEFT JOIN first_branch b USING (org_id, run_id)
LEFT JOIN first_agent g USING (org_id, run_id);
-- The (org, repo, branch) keys these runs had and have: the PRs of those keys may link to other runs now.
CREATE TEMP TABLE run_branches ON COMMIT DROP AS
SELECT org_id, lower(repo) AS repo_key, branch FROM runs
WHERE (org_id, run_id) IN (SELECT org_id, run_id FROM run_parts) AND branch IS NOT NULL AND repo IS NOT NULL
UNION
SELECT org_id, lower(repo), branch FROM run_parts WHERE branch IS NOT NULL AND repo IS NOT NULL;
DELETE FROM runs WHERE (org_id, run_id) IN (SELECT org_id, run_id FROM run_parts);
INSERT INTO runs SELECT * FROM run_parts

-- name: fold_sessions
CREATE TEMP TABLE session_parts ON COMMIT DROP AS
WITH parts AS (
    SELECT org_id, session_id, first_us, first_id, user_id, team_id, first_message_us, last_message_us
    FROM sessions WHERE (org_id, session_id) IN (SELECT org_id, session_id FROM chunk)
    UNION ALL
    SELECT org_id, session_id, occurred_us, id, user_id, team_id,
           CASE WHEN type = 'message.sent' THEN occurred_us END,
           CASE WHEN type = 'message.sent' THEN occurred_us END
    FROM chunk WHERE session_id IS NOT NULL  -- every event but a pr.* one
),
anchor AS (
    SELECT DISTINCT ON (org_id, session_id) org_id, session_id, first_us, first_id, user_id, team_id
    FROM parts ORDER BY org_id, session_id, first_us, first_id COLLATE "C"
),
messages AS (
    SELECT org_id, session_id, min(first_message_us) AS first_message_us, max(last_message_us) AS last_message_us
    FROM parts GROUP BY org_id, session_id
)
SELECT org_id, session_id, DATE '1970-01-01' + floor(a.first_us / 86400000000.0)::int AS day,
       a.first_us, a.first_id, a.user_id, a.team_id, m.first_message_us, m.last_message_us
FROM anchor a JOIN messages m USING (org_id, session_id);
DELETE FROM sessions WHERE (org_id, session_id) IN (SELECT org_id, session_id FROM session_parts);
INSERT INTO sessions SELECT * FROM session_parts

-- name: fold_activity
-- Only the chunk's days can already hold its user-days. A pr.* event (no session) is no activity: see duckdb.sql.
INSERT INTO activity
SELECT DISTINCT org_id, day, user_id, team_id FROM chunk WHERE session_id IS NOT NULL
EXCEPT
SELECT org_id, day, user_id, team_id FROM activity
WHERE day BETWEEN (SELECT min(day) FROM chunk) AND (SELECT max(day) FROM chunk)

-- name: fold_queued
-- A multiset, as in duckdb.sql: equal rows change no EXISTS below.
INSERT INTO queued SELECT org_id, session_id, user_id, run_id, occurred_us FROM chunk WHERE type = 'run.queued'

-- name: fold_usage
-- A multiset, as in duckdb.sql: each distinct event is logged once and each entry folded once.
INSERT INTO usage
SELECT org_id, run_id, session_id, day, model, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,
       cost_usd, agent
FROM chunk WHERE type = 'usage'

-- name: fold_code
-- As in duckdb.sql: insert, then recompute the increases of every series the chunk touched from all its events.
INSERT INTO code_changes
SELECT org_id, id, run_id, session_id, day, occurred_us, model, repo, series,
       lines_added, lines_removed, commits, lines_added, lines_removed, commits, agent
FROM chunk WHERE type = 'code.changed';
UPDATE code_changes c SET added = s.added, removed = s.removed, committed = s.committed
FROM (
    SELECT org_id, id,
           greatest(lines_added - coalesce(lag(lines_added) OVER w, 0), 0) AS added,
           greatest(lines_removed - coalesce(lag(lines_removed) OVER w, 0), 0) AS removed,
           greatest(commits - coalesce(lag(commits) OVER w, 0), 0) AS committed
    FROM code_changes
    WHERE series IS NOT NULL
      AND (org_id, series) IN (SELECT org_id, series FROM chunk WHERE type = 'code.changed' AND series IS NOT NULL)
    WINDOW w AS (PARTITION BY org_id, series
                 ORDER BY lines_added::numeric + lines_removed + commits, occurred_us, id COLLATE "C")
) s
WHERE c.org_id = s.org_id AND c.id = s.id
  AND (c.added, c.removed, c.committed) IS DISTINCT FROM (s.added, s.removed, s.committed)

-- name: fold_prs
-- As fold_runs; see duckdb.sql.
CREATE TEMP TABLE pr_parts ON COMMIT DROP AS
WITH parts AS (
    SELECT org_id, repo_key, pr_number, first_us, first_id, pr_repo, head_branch,
           who_us, who_id, event_user_id, event_team_id, opened_us, merged_us, last_us, last_id, last_type, marked,
           mark_us, mark_id, mark
    FROM prs WHERE (org_id, repo_key, pr_number) IN (
        SELECT org_id, lower(repo), pr_number FROM chunk WHERE pr_number IS NOT NULL)
    UNION ALL
    SELECT org_id, lower(repo), pr_number, occurred_us, id, repo, branch,
           CASE WHEN user_id IS NOT NULL OR team_id IS NOT NULL THEN occurred_us END,
           CASE WHEN user_id IS NOT NULL OR team_id IS NOT NULL THEN id END, user_id, team_id,
           CASE WHEN type = 'pr.opened' THEN occurred_us END, CASE WHEN type = 'pr.merged' THEN occurred_us END,
           occurred_us, id, type, agent_mark IS NOT NULL,
           CASE WHEN agent_mark IS NOT NULL THEN occurred_us END, CASE WHEN agent_mark IS NOT NULL THEN id END, agent_mark
    FROM chunk WHERE pr_number IS NOT NULL
),
anchor AS (
    SELECT DISTINCT ON (org_id, repo_key, pr_number) org_id, repo_key, pr_number, first_us, first_id, pr_repo, head_branch
    FROM parts ORDER BY org_id, repo_key, pr_number, first_us, first_id COLLATE "C"
),
who AS (
    SELECT DISTINCT ON (org_id, repo_key, pr_number) org_id, repo_key, pr_number, who_us, who_id, event_user_id,
           event_team_id
    FROM parts WHERE who_us IS NOT NULL ORDER BY org_id, repo_key, pr_number, who_us, who_id COLLATE "C"
),
latest AS (
    SELECT DISTINCT ON (org_id, repo_key, pr_number) org_id, repo_key, pr_number, last_us, last_id, last_type
    FROM parts ORDER BY org_id, repo_key, pr_number, last_us DESC, last_id COLLATE "C" DESC
),
times AS (
    SELECT org_id, repo_key, pr_number, min(opened_us) AS opened_us, min(merged_us) AS merged_us,
           bool_or(marked) AS marked
    FROM parts GROUP BY org_id, repo_key, pr_number
),
first_mark AS (
    SELECT DISTINCT ON (org_id, repo_key, pr_number) org_id, repo_key, pr_number, mark_us, mark_id, mark
    FROM parts WHERE mark_us IS NOT NULL ORDER BY org_id, repo_key, pr_number, mark_us, mark_id COLLATE "C"
)
SELECT org_id, repo_key, pr_number, a.first_us, a.first_id, a.pr_repo, a.head_branch,
       w.who_us, w.who_id, w.event_user_id, w.event_team_id, t.opened_us, t.merged_us,
       l.last_us, l.last_id, l.last_type, t.marked,
       false AS linked, w.event_user_id AS user_id, w.event_team_id AS team_id, NULL::text AS model, a.pr_repo AS repo,
       m.mark_us, m.mark_id, m.mark, m.mark AS agent
FROM anchor a JOIN times t USING (org_id, repo_key, pr_number) JOIN latest l USING (org_id, repo_key, pr_number)
LEFT JOIN who w USING (org_id, repo_key, pr_number)
LEFT JOIN first_mark m USING (org_id, repo_key, pr_number);
DELETE FROM prs WHERE (org_id, repo_key, pr_number) IN (SELECT org_id, repo_key, pr_number FROM pr_parts);
INSERT INTO prs SELECT * FROM pr_parts

-- name: fold_pr_links
-- A PR's link to the earliest run of its org, repo (any case) and branch, recomputed for the keys whose runs or
-- PRs the chunk changed: see duckdb.sql.
CREATE TEMP TABLE link_keys ON COMMIT DROP AS
SELECT org_id, repo_key, branch FROM run_branches
UNION
SELECT org_id, repo_key, head_branch FROM pr_parts;
CREATE TEMP TABLE pr_links ON COMMIT DROP AS
SELECT DISTINCT ON (k.org_id, k.repo_key, k.branch) k.org_id, k.repo_key, k.branch,
       r.run_id IS NOT NULL AS linked, r.user_id, r.team_id, r.model, r.repo, r.agent
FROM (SELECT DISTINCT org_id, repo_key, head_branch AS branch FROM prs
      WHERE (org_id, repo_key, head_branch) IN (SELECT org_id, repo_key, branch FROM link_keys)) k
LEFT JOIN runs r ON r.org_id = k.org_id AND r.branch = k.branch AND lower(r.repo) = k.repo_key
ORDER BY k.org_id, k.repo_key, k.branch, r.first_us, r.first_id COLLATE "C";
UPDATE prs SET linked = l.linked,
               user_id = CASE WHEN l.linked THEN l.user_id ELSE prs.event_user_id END,
               team_id = CASE WHEN l.linked THEN l.team_id ELSE prs.event_team_id END,
               model = l.model, repo = coalesce(l.repo, prs.pr_repo), agent = coalesce(l.agent, prs.mark)
FROM pr_links l
WHERE prs.org_id = l.org_id AND prs.repo_key = l.repo_key AND prs.head_branch = l.branch

-- name: fold_pr_texts
-- As in duckdb.sql. The chunk table carries no attributes: the PR events of its seq range are read from the log.
CREATE TEMP TABLE text_parts ON COMMIT DROP AS
WITH texts AS (
    SELECT org_id, lower(repo) AS repo_key, pr_number, occurred_us AS us, id,
           (attributes::jsonb) ->> 'title' AS title, (attributes::jsonb) ->> 'url' AS url
    FROM events WHERE seq > $after_seq AND seq <= $last_seq AND pr_number IS NOT NULL AND attributes IS NOT NULL
      AND seq IN (SELECT seq FROM chunk WHERE pr_number IS NOT NULL)  -- no dead letter; a refold's own seqs
),
parts AS (
    SELECT org_id, repo_key, pr_number, title_us, title_id, title, url_us, url_id, url FROM pr_texts
    WHERE (org_id, repo_key, pr_number) IN (
        SELECT org_id, repo_key, pr_number FROM texts WHERE title IS NOT NULL OR url IS NOT NULL)
    UNION ALL
    SELECT org_id, repo_key, pr_number, CASE WHEN title IS NOT NULL THEN us END, CASE WHEN title IS NOT NULL THEN id END,
           title, CASE WHEN url IS NOT NULL THEN us END, CASE WHEN url IS NOT NULL THEN id END, url
    FROM texts WHERE title IS NOT NULL OR url IS NOT NULL
),
keys AS (SELECT DISTINCT org_id, repo_key, pr_number FROM parts),
titles AS (
    SELECT DISTINCT ON (org_id, repo_key, pr_number) org_id, repo_key, pr_number, title_us, title_id, title
    FROM parts WHERE title_us IS NOT NULL
    ORDER BY org_id, repo_key, pr_number, title_us DESC, title_id COLLATE "C" DESC
),
urls AS (
    SELECT DISTINCT ON (org_id, repo_key, pr_number) org_id, repo_key, pr_number, url_us, url_id, url
    FROM parts WHERE url_us IS NOT NULL
    ORDER BY org_id, repo_key, pr_number, url_us DESC, url_id COLLATE "C" DESC
)
SELECT org_id, repo_key, pr_number, t.title_us, t.title_id, t.title, u.url_us, u.url_id, u.url
FROM keys LEFT JOIN titles t USING (org_id, repo_key, pr_number) LEFT JOIN urls u USING (org_id, repo_key, pr_number);
DELETE FROM pr_texts WHERE (org_id, repo_key, pr_number) IN (SELECT org_id, repo_key, pr_number FROM text_parts);
INSERT INTO pr_texts SELECT * FROM text_parts

-- name: fold_followed_up
-- Recomputed for every run in a session the chunk touched (through a run or a run.queued): see duckdb.sql.
UPDATE runs SET followed_up = EXISTS (
    SELECT 1 FROM queued q
    WHERE q.org_id = runs.org_id AND q.session_id = runs.session_id AND q.user_id = runs.user_id
      AND q.run_id <> runs.run_id
      AND q.queued_us > runs.handoff_us AND q.queued_us <= runs.handoff_us + 14400000000
)
WHERE handoff_us IS NOT NULL AND (org_id, session_id) IN (
    SELECT org_id, session_id FROM run_parts
    UNION
    SELECT org_id, session_id FROM chunk WHERE type = 'run.queued')

-- Metric queries: the same names, parameters and fragments as duckdb.sql (storage/queries.py render).
-- Averages divide integer-µs sums as float8 like DuckDB; money sums NUMERIC exactly; a zero count
-- gives NULL (nullif), as DuckDB's division does.

-- name: activity_of_matching_runs
(SELECT org_id, day, user_id, team_id FROM runs
 WHERE ($model::text IS NULL OR model = $model::text) AND ($repo::text IS NULL OR repo = $repo::text)
   AND ($agent::text IS NULL OR agent = $agent::text))

-- name: sessions_of_matching_runs
(SELECT * FROM sessions WHERE (org_id, session_id) IN (
    SELECT org_id, session_id FROM runs
    WHERE ($model::text IS NULL OR model = $model::text) AND ($repo::text IS NULL OR repo = $repo::text)
      AND ($agent::text IS NULL OR agent = $agent::text)))

-- name: who_filter
($team::text IS NULL OR team_id = $team::text) AND ($teams::text[] IS NULL OR team_id = ANY($teams::text[]))
AND ($user::text IS NULL OR user_id = $user::text)

-- name: run_filter
{who_filter} AND ($model::text IS NULL OR model = $model::text) AND ($repo::text IS NULL OR repo = $repo::text)
AND ($agent::text IS NULL OR agent = $agent::text)

-- name: run_metric_columns
count(*) AS runs,
count(finished_us) AS runs_finished,
count(*) FILTER (WHERE status = 'succeeded') AS runs_succeeded,
count(*) FILTER (WHERE status = 'failed') AS runs_failed,
count(*) FILTER (WHERE status = 'cancelled') AS runs_cancelled,
sum(duration_us)::float8 / nullif(count(duration_us), 0) / 1e6 AS run_duration_avg_s,
percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_us) / 1e6 AS run_duration_p95_s,
sum(queue_wait_us)::float8 / nullif(count(queue_wait_us), 0) / 1e6 AS queue_wait_avg_s,
percentile_cont(0.95) WITHIN GROUP (ORDER BY queue_wait_us) / 1e6 AS queue_wait_p95_s,
coalesce(sum(duration_us), 0)::float8 / 1e6 AS duration_sum_s,
count(DISTINCT session_id COLLATE "C") AS run_sessions,
coalesce(sum(cost_usd), 0)::float8 AS cost_usd,
coalesce(sum(input_tokens), 0)::bigint AS input_tokens,
coalesce(sum(output_tokens), 0)::bigint AS output_tokens,
coalesce(sum(cache_read_tokens), 0)::bigint AS cache_read_tokens,
coalesce(sum(cache_write_tokens), 0)::bigint AS cache_write_tokens,
count(*) FILTER (WHERE handoff_us IS NOT NULL AND finished_us IS NOT NULL) AS runs_handed_off,
count(*) FILTER (WHERE followed_up AND finished_us IS NOT NULL) AS runs_followed_up,
count(DISTINCT user_id COLLATE "C") AS run_users

-- name: run_metrics
-- Two statements, not GROUPING SETS ((group), ()): the backend runs them at once on two connections, so the
-- total's sorts (every run's ids and durations again) take the other core instead of following the groups'.
-- run_metric_columns: the same figures for both; DISTINCT by bytes (COLLATE "C"), the same groups as the
-- locale's equality, sorted without strcoll.
WITH r AS (
    SELECT *, finished_us - started_us AS duration_us, started_us - queued_us AS queue_wait_us
    FROM runs
    WHERE org_id = $org AND day BETWEEN $from::date AND $to::date AND {run_filter}
)
SELECT {group} AS grp, 0 AS is_total, {run_metric_columns}
FROM r
GROUP BY {group};
WITH r AS (
    SELECT *, finished_us - started_us AS duration_us, started_us - queued_us AS queue_wait_us
    FROM runs
    WHERE org_id = $org AND day BETWEEN $from::date AND $to::date AND {run_filter}
)
SELECT NULL AS grp, 1 AS is_total, {run_metric_columns}
FROM r

-- name: usage_items
-- What usage events consumed and where each counts: see duckdb.sql (the same rule, the same `u.day >= $from`).
(SELECT r.day, r.team_id, r.user_id, coalesce(u.model, r.model) AS model, r.repo, coalesce(u.agent, r.agent) AS agent,
        u.input_tokens, u.output_tokens, u.cache_read_tokens, u.cache_write_tokens, u.cost_usd
 FROM usage u JOIN runs r ON r.org_id = u.org_id AND r.run_id = u.run_id
 WHERE u.org_id = $org AND u.day >= $from::date AND r.org_id = $org AND r.day BETWEEN $from::date AND $to::date
 UNION ALL
 SELECT s.day, s.team_id, s.user_id, u.model, NULL AS repo, u.agent,
        u.input_tokens, u.output_tokens, u.cache_read_tokens, u.cache_write_tokens, u.cost_usd
 FROM usage u JOIN sessions s ON s.org_id = u.org_id AND s.session_id = u.session_id
 WHERE u.run_id IS NULL AND u.org_id = $org AND u.day >= $from::date
   AND s.org_id = $org AND s.day BETWEEN $from::date AND $to::date)

-- name: code_items
-- What code.changed events count and where: see duckdb.sql (the same rule, the same `c.day >= $from`).
(SELECT r.day, r.team_id, r.user_id, coalesce(c.model, r.model) AS model, r.repo, coalesce(c.agent, r.agent) AS agent,
        c.added, c.removed, c.committed
 FROM code_changes c JOIN runs r ON r.org_id = c.org_id AND r.run_id = c.run_id
 WHERE c.org_id = $org AND c.day >= $from::date AND r.org_id = $org AND r.day BETWEEN $from::date AND $to::date
 UNION ALL
 SELECT s.day, s.team_id, s.user_id, c.model, c.repo, c.agent, c.added, c.removed, c.committed
 FROM code_changes c JOIN sessions s ON s.org_id = c.org_id AND s.session_id = c.session_id
 WHERE c.run_id IS NULL AND c.org_id = $org AND c.day >= $from::date
   AND s.org_id = $org AND s.day BETWEEN $from::date AND $to::date)

-- name: code_metrics
SELECT {group} AS grp, grouping({group}) AS is_total,
       coalesce(sum(added), 0)::bigint AS lines_added,
       coalesce(sum(removed), 0)::bigint AS lines_removed,
       coalesce(sum(committed), 0)::bigint AS commits
FROM {code_items} AS items
WHERE {run_filter}
GROUP BY GROUPING SETS (({group}), ())

-- name: usage_metrics
SELECT {group} AS grp, grouping({group}) AS is_total,
       coalesce(sum(cost_usd), 0)::float8 AS cost_usd,
       coalesce(sum(input_tokens), 0)::bigint AS input_tokens,
       coalesce(sum(output_tokens), 0)::bigint AS output_tokens,
       coalesce(sum(cache_read_tokens), 0)::bigint AS cache_read_tokens,
       coalesce(sum(cache_write_tokens), 0)::bigint AS cache_write_tokens
FROM {usage_items} AS items
WHERE {run_filter}
GROUP BY GROUPING SETS (({group}), ())

-- name: pr_metrics
-- SPEC §7 per group, as in duckdb.sql. `p` keeps only PRs with a fact time within a day of the range (a superset of
-- those with a fact in it, whatever the numeric rounding of `day` below): a short range then skips most PRs.
WITH p AS (
    SELECT * FROM prs
    WHERE org_id = $org AND {run_filter}
      AND (marked OR linked OR EXISTS (SELECT 1 FROM unnest($prefixes::text[]) AS prefix WHERE starts_with(head_branch, prefix)))
      AND (opened_us BETWEEN ($from::date - DATE '1970-01-02')::bigint * 86400000000
                         AND ($to::date - DATE '1970-01-01' + 2)::bigint * 86400000000
           OR merged_us BETWEEN ($from::date - DATE '1970-01-02')::bigint * 86400000000
                            AND ($to::date - DATE '1970-01-01' + 2)::bigint * 86400000000
           OR last_us BETWEEN ($from::date - DATE '1970-01-02')::bigint * 86400000000
                          AND ($to::date - DATE '1970-01-01' + 2)::bigint * 86400000000)
),
facts AS (
    SELECT 'opened' AS fact, opened_us AS us, team_id, user_id, model, repo, agent, NULL::bigint AS to_merge_us
    FROM p WHERE opened_us IS NOT NULL
    UNION ALL
    SELECT 'merged', merged_us, team_id, user_id, model, repo, agent, merged_us - opened_us FROM p WHERE merged_us IS NOT NULL
    UNION ALL
    SELECT 'closed', last_us, team_id, user_id, model, repo, agent, NULL FROM p
    WHERE merged_us IS NULL AND last_type = 'pr.closed'
),
f AS (SELECT *, DATE '1970-01-01' + floor(us / 86400000000.0)::int AS day FROM facts)
SELECT {group} AS grp, grouping({group}) AS is_total,
       count(*) FILTER (WHERE fact = 'opened') AS agent_prs_opened,
       count(*) FILTER (WHERE fact = 'merged') AS agent_prs_merged,
       count(*) FILTER (WHERE fact = 'closed') AS agent_prs_closed_unmerged,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY to_merge_us) / 1e6 AS agent_pr_time_to_merge_p50_s
FROM f
WHERE day BETWEEN $from::date AND $to::date
GROUP BY GROUPING SETS (({group}), ())

-- name: agent_prs
-- The agent PRs with a fact in range, newest first, and their branch's runs' figures: see duckdb.sql.
WITH p AS (
    SELECT *, CASE WHEN merged_us IS NULL AND last_type = 'pr.closed' THEN last_us END AS closed_us
    FROM prs
    WHERE org_id = $org AND {run_filter}
      AND (marked OR linked OR EXISTS (SELECT 1 FROM unnest($prefixes::text[]) AS prefix WHERE starts_with(head_branch, prefix)))
),
shown AS (
    SELECT *, coalesce(opened_us, first_us) AS newest, count(*) OVER () AS total FROM p
    WHERE DATE '1970-01-01' + floor(opened_us / 86400000000.0)::int BETWEEN $from::date AND $to::date
       OR DATE '1970-01-01' + floor(merged_us / 86400000000.0)::int BETWEEN $from::date AND $to::date
       OR DATE '1970-01-01' + floor(closed_us / 86400000000.0)::int BETWEEN $from::date AND $to::date
    ORDER BY newest DESC, repo_key COLLATE "C", pr_number DESC
    LIMIT $limit
),
linked AS (
    SELECT s.repo_key, s.pr_number, r.run_id, r.day, r.team_id, r.user_id, r.model, r.repo, r.agent, r.status,
           r.handoff_us, r.cost_usd
    FROM shown s JOIN runs r ON r.org_id = $org AND r.branch = s.head_branch AND lower(r.repo) = s.repo_key
),
items AS (
    SELECT repo_key, pr_number, team_id, user_id, model, repo, agent, cost_usd, true AS is_run, status, handoff_us
    FROM linked
    UNION ALL
    SELECT l.repo_key, l.pr_number, l.team_id, l.user_id, coalesce(u.model, l.model), l.repo,
           coalesce(u.agent, l.agent), u.cost_usd, false, NULL, NULL
    FROM usage u JOIN linked l ON u.run_id = l.run_id
    WHERE u.org_id = $org AND u.day >= (SELECT min(day) FROM linked)
),
figures AS (
    SELECT repo_key, pr_number,
           count(*) FILTER (WHERE is_run) AS runs,
           coalesce(sum(cost_usd), 0)::float8 AS cost_usd,
           count(*) FILTER (WHERE is_run AND status = 'failed') AS runs_failed,
           count(*) FILTER (WHERE is_run AND handoff_us IS NOT NULL) AS runs_handed_off
    FROM items WHERE {run_filter}
    GROUP BY repo_key, pr_number
)
SELECT s.repo, s.pr_number, t.title, t.url,
       CASE WHEN s.merged_us IS NOT NULL THEN 'merged' WHEN s.closed_us IS NOT NULL THEN 'closed' ELSE 'open' END AS state,
       s.opened_us, s.merged_us, s.closed_us, s.user_id, s.team_id,
       coalesce(f.runs, 0) AS runs, coalesce(f.cost_usd, 0) AS cost_usd, coalesce(f.runs_failed, 0) AS runs_failed,
       coalesce(f.runs_handed_off, 0) AS runs_handed_off, s.total
FROM shown s
LEFT JOIN figures f ON f.repo_key = s.repo_key AND f.pr_number = s.pr_number
LEFT JOIN pr_texts t ON t.org_id = $org AND t.repo_key = s.repo_key AND t.pr_number = s.pr_number
ORDER BY s.newest DESC, s.repo_key COLLATE "C", s.pr_number DESC

-- name: time_to_merge_histogram
-- Agent PRs merged in range with an opened at, per bucket of $edges: see duckdb.sql.
WITH p AS (
    SELECT * FROM prs
    WHERE org_id = $org AND {run_filter}
      AND (marked OR linked OR EXISTS (SELECT 1 FROM unnest($prefixes::text[]) AS prefix WHERE starts_with(head_branch, prefix)))
),
times AS (
    SELECT (merged_us - opened_us) / 1e6 AS t FROM p
    WHERE opened_us IS NOT NULL AND merged_us IS NOT NULL
      AND DATE '1970-01-01' + floor(merged_us / 86400000000.0)::int BETWEEN $from::date AND $to::date
),
buckets AS (SELECT (SELECT count(*) FROM unnest($edges::float8[]) AS edge WHERE edge <= t) AS bucket FROM times)
SELECT bucket, count(*) AS prs FROM buckets GROUP BY bucket

-- name: failure_metrics
SELECT {group} AS grp, grouping({group}) AS is_total, failure_category AS category, count(*) AS runs
FROM runs
WHERE org_id = $org AND day BETWEEN $from::date AND $to::date AND status = 'failed' AND {run_filter}
GROUP BY GROUPING SETS (({group}, failure_category), (failure_category))

-- name: session_metrics
SELECT {group} AS grp, grouping({group}) AS is_total,
       count(*) AS sessions,
       sum(last_message_us - first_message_us)::float8 / nullif(count(first_message_us), 0) / 1e6 AS session_lifespan_avg_s
FROM {sessions} s
WHERE org_id = $org AND day BETWEEN $from::date AND $to::date AND {who_filter}
GROUP BY GROUPING SETS (({group}), ())

-- name: active_users
SELECT {group} AS grp, grouping({group}) AS is_total, count(DISTINCT user_id) AS active_users
FROM {activity} a
WHERE org_id = $org AND day BETWEEN $from::date AND $to::date AND {who_filter}
GROUP BY GROUPING SETS (({group}), ())

-- name: rolling_active_users
-- DAU, WAU and 30-day users per day by the sweep of duckdb.sql.
WITH a AS (
    SELECT DISTINCT user_id, day FROM {activity} a
    WHERE org_id = $org AND day BETWEEN $from::date - 29 AND $to::date AND {who_filter}
),
p AS (SELECT day, coalesce(lead(day) OVER (PARTITION BY user_id ORDER BY day), day + 30) AS next_day FROM a),
deltas AS (
    SELECT day AS d, 1 AS dau, 1 AS wau, 1 AS mau FROM p
    UNION ALL SELECT day + 1, -1, 0, 0 FROM p
    UNION ALL SELECT least(day + 7, next_day), 0, -1, 0 FROM p
    UNION ALL SELECT least(day + 30, next_day), 0, 0, -1 FROM p
),
per_day AS (SELECT d, sum(dau) AS dau, sum(wau) AS wau, sum(mau) AS mau FROM deltas GROUP BY d),
days AS (SELECT $from::date - 29 + i AS d FROM generate_series(0, $to::date - ($from::date - 29)) AS i),
running AS (
    SELECT d, sum(coalesce(dau, 0)) OVER w AS dau, sum(coalesce(wau, 0)) OVER w AS wau, sum(coalesce(mau, 0)) OVER w AS mau
    FROM days LEFT JOIN per_day USING (d)
    WINDOW w AS (ORDER BY d ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
)
SELECT d AS day, CAST(dau AS BIGINT) AS dau, CAST(wau AS BIGINT) AS wau, CAST(mau AS BIGINT) AS mau
FROM running WHERE d >= $from::date ORDER BY d

-- name: duration_histogram
SELECT CASE WHEN d < 30 THEN 0 WHEN d < 60 THEN 1 WHEN d < 120 THEN 2 WHEN d < 300 THEN 3 WHEN d < 600 THEN 4
            WHEN d < 1200 THEN 5 WHEN d < 1800 THEN 6 WHEN d < 3600 THEN 7 ELSE 8 END AS bucket,
       count(*) AS runs
FROM (SELECT (finished_us - started_us) / 1e6 AS d FROM runs
      WHERE org_id = $org AND day BETWEEN $from::date AND $to::date AND finished_us IS NOT NULL AND started_us IS NOT NULL
        AND {run_filter}) AS durations
GROUP BY bucket

-- name: activity_keys
SELECT DISTINCT {group} AS key FROM {activity} a
WHERE org_id = $org AND day BETWEEN $from::date AND $to::date AND {who_filter} AND {group} IS NOT NULL

-- name: run_keys
SELECT DISTINCT {group} AS key FROM runs
WHERE org_id = $org AND day BETWEEN $from::date AND $to::date AND {run_filter} AND {group} IS NOT NULL

-- name: usage_keys
SELECT DISTINCT {group} AS key FROM {usage_items} AS items
WHERE {run_filter} AND {group} IS NOT NULL

-- name: code_keys
SELECT DISTINCT {group} AS key FROM {code_items} AS items
WHERE {run_filter} AND {group} IS NOT NULL

-- name: pr_keys
SELECT DISTINCT {group} AS key FROM prs
WHERE org_id = $org
  AND DATE '1970-01-01' + floor(coalesce(opened_us, first_us) / 86400000000.0)::int BETWEEN $from::date AND $to::date
  AND {run_filter} AND {group} IS NOT NULL
