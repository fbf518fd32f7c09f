-- Read models and queries of the embedded backend (DuckDB). Loaded by name with storage/queries.py.
--
-- runs and sessions are join-semilattices of the events folded into them: each column is a min, a
-- max or an arg-min/arg-max keyed by (occurred_us, id), so events folded in any order or grouping
-- give the same rows. activity is a set, queued a multiset only ever tested with EXISTS, usage a
-- multiset only ever summed, and followed_up is recomputed from those. prs is a semilattice like runs, and
-- its link to runs (linked, user_id, team_id, model, repo) is recomputed from runs like followed_up. The log holds each distinct event once (dedupe at ingest)
-- and each log entry is folded once (the checkpoint commits with the fold).

-- name: schema
CREATE TABLE IF NOT EXISTS runs (
    org_id VARCHAR NOT NULL, run_id VARCHAR NOT NULL, day DATE NOT NULL,
    first_us BIGINT NOT NULL, first_id VARCHAR NOT NULL,          -- the anchor event
    user_id VARCHAR NOT NULL, team_id VARCHAR, session_id VARCHAR NOT NULL,
    queued_us BIGINT, started_us BIGINT, handoff_us BIGINT,
    finished_us BIGINT, finished_id VARCHAR,                      -- the latest run.finished wins
    status VARCHAR, failure_category VARCHAR,                     -- and the amounts, of the latest run.finished
    input_tokens BIGINT, output_tokens BIGINT, cache_read_tokens BIGINT, cache_write_tokens BIGINT, cost_usd DOUBLE,
    model_at STRUCT(us BIGINT, id VARCHAR), model VARCHAR,        -- from the earliest event carrying it
    repo_at STRUCT(us BIGINT, id VARCHAR), repo VARCHAR,
    followed_up BOOLEAN NOT NULL DEFAULT false,                   -- see fold_followed_up
    branch_at STRUCT(us BIGINT, id VARCHAR), branch VARCHAR,      -- attributes.branch, like repo
    agent_at STRUCT(us BIGINT, id VARCHAR), agent VARCHAR         -- attributes.agent, like repo
);
CREATE TABLE IF NOT EXISTS sessions (
    org_id VARCHAR NOT NULL, session_id VARCHAR NOT NULL, day DATE NOT NULL,
    first_us BIGINT NOT NULL, first_id VARCHAR NOT NULL,
    user_id VARCHAR NOT NULL, team_id VARCHAR,
    first_message_us BIGINT, last_message_us BIGINT
);
CREATE TABLE IF NOT EXISTS activity (org_id VARCHAR NOT NULL, day DATE NOT NULL, user_id VARCHAR NOT NULL, team_id VARCHAR);
CREATE TABLE IF NOT EXISTS queued (
    org_id VARCHAR NOT NULL, session_id VARCHAR NOT NULL, user_id VARCHAR NOT NULL, run_id VARCHAR NOT NULL, queued_us BIGINT NOT NULL
);
-- Every usage event, as sent. Its run (run_id) or else its session says where it counts, looked up at query
-- time: a run's anchor can still move, and summing per run as events arrive would round money by arrival order.
CREATE TABLE IF NOT EXISTS usage (
    org_id VARCHAR NOT NULL, run_id VARCHAR, session_id VARCHAR NOT NULL, day DATE NOT NULL, model VARCHAR,
    input_tokens BIGINT NOT NULL, output_tokens BIGINT NOT NULL, cache_read_tokens BIGINT NOT NULL,
    cache_write_tokens BIGINT NOT NULL, cost_usd DOUBLE NOT NULL,
    agent VARCHAR  -- its own attributes.agent; without one it counts under its run's (usage_items)
);
-- Every code.changed event: its counts as sent (running totals when it names a series) and what it counts (added,
-- removed, committed: the counts, or its series' increase; see fold_code). Where it counts is looked up like usage.
CREATE TABLE IF NOT EXISTS code_changes (
    org_id VARCHAR NOT NULL, id VARCHAR NOT NULL, run_id VARCHAR, session_id VARCHAR NOT NULL, day DATE NOT NULL,
    occurred_us BIGINT NOT NULL, model VARCHAR, repo VARCHAR, series VARCHAR,
    lines_added BIGINT NOT NULL, lines_removed BIGINT NOT NULL, commits BIGINT NOT NULL,
    added BIGINT NOT NULL, removed BIGINT NOT NULL, committed BIGINT NOT NULL,
    agent VARCHAR  -- its own attributes.agent, as usage
);
-- One row per pull request (org_id, repo_key, pr_number): repo_key is its repo in lower case (forges compare them so).
CREATE TABLE IF NOT EXISTS prs (
    org_id VARCHAR NOT NULL, repo_key VARCHAR NOT NULL, pr_number BIGINT NOT NULL,
    first_at STRUCT(us BIGINT, id VARCHAR) NOT NULL, pr_repo VARCHAR NOT NULL, head_branch VARCHAR NOT NULL,  -- earliest event's
    who_at STRUCT(us BIGINT, id VARCHAR), event_user_id VARCHAR, event_team_id VARCHAR,  -- earliest event naming either
    opened_us BIGINT, merged_us BIGINT,                                -- earliest pr.opened, earliest pr.merged
    last_at STRUCT(us BIGINT, id VARCHAR) NOT NULL, last_type VARCHAR NOT NULL,  -- closed unmerged: no merge, this pr.closed
    marked BOOLEAN NOT NULL,                                           -- any event carried attributes.agent_mark
    -- From the earliest run (by anchor) of the same org, repo (any case) and branch; see fold_pr_links.
    linked BOOLEAN NOT NULL DEFAULT false,
    user_id VARCHAR, team_id VARCHAR,  -- the run's, else the events'
    model VARCHAR, repo VARCHAR,        -- the run's model; the run's repo, else pr_repo (so filters match runs')
    mark_at STRUCT(us BIGINT, id VARCHAR), mark VARCHAR,  -- the earliest agent_mark
    agent VARCHAR                       -- the run's agent, else mark (so the agent filter and breakdown key PRs)
);
-- A PR's title and url: of its latest event (by (us, id)) carrying each in its attributes; see fold_pr_texts.
CREATE TABLE IF NOT EXISTS pr_texts (
    org_id VARCHAR NOT NULL, repo_key VARCHAR NOT NULL, pr_number BIGINT NOT NULL,
    title_at STRUCT(us BIGINT, id VARCHAR), title VARCHAR, url_at STRUCT(us BIGINT, id VARCHAR), url VARCHAR
);
-- Dead letters folded on retry (embedded/storage.py refold): committed with their fold, so a crash before the
-- dead-letter file forgets them cannot fold them twice.
-- Cells: per (org, day, team, user) figures of runs (by their anchor), rebuilt from the facts above for every day a
-- fold touches (fold_cells). A year's answer sums its user-days instead of scanning a year of runs. Money
-- is in integer picodollars (pusd) and durations in integer microseconds: sums of sums are then exact, so an answer
-- from cells equals the same answer from the facts to the last bit (tests/test_cells.py).
CREATE TABLE IF NOT EXISTS run_cells (
    org_id VARCHAR NOT NULL, day DATE NOT NULL, team_id VARCHAR, user_id VARCHAR NOT NULL,
    runs BIGINT NOT NULL, runs_finished BIGINT NOT NULL, runs_succeeded BIGINT NOT NULL, runs_failed BIGINT NOT NULL,
    runs_cancelled BIGINT NOT NULL, duration_sum_us HUGEINT, duration_n BIGINT NOT NULL, queue_sum_us HUGEINT,
    queue_n BIGINT NOT NULL, cost_pusd HUGEINT, input_tokens HUGEINT, output_tokens HUGEINT, cache_read_tokens HUGEINT,
    cache_write_tokens HUGEINT, runs_handed_off BIGINT NOT NULL, runs_followed_up BIGINT NOT NULL,
    sessions BIGINT NOT NULL  -- distinct sessions of the cell's runs
);
-- The cells of every session whose runs fall in more than one cell: a range's distinct sessions are the sum of its
-- cells' counts less, for each such session, the cells of it in range but one.
CREATE TABLE IF NOT EXISTS run_session_crossings (
    org_id VARCHAR NOT NULL, session_id VARCHAR NOT NULL, day DATE NOT NULL, team_id VARCHAR, user_id VARCHAR NOT NULL
);
-- What usage and code changes count per cell, attributed as usage_items and code_items do; keyed by model, repo
-- and agent too, as they hold only sums (no distinct counts): any grouping and filter is answered from them.
CREATE TABLE IF NOT EXISTS usage_cells (
    org_id VARCHAR NOT NULL, day DATE NOT NULL, team_id VARCHAR, user_id VARCHAR NOT NULL, model VARCHAR,
    repo VARCHAR, agent VARCHAR, cost_pusd HUGEINT, input_tokens HUGEINT, output_tokens HUGEINT,
    cache_read_tokens HUGEINT, cache_write_tokens HUGEINT
);
CREATE TABLE IF NOT EXISTS code_cells (
    org_id VARCHAR NOT NULL, day DATE NOT NULL, team_id VARCHAR, user_id VARCHAR NOT NULL, model VARCHAR,
    repo VARCHAR, agent VARCHAR, lines_added HUGEINT, lines_removed HUGEINT, commits HUGEINT
);
-- Per (org, day): the P95s of the day's runs (all teams), and per kind (0 duration, 1 queue wait) and bucket
-- (bucket_of below: monotone in x) how many values and which. A year's P95 sums ~365 x buckets counts to find the
-- buckets holding its two ranks, then ranks only those buckets' values (run_quantiles_of_days).
CREATE TABLE IF NOT EXISTS day_quantiles (
    org_id VARCHAR NOT NULL, day DATE NOT NULL, run_duration_p95_s DOUBLE, queue_wait_p95_s DOUBLE
);
CREATE TABLE IF NOT EXISTS run_histogram (
    org_id VARCHAR NOT NULL, day DATE NOT NULL, kind TINYINT NOT NULL, bucket BIGINT NOT NULL, n BIGINT NOT NULL,
    xs BIGINT[] NOT NULL
);
CREATE TABLE IF NOT EXISTS refolded (seq BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS checkpoint (seq BIGINT NOT NULL, folded_at_us BIGINT);
CREATE TABLE IF NOT EXISTS read_model_version (version INTEGER NOT NULL);

-- name: drop_read_models
DROP TABLE IF EXISTS runs; DROP TABLE IF EXISTS sessions; DROP TABLE IF EXISTS activity;
DROP TABLE IF EXISTS queued; DROP TABLE IF EXISTS usage; DROP TABLE IF EXISTS code_changes; DROP TABLE IF EXISTS prs; DROP TABLE IF EXISTS pr_texts;
DROP TABLE IF EXISTS run_cells; DROP TABLE IF EXISTS run_cell_users; DROP TABLE IF EXISTS run_session_crossings;
DROP TABLE IF EXISTS usage_cells; DROP TABLE IF EXISTS code_cells;
DROP TABLE IF EXISTS day_quantiles; DROP TABLE IF EXISTS run_histogram; DROP TABLE IF EXISTS checkpoint; DROP TABLE IF EXISTS refolded; DROP TABLE IF EXISTS read_model_version;

-- name: fold_runs
-- Nullable fields travel in structs through arg_min/arg_max, which skip NULL arguments.
-- The touched rows are found by rowid first, scanning only the key columns: reading every column
-- of the table would cost each tick as much as the table is large.
CREATE OR REPLACE TEMP TABLE touched_runs AS
SELECT rowid AS rid FROM runs SEMI JOIN (SELECT DISTINCT org_id, run_id FROM chunk WHERE run_id IS NOT NULL) USING (org_id, run_id);
-- The days whose cells this fold may change (fold_cells): the chunk's own days, and the days and sessions its runs
-- had before (an earlier event can move a run's anchor to another day, team or session).
CREATE OR REPLACE TEMP TABLE dirty_days AS
SELECT DISTINCT org_id, CAST(make_timestamp(occurred_us) AS DATE) AS day FROM chunk
UNION SELECT org_id, day FROM runs WHERE rowid IN (SELECT rid FROM touched_runs);
CREATE OR REPLACE TEMP TABLE dirty_sessions AS
SELECT org_id, session_id FROM runs WHERE rowid IN (SELECT rid FROM touched_runs);
CREATE OR REPLACE TEMP TABLE run_parts AS
WITH parts AS (
    SELECT org_id, run_id,
           {'us': first_us, 'id': first_id, 'who': {'user_id': user_id, 'team_id': team_id, 'session_id': session_id}}
               AS first,
           queued_us, started_us, handoff_us,
           CASE WHEN finished_us IS NOT NULL THEN {'us': finished_us, 'id': finished_id, 'outcome': {'status': status,
               'failure_category': failure_category, 'input_tokens': input_tokens, 'output_tokens': output_tokens,
               'cache_read_tokens': cache_read_tokens, 'cache_write_tokens': cache_write_tokens, 'cost_usd': cost_usd}}
           END AS finished,
           CASE WHEN model_at IS NOT NULL THEN {'us': model_at.us, 'id': model_at.id, 'v': model} END AS model,
           CASE WHEN repo_at IS NOT NULL THEN {'us': repo_at.us, 'id': repo_at.id, 'v': repo} END AS repo,
           CASE WHEN branch_at IS NOT NULL THEN {'us': branch_at.us, 'id': branch_at.id, 'v': branch} END AS branch,
           CASE WHEN agent_at IS NOT NULL THEN {'us': agent_at.us, 'id': agent_at.id, 'v': agent} END AS agent
    FROM runs WHERE rowid IN (SELECT rid FROM touched_runs)
    UNION ALL
    SELECT org_id, run_id,
           {'us': occurred_us, 'id': id, 'who': {'user_id': user_id, 'team_id': team_id, 'session_id': session_id}},
           CASE WHEN type = 'run.queued' THEN occurred_us END,
           CASE WHEN type = 'run.started' THEN occurred_us END,
           CASE WHEN type = 'handoff' THEN occurred_us END,
           CASE WHEN type = 'run.finished' THEN {'us': occurred_us, 'id': id, 'outcome': {'status': status,
               'failure_category': failure_category, 'input_tokens': input_tokens, 'output_tokens': output_tokens,
               'cache_read_tokens': cache_read_tokens, 'cache_write_tokens': cache_write_tokens, 'cost_usd': cost_usd}}
           END,
           CASE WHEN model IS NOT NULL THEN {'us': occurred_us, 'id': id, 'v': model} END,
           CASE WHEN repo IS NOT NULL THEN {'us': occurred_us, 'id': id, 'v': repo} END,
           CASE WHEN branch IS NOT NULL THEN {'us': occurred_us, 'id': id, 'v': branch} END,
           CASE WHEN agent IS NOT NULL THEN {'us': occurred_us, 'id': id, 'v': agent} END
    FROM chunk WHERE run_id IS NOT NULL
),
merged AS (
    SELECT org_id, run_id, min(first) AS first,
           min(queued_us) AS queued_us, min(started_us) AS started_us, min(handoff_us) AS handoff_us,
           max(finished) AS finished, min(model) AS model, min(repo) AS repo, min(branch) AS branch, min(agent) AS agent
    FROM parts GROUP BY org_id, run_id
)
SELECT org_id, run_id, CAST(make_timestamp(first.us) AS DATE) AS day, first.us AS first_us, first.id AS first_id,
       first.who.user_id AS user_id, first.who.team_id AS team_id, first.who.session_id AS session_id,
       queued_us, started_us, handoff_us, finished.us AS finished_us, finished.id AS finished_id,
       finished.outcome.status AS status, finished.outcome.failure_category AS failure_category,
       finished.outcome.input_tokens AS input_tokens, finished.outcome.output_tokens AS output_tokens,
       finished.outcome.cache_read_tokens AS cache_read_tokens, finished.outcome.cache_write_tokens AS cache_write_tokens,
       finished.outcome.cost_usd AS cost_usd,
       CASE WHEN model IS NOT NULL THEN {'us': model.us, 'id': model.id} END AS model_at, model.v AS model,
       CASE WHEN repo IS NOT NULL THEN {'us': repo.us, 'id': repo.id} END AS repo_at, repo.v AS repo,
       false AS followed_up,
       CASE WHEN branch IS NOT NULL THEN {'us': branch.us, 'id': branch.id} END AS branch_at, branch.v AS branch,
       CASE WHEN agent IS NOT NULL THEN {'us': agent.us, 'id': agent.id} END AS agent_at, agent.v AS agent
FROM merged;
-- The (org, repo, branch) keys these runs had and have: the PRs of those keys may link to other runs now.
CREATE OR REPLACE TEMP TABLE run_branches AS
SELECT org_id, lower(repo) AS repo_key, branch FROM runs
WHERE rowid IN (SELECT rid FROM touched_runs) AND branch IS NOT NULL AND repo IS NOT NULL
UNION
SELECT org_id, lower(repo), branch FROM run_parts WHERE branch IS NOT NULL AND repo IS NOT NULL;
DELETE FROM runs WHERE rowid IN (SELECT rid FROM touched_runs);
INSERT INTO runs BY NAME SELECT * FROM run_parts;
DROP TABLE touched_runs;

-- name: fold_sessions
-- Every event but a pr.* one has a session.
CREATE OR REPLACE TEMP TABLE touched_sessions AS
SELECT rowid AS rid FROM sessions
SEMI JOIN (SELECT DISTINCT org_id, session_id FROM chunk WHERE session_id IS NOT NULL) USING (org_id, session_id);
CREATE OR REPLACE TEMP TABLE session_parts AS
WITH parts AS (
    SELECT org_id, session_id, {'us': first_us, 'id': first_id, 'who': {'user_id': user_id, 'team_id': team_id}} AS first,
           first_message_us, last_message_us
    FROM sessions WHERE rowid IN (SELECT rid FROM touched_sessions)
    UNION ALL
    SELECT org_id, session_id, {'us': occurred_us, 'id': id, 'who': {'user_id': user_id, 'team_id': team_id}},
           CASE WHEN type = 'message.sent' THEN occurred_us END,
           CASE WHEN type = 'message.sent' THEN occurred_us END
    FROM chunk WHERE session_id IS NOT NULL
)
SELECT org_id, session_id, CAST(make_timestamp(first.us) AS DATE) AS day, first.us AS first_us, first.id AS first_id,
       first.who.user_id AS user_id, first.who.team_id AS team_id, first_message_us, last_message_us
FROM (
    SELECT org_id, session_id, min(first) AS first,
           min(first_message_us) AS first_message_us, max(last_message_us) AS last_message_us
    FROM parts GROUP BY org_id, session_id
);
-- A session's anchor day holds its run-less usage and code changes.
INSERT INTO dirty_days SELECT org_id, day FROM sessions WHERE rowid IN (SELECT rid FROM touched_sessions);
DELETE FROM sessions WHERE rowid IN (SELECT rid FROM touched_sessions);
INSERT INTO sessions BY NAME SELECT * FROM session_parts;
DROP TABLE session_parts;
DROP TABLE touched_sessions;

-- name: fold_activity
-- Only the chunk's days can already hold its user-days; the day filter lets DuckDB skip the rest. A forge's
-- pr.* event (no session) says nothing of its user's use of agents that day: not activity.
INSERT INTO activity
SELECT DISTINCT org_id, CAST(make_timestamp(occurred_us) AS DATE) AS day, user_id, team_id FROM chunk
WHERE session_id IS NOT NULL
EXCEPT
SELECT org_id, day, user_id, team_id FROM activity
WHERE day BETWEEN (SELECT CAST(make_timestamp(min(occurred_us)) AS DATE) FROM chunk)
              AND (SELECT CAST(make_timestamp(max(occurred_us)) AS DATE) FROM chunk);

-- name: fold_queued
-- A multiset: two distinct events with the same fields add a second equal row, which changes no
-- EXISTS below; appending without a lookup keeps each tick cheap as the table grows.
INSERT INTO queued
SELECT org_id, session_id, user_id, run_id, occurred_us FROM chunk WHERE type = 'run.queued';

-- name: fold_usage
-- A multiset like queued: the log holds each distinct event once and each entry is folded once.
INSERT INTO usage
SELECT org_id, run_id, session_id, CAST(make_timestamp(occurred_us) AS DATE), model,
       input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cost_usd, agent
FROM chunk WHERE type = 'usage';

-- name: fold_code
-- A multiset like usage. An event of a series counts its increase over the series' previous event, ordered by the
-- running totals themselves (they only grow, so that is their time order, clocks aside; then occurred_us, id); a
-- total below the previous one counts 0. Recomputed from all of a touched series' events: any order, same counts.
INSERT INTO code_changes
SELECT org_id, id, run_id, session_id, CAST(make_timestamp(occurred_us) AS DATE), occurred_us, model, repo, series,
       lines_added, lines_removed, commits, lines_added, lines_removed, commits, agent
FROM chunk WHERE type = 'code.changed';
CREATE OR REPLACE TEMP TABLE series_steps AS
SELECT rowid AS rid,
       greatest(lines_added - coalesce(lag(lines_added) OVER w, 0), 0) AS added,
       greatest(lines_removed - coalesce(lag(lines_removed) OVER w, 0), 0) AS removed,
       greatest(commits - coalesce(lag(commits) OVER w, 0), 0) AS committed
FROM code_changes
WHERE series IS NOT NULL
  AND (org_id, series) IN (SELECT (org_id, series) FROM chunk WHERE type = 'code.changed' AND series IS NOT NULL)
WINDOW w AS (PARTITION BY org_id, series
             ORDER BY CAST(lines_added AS HUGEINT) + lines_removed + commits, occurred_us, id);
UPDATE code_changes SET added = s.added, removed = s.removed, committed = s.committed
FROM series_steps s WHERE code_changes.rowid = s.rid;
DROP TABLE series_steps;

-- name: fold_prs
-- As fold_runs: the touched rows by rowid, unioned with one part per pr.* event, re-aggregated.
CREATE OR REPLACE TEMP TABLE touched_prs AS
SELECT rowid AS rid FROM prs
SEMI JOIN (SELECT DISTINCT org_id, lower(repo) AS repo_key, pr_number FROM chunk WHERE pr_number IS NOT NULL)
USING (org_id, repo_key, pr_number);
CREATE OR REPLACE TEMP TABLE pr_parts AS
WITH parts AS (
    SELECT org_id, repo_key, pr_number,
           {'us': first_at.us, 'id': first_at.id, 'what': {'repo': pr_repo, 'head_branch': head_branch}} AS first,
           CASE WHEN who_at IS NOT NULL THEN {'us': who_at.us, 'id': who_at.id,
               'who': {'user_id': event_user_id, 'team_id': event_team_id}} END AS who,
           opened_us, merged_us, {'us': last_at.us, 'id': last_at.id, 'type': last_type} AS last, marked,
           CASE WHEN mark_at IS NOT NULL THEN {'us': mark_at.us, 'id': mark_at.id, 'v': mark} END AS mark
    FROM prs WHERE rowid IN (SELECT rid FROM touched_prs)
    UNION ALL
    SELECT org_id, lower(repo), pr_number, {'us': occurred_us, 'id': id, 'what': {'repo': repo, 'head_branch': branch}},
           CASE WHEN user_id IS NOT NULL OR team_id IS NOT NULL THEN {'us': occurred_us, 'id': id,
               'who': {'user_id': user_id, 'team_id': team_id}} END,
           CASE WHEN type = 'pr.opened' THEN occurred_us END, CASE WHEN type = 'pr.merged' THEN occurred_us END,
           {'us': occurred_us, 'id': id, 'type': type}, agent_mark IS NOT NULL,
           CASE WHEN agent_mark IS NOT NULL THEN {'us': occurred_us, 'id': id, 'v': agent_mark} END
    FROM chunk WHERE pr_number IS NOT NULL
),
merged AS (
    SELECT org_id, repo_key, pr_number, min(first) AS first, min(who) AS who,
           min(opened_us) AS opened_us, min(merged_us) AS merged_us, max(last) AS last, bool_or(marked) AS marked,
           min(mark) AS mark
    FROM parts GROUP BY org_id, repo_key, pr_number
)
SELECT org_id, repo_key, pr_number, {'us': first.us, 'id': first.id} AS first_at, first.what.repo AS pr_repo,
       first.what.head_branch AS head_branch, CASE WHEN who IS NOT NULL THEN {'us': who.us, 'id': who.id} END AS who_at,
       who.who.user_id AS event_user_id, who.who.team_id AS event_team_id, opened_us, merged_us,
       {'us': last.us, 'id': last.id} AS last_at, last.type AS last_type, marked, false AS linked,
       who.who.user_id AS user_id, who.who.team_id AS team_id, NULL AS model, first.what.repo AS repo,
       CASE WHEN mark IS NOT NULL THEN {'us': mark.us, 'id': mark.id} END AS mark_at, mark.v AS mark, mark.v AS agent
FROM merged;
DELETE FROM prs WHERE rowid IN (SELECT rid FROM touched_prs);
INSERT INTO prs BY NAME SELECT * FROM pr_parts;
DROP TABLE touched_prs;

-- name: fold_pr_links
-- A PR's link to the earliest run of its org, repo and branch changes when such a run changes (run_branches: its
-- key before and after) or when the PR does (pr_parts): recompute it for the PRs of those keys, whatever arrived
-- first. Nothing to do (no PR or no branch in the chunk) costs two empty joins.
CREATE OR REPLACE TEMP TABLE link_keys AS
SELECT org_id, repo_key, branch FROM run_branches
UNION
SELECT org_id, repo_key, head_branch FROM pr_parts;
CREATE OR REPLACE TEMP TABLE pr_links AS
SELECT k.org_id, k.repo_key, k.branch, r.run
FROM (SELECT DISTINCT org_id, repo_key, head_branch AS branch FROM prs SEMI JOIN link_keys
      ON prs.org_id = link_keys.org_id AND prs.repo_key = link_keys.repo_key AND prs.head_branch = link_keys.branch) k
LEFT JOIN (
    SELECT org_id, lower(repo) AS repo_key, branch,
           arg_min({'user_id': user_id, 'team_id': team_id, 'model': model, 'repo': repo, 'agent': agent},
                   (first_us, first_id)) AS run
    FROM runs WHERE branch IS NOT NULL AND repo IS NOT NULL
      AND (org_id, branch) IN (SELECT (org_id, branch) FROM link_keys)
    GROUP BY org_id, lower(repo), branch
) r USING (org_id, repo_key, branch);
UPDATE prs SET linked = l.run IS NOT NULL,
               user_id = CASE WHEN l.run IS NULL THEN prs.event_user_id ELSE l.run.user_id END,
               team_id = CASE WHEN l.run IS NULL THEN prs.event_team_id ELSE l.run.team_id END,
               model = l.run.model, repo = coalesce(l.run.repo, prs.pr_repo), agent = coalesce(l.run.agent, prs.mark)
FROM pr_links l
WHERE prs.org_id = l.org_id AND prs.repo_key = l.repo_key AND prs.head_branch = l.branch;
DROP TABLE pr_links;
DROP TABLE link_keys;
DROP TABLE pr_parts;
DROP TABLE run_branches;

-- name: fold_pr_texts
-- A semilattice like prs: the touched rows by rowid, unioned with one part per pr.* event naming a title or url,
-- re-aggregated with arg_max. The latest wins: a forge's close or merge carries the PR's title as it ended.
CREATE OR REPLACE TEMP TABLE text_events AS
SELECT org_id, lower(repo) AS repo_key, pr_number, {'us': occurred_us, 'id': id} AS text_at,
       json_extract_string(attributes, '$.title') AS title, json_extract_string(attributes, '$.url') AS url
FROM chunk WHERE pr_number IS NOT NULL AND attributes IS NOT NULL;
CREATE OR REPLACE TEMP TABLE touched_texts AS
SELECT rowid AS rid FROM pr_texts
SEMI JOIN (SELECT DISTINCT org_id, repo_key, pr_number FROM text_events WHERE title IS NOT NULL OR url IS NOT NULL)
USING (org_id, repo_key, pr_number);
CREATE OR REPLACE TEMP TABLE text_parts AS
WITH parts AS (
    SELECT org_id, repo_key, pr_number, title_at, title, url_at, url FROM pr_texts
    WHERE rowid IN (SELECT rid FROM touched_texts)
    UNION ALL
    SELECT org_id, repo_key, pr_number, CASE WHEN title IS NOT NULL THEN text_at END, title,
           CASE WHEN url IS NOT NULL THEN text_at END, url
    FROM text_events WHERE title IS NOT NULL OR url IS NOT NULL
)
SELECT org_id, repo_key, pr_number,
       max(title_at) AS title_at, arg_max(title, title_at) FILTER (WHERE title_at IS NOT NULL) AS title,
       max(url_at) AS url_at, arg_max(url, url_at) FILTER (WHERE url_at IS NOT NULL) AS url
FROM parts GROUP BY org_id, repo_key, pr_number;
DELETE FROM pr_texts WHERE rowid IN (SELECT rid FROM touched_texts);
INSERT INTO pr_texts BY NAME SELECT * FROM text_parts;
DROP TABLE text_parts;
DROP TABLE touched_texts;
DROP TABLE text_events;

-- name: fold_followed_up
-- A run is followed up when its user queued another run in its session within 4 h after its first
-- handoff. That can change when the run changes or when a run.queued arrives in its session, so
-- recompute the flag for every run in those sessions from the current state: order-independent.
CREATE OR REPLACE TEMP TABLE affected AS
SELECT org_id, session_id FROM run_parts
UNION
SELECT org_id, session_id FROM chunk WHERE type = 'run.queued';
UPDATE runs SET followed_up = EXISTS (
    SELECT 1 FROM queued q
    WHERE q.org_id = runs.org_id AND q.session_id = runs.session_id AND q.user_id = runs.user_id
      AND q.run_id <> runs.run_id
      AND q.queued_us > runs.handoff_us AND q.queued_us <= runs.handoff_us + 14400000000
)
WHERE handoff_us IS NOT NULL AND (org_id, session_id) IN (SELECT (org_id, session_id) FROM affected);
INSERT INTO dirty_days SELECT org_id, day FROM runs
WHERE handoff_us IS NOT NULL AND (org_id, session_id) IN (SELECT (org_id, session_id) FROM affected);
INSERT INTO dirty_sessions SELECT org_id, session_id FROM run_parts;
DROP TABLE affected;
DROP TABLE run_parts;

-- name: fold_cells
-- Rebuild the cells of every dirty day from the facts, and the crossings of every session whose runs changed.
-- Money becomes integer picodollars as in run_metrics. Ingest refuses a cost above 1e14 USD (events.MAX_COST_USD);
-- the cap at 1e14 here (and in run_metrics, usage_metrics) only guards logs written before that limit, which may
-- hold larger costs, so that their sum still fits.
CREATE OR REPLACE TEMP TABLE dirty AS SELECT DISTINCT org_id, day FROM dirty_days;
-- Only the columns the cells need, and the day bounds first: DuckDB then skips the row groups of other days.
CREATE OR REPLACE TEMP TABLE dirty_runs AS
SELECT org_id, day, team_id, run_id, user_id, session_id, queued_us, started_us, finished_us, handoff_us, status,
       followed_up, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cost_usd, model, repo, agent
FROM runs
WHERE day BETWEEN (SELECT min(day) FROM dirty) AND (SELECT max(day) FROM dirty)
  AND (org_id, day) IN (SELECT (org_id, day) FROM dirty);
CREATE OR REPLACE TEMP TABLE dirty_sessions_anchored AS
SELECT org_id, session_id, day, team_id, user_id FROM sessions
WHERE day BETWEEN (SELECT min(day) FROM dirty) AND (SELECT max(day) FROM dirty)
  AND (org_id, day) IN (SELECT (org_id, day) FROM dirty);
DELETE FROM run_cells WHERE (org_id, day) IN (SELECT (org_id, day) FROM dirty);
INSERT INTO run_cells
SELECT org_id, day, team_id, user_id, count(*), count(finished_us), count(*) FILTER (WHERE status = 'succeeded'),
       count(*) FILTER (WHERE status = 'failed'), count(*) FILTER (WHERE status = 'cancelled'),
       sum(finished_us - started_us), count(finished_us - started_us), sum(started_us - queued_us),
       count(started_us - queued_us),
       sum(CAST(round(CASE WHEN cost_usd > 1e14 THEN 1e14 ELSE cost_usd END * 1e12) AS HUGEINT)),
       sum(input_tokens), sum(output_tokens),
       sum(cache_read_tokens), sum(cache_write_tokens),
       count(*) FILTER (WHERE handoff_us IS NOT NULL AND finished_us IS NOT NULL),
       count(*) FILTER (WHERE followed_up AND finished_us IS NOT NULL), count(DISTINCT session_id)
FROM dirty_runs GROUP BY org_id, day, team_id, user_id;
DELETE FROM usage_cells WHERE (org_id, day) IN (SELECT (org_id, day) FROM dirty);
INSERT INTO usage_cells
SELECT org_id, day, team_id, user_id, model, repo, agent,
       sum(CAST(round(CASE WHEN cost_usd > 1e14 THEN 1e14 ELSE cost_usd END * 1e12) AS HUGEINT)),
       sum(input_tokens), sum(output_tokens), sum(cache_read_tokens), sum(cache_write_tokens)
FROM (
    SELECT r.org_id, r.day, r.team_id, r.user_id, coalesce(u.model, r.model) AS model, r.repo,
           coalesce(u.agent, r.agent) AS agent, u.input_tokens, u.output_tokens, u.cache_read_tokens,
           u.cache_write_tokens, u.cost_usd
    FROM usage u JOIN dirty_runs r ON r.org_id = u.org_id AND r.run_id = u.run_id
    WHERE u.day >= (SELECT min(day) FROM dirty)
    UNION ALL
    SELECT s.org_id, s.day, s.team_id, s.user_id, u.model, NULL AS repo, u.agent, u.input_tokens, u.output_tokens,
           u.cache_read_tokens, u.cache_write_tokens, u.cost_usd
    FROM usage u JOIN dirty_sessions_anchored s
      ON s.org_id = u.org_id AND s.session_id = u.session_id
    WHERE u.run_id IS NULL AND u.day >= (SELECT min(day) FROM dirty)
) GROUP BY org_id, day, team_id, user_id, model, repo, agent;
DELETE FROM code_cells WHERE (org_id, day) IN (SELECT (org_id, day) FROM dirty);
INSERT INTO code_cells
SELECT org_id, day, team_id, user_id, model, repo, agent, sum(added), sum(removed), sum(committed)
FROM (
    SELECT r.org_id, r.day, r.team_id, r.user_id, coalesce(c.model, r.model) AS model, r.repo,
           coalesce(c.agent, r.agent) AS agent, c.added, c.removed, c.committed
    FROM code_changes c JOIN dirty_runs r ON r.org_id = c.org_id AND r.run_id = c.run_id
    WHERE c.day >= (SELECT min(day) FROM dirty)
    UNION ALL
    SELECT s.org_id, s.day, s.team_id, s.user_id, c.model, c.repo, c.agent, c.added, c.removed, c.committed
    FROM code_changes c JOIN dirty_sessions_anchored s
      ON s.org_id = c.org_id AND s.session_id = c.session_id
    WHERE c.run_id IS NULL AND c.day >= (SELECT min(day) FROM dirty)
) GROUP BY org_id, day, team_id, user_id, model, repo, agent;
DELETE FROM day_quantiles WHERE (org_id, day) IN (SELECT (org_id, day) FROM dirty);
INSERT INTO day_quantiles
SELECT org_id, day, quantile_cont(finished_us - started_us, 0.95) / 1e6,
       quantile_cont(started_us - queued_us, 0.95) / 1e6
FROM dirty_runs GROUP BY org_id, day;
DELETE FROM run_histogram WHERE (org_id, day) IN (SELECT (org_id, day) FROM dirty);
INSERT INTO run_histogram
SELECT org_id, day, kind, CASE WHEN x < 0 THEN -1 - CAST(floor(sqrt(sqrt(-x))) AS BIGINT)
                               ELSE CAST(floor(sqrt(sqrt(x))) AS BIGINT) END AS bucket, count(*), list(x)
FROM (
    SELECT org_id, day, 0 AS kind, finished_us - started_us AS x FROM dirty_runs
    WHERE finished_us IS NOT NULL AND started_us IS NOT NULL
    UNION ALL
    SELECT org_id, day, 1, started_us - queued_us FROM dirty_runs WHERE started_us IS NOT NULL AND queued_us IS NOT NULL
) GROUP BY ALL;
CREATE OR REPLACE TEMP TABLE crossing_cells AS
SELECT DISTINCT org_id, session_id, day, team_id, user_id FROM runs
WHERE (org_id, session_id) IN (SELECT (org_id, session_id) FROM dirty_sessions);
DELETE FROM run_session_crossings WHERE (org_id, session_id) IN (SELECT (org_id, session_id) FROM dirty_sessions);
INSERT INTO run_session_crossings
SELECT * FROM crossing_cells
WHERE (org_id, session_id) IN (SELECT (org_id, session_id) FROM crossing_cells GROUP BY ALL HAVING count(*) > 1);
DROP TABLE crossing_cells; DROP TABLE dirty_runs; DROP TABLE dirty_sessions_anchored; DROP TABLE dirty;
DROP TABLE dirty_sessions; DROP TABLE dirty_days;

-- name: save_checkpoint
DELETE FROM checkpoint;
INSERT INTO checkpoint VALUES ($seq, $folded_at_us);

-- name: refolded_seqs
SELECT seq FROM refolded WHERE list_contains($seqs, seq);

-- name: save_refolded
INSERT INTO refolded SELECT unnest($seqs);

-- name: load_version
SELECT max(version) FROM read_model_version;

-- name: save_version
DELETE FROM read_model_version;
INSERT INTO read_model_version VALUES ($version);

-- name: load_checkpoint
SELECT seq, folded_at_us FROM checkpoint;

-- Metric queries. Parameters: $org, $from, $to (DATE), $team, $user, $model, $repo, $agent (NULL = no filter),
-- $teams (a list: the teams a manager may see; NULL = no limit).
-- {group} is a whitelisted grouping column chosen in metrics.py (day, team_id, user_id, model, repo, agent);
-- {who_filter} and {run_filter} are the fragments below, pasted in by storage/queries.py render.

-- Sessions and activity have no model, repo or agent. With runs filtered by one, these stand in for them
-- (storage/queries.py render picks; a filter that is never used would still cost a scan of runs):
-- name: activity_of_matching_runs
-- a user is active on the anchor days of their matching runs;
(SELECT org_id, day, user_id, team_id FROM runs WHERE ($model IS NULL OR model = $model) AND ($repo IS NULL OR repo = $repo)
     AND ($agent IS NULL OR agent = $agent))

-- name: sessions_of_matching_runs
-- the sessions that hold a matching run (of any day).
(SELECT * FROM sessions WHERE (org_id, session_id) IN (
    SELECT org_id, session_id FROM runs WHERE ($model IS NULL OR model = $model) AND ($repo IS NULL OR repo = $repo)
      AND ($agent IS NULL OR agent = $agent)))

-- name: who_filter
($team IS NULL OR team_id = $team) AND ($teams IS NULL OR list_contains($teams, team_id))
AND ($user IS NULL OR user_id = $user)

-- name: run_filter
{who_filter} AND ($model IS NULL OR model = $model) AND ($repo IS NULL OR repo = $repo)
AND ($agent IS NULL OR agent = $agent)

-- name: run_metrics
WITH r AS (
    SELECT *, finished_us - started_us AS duration_us, started_us - queued_us AS queue_wait_us
    FROM runs
    WHERE org_id = $org AND day BETWEEN $from AND $to AND {run_filter}
)
SELECT {group} AS grp, grouping(grp) AS is_total,
       count(*) AS runs,
       count(finished_us) AS runs_finished,
       count(*) FILTER (WHERE status = 'succeeded') AS runs_succeeded,
       count(*) FILTER (WHERE status = 'failed') AS runs_failed,
       count(*) FILTER (WHERE status = 'cancelled') AS runs_cancelled,
       -- Sums of integer microseconds and of integer picodollars for money: exact, so any scan order, and a sum of
       -- the cells' sums (run_metrics_cells), gives the same figure to the last bit.
       -- The cap at 1e14 USD guards logs written before ingest refused larger costs (events.MAX_COST_USD).
       sum(duration_us) / count(duration_us) / 1e6 AS run_duration_avg_s,
       quantile_cont(duration_us, 0.95) / 1e6 AS run_duration_p95_s,
       sum(queue_wait_us) / count(queue_wait_us) / 1e6 AS queue_wait_avg_s,
       quantile_cont(queue_wait_us, 0.95) / 1e6 AS queue_wait_p95_s,
       coalesce(sum(duration_us), 0) / 1e6 AS duration_sum_s,
       count(DISTINCT session_id) AS run_sessions,
       coalesce(sum(
           CAST(round(CASE WHEN cost_usd > 1e14 THEN 1e14 ELSE cost_usd END * 1e12) AS HUGEINT)), 0) / 1e12 AS cost_usd,
       coalesce(sum(input_tokens), 0) AS input_tokens,
       coalesce(sum(output_tokens), 0) AS output_tokens,
       coalesce(sum(cache_read_tokens), 0) AS cache_read_tokens,
       coalesce(sum(cache_write_tokens), 0) AS cache_write_tokens,
       count(*) FILTER (WHERE handoff_us IS NOT NULL AND finished_us IS NOT NULL) AS runs_handed_off,
       count(*) FILTER (WHERE followed_up AND finished_us IS NOT NULL) AS runs_followed_up,
       count(DISTINCT user_id) AS run_users
FROM r
GROUP BY GROUPING SETS ((grp), ())

-- name: run_metrics_cells
-- The answers from cells: the same rows as run_metrics for queries grouped by day, team or user with no model, repo
-- or agent filter, and as usage_metrics and code_metrics for any (embedded/read_models.py picks). Its P95s come from the blocks
-- after it (read_models.py pastes them in): each group's from day_quantiles when grouped by day for the whole org,
-- the range's from run_histogram for the whole org, else each from the runs.
WITH cells AS (
    SELECT {group} AS grp, * FROM run_cells WHERE org_id = $org AND day BETWEEN $from AND $to AND {who_filter}
),
sums AS (
    SELECT grp, grouping(grp) AS is_total, sum(runs) AS runs, sum(runs_finished) AS runs_finished,
           sum(runs_succeeded) AS runs_succeeded, sum(runs_failed) AS runs_failed,
           sum(runs_cancelled) AS runs_cancelled, sum(duration_sum_us) AS duration_sum_us,
           sum(duration_n) AS duration_n, sum(queue_sum_us) AS queue_sum_us, sum(queue_n) AS queue_n,
           sum(cost_pusd) AS cost_pusd, sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens,
           sum(cache_read_tokens) AS cache_read_tokens, sum(cache_write_tokens) AS cache_write_tokens,
           sum(runs_handed_off) AS runs_handed_off, sum(runs_followed_up) AS runs_followed_up,
           sum(sessions) AS cell_sessions, count(DISTINCT user_id) AS run_users
    FROM cells GROUP BY GROUPING SETS ((grp), ())
),
crossed AS (
    SELECT {group} AS grp, grouping(grp) AS is_total, count(*) - count(DISTINCT session_id) AS overcount
    FROM run_session_crossings
    WHERE org_id = $org AND day BETWEEN $from AND $to AND {who_filter}
    GROUP BY GROUPING SETS ((grp), ())
),
{group_quantiles},
{range_quantiles},
quantiles AS (SELECT * FROM group_quantiles UNION ALL BY NAME SELECT * FROM range_quantiles)
SELECT s.grp, s.is_total, coalesce(s.runs, 0) AS runs, coalesce(s.runs_finished, 0) AS runs_finished,
       coalesce(s.runs_succeeded, 0) AS runs_succeeded, coalesce(s.runs_failed, 0) AS runs_failed,
       coalesce(s.runs_cancelled, 0) AS runs_cancelled,
       s.duration_sum_us / s.duration_n / 1e6 AS run_duration_avg_s, p.run_duration_p95_s,
       s.queue_sum_us / s.queue_n / 1e6 AS queue_wait_avg_s, p.queue_wait_p95_s,
       p.duration_lo, p.duration_hi, p.duration_rank, p.queue_lo, p.queue_hi, p.queue_rank,
       coalesce(s.duration_sum_us, 0) / 1e6 AS duration_sum_s,
       coalesce(s.cell_sessions, 0) - coalesce(c.overcount, 0) AS run_sessions,
       coalesce(s.cost_pusd, 0) / 1e12 AS cost_usd,
       coalesce(s.input_tokens, 0) AS input_tokens,
       coalesce(s.output_tokens, 0) AS output_tokens,
       coalesce(s.cache_read_tokens, 0) AS cache_read_tokens,
       coalesce(s.cache_write_tokens, 0) AS cache_write_tokens,
       coalesce(s.runs_handed_off, 0) AS runs_handed_off, coalesce(s.runs_followed_up, 0) AS runs_followed_up,
       coalesce(s.run_users, 0) AS run_users
FROM sums s
LEFT JOIN crossed c ON c.grp IS NOT DISTINCT FROM s.grp AND c.is_total = s.is_total
LEFT JOIN quantiles p ON p.grp IS NOT DISTINCT FROM s.grp AND p.is_total = s.is_total

-- name: group_quantiles_of_runs
group_quantiles AS (
    SELECT {group} AS grp, 0 AS is_total,
           quantile_cont(finished_us - started_us, 0.95) / 1e6 AS run_duration_p95_s,
           quantile_cont(started_us - queued_us, 0.95) / 1e6 AS queue_wait_p95_s,
           NULL AS duration_lo, NULL AS duration_hi, NULL AS duration_rank, NULL AS queue_lo, NULL AS queue_hi,
           NULL AS queue_rank
    FROM runs WHERE org_id = $org AND day BETWEEN $from AND $to AND {who_filter}
    GROUP BY grp
)

-- name: group_quantiles_of_days
-- Each day's P95s, as fold_cells stored them.
group_quantiles AS (
    SELECT day AS grp, 0 AS is_total, run_duration_p95_s, queue_wait_p95_s, NULL AS duration_lo, NULL AS duration_hi,
           NULL AS duration_rank, NULL AS queue_lo, NULL AS queue_hi, NULL AS queue_rank
    FROM day_quantiles WHERE org_id = $org AND day BETWEEN $from AND $to
)

-- name: range_quantiles_of_runs
range_quantiles AS (
    SELECT NULL AS grp, 1 AS is_total,
           quantile_cont(finished_us - started_us, 0.95) / 1e6 AS run_duration_p95_s,
           quantile_cont(started_us - queued_us, 0.95) / 1e6 AS queue_wait_p95_s,
           NULL AS duration_lo, NULL AS duration_hi, NULL AS duration_rank, NULL AS queue_lo, NULL AS queue_hi,
           NULL AS queue_rank
    FROM runs WHERE org_id = $org AND day BETWEEN $from AND $to AND {who_filter}
)

-- name: range_quantiles_of_histogram
-- The range's P95s from the whole org's histogram: the values at ranks floor and ceil of (n - 1) * 0.95 and that
-- rank, which embedded/cells.py interpolates as quantile_cont does.
histogram AS (
    SELECT kind, bucket, sum(n) AS n FROM run_histogram WHERE org_id = $org AND day BETWEEN $from AND $to
    GROUP BY kind, bucket
),
placed AS (
    SELECT *, CAST(sum(n) OVER (PARTITION BY kind ORDER BY bucket) - n AS BIGINT) AS below,
           CAST(sum(n) OVER (PARTITION BY kind) - 1 AS DOUBLE) * CAST(0.95 AS DOUBLE) AS rank
    FROM histogram
),
wanted AS (SELECT * FROM placed WHERE floor(rank) < below + n AND ceil(rank) >= below),
ranked AS (
    SELECT kind, rank, x, below + row_number() OVER (PARTITION BY kind, bucket ORDER BY x) - 1 AS place
    FROM (SELECT w.kind, w.bucket, w.rank, w.below, unnest(h.xs) AS x
          FROM run_histogram h JOIN wanted w USING (kind, bucket)
          WHERE h.org_id = $org AND h.day BETWEEN $from AND $to)
),
range_ranks AS (
    SELECT kind, any_value(rank) AS rank, max(x) FILTER (WHERE place = floor(rank)) AS lo,
           max(x) FILTER (WHERE place = ceil(rank)) AS hi
    FROM ranked GROUP BY kind
),
range_quantiles AS (
    SELECT NULL AS grp, 1 AS is_total, NULL AS run_duration_p95_s, NULL AS queue_wait_p95_s, d.lo AS duration_lo,
           d.hi AS duration_hi, d.rank AS duration_rank, q.lo AS queue_lo, q.hi AS queue_hi, q.rank AS queue_rank
    FROM (SELECT 1) LEFT JOIN range_ranks d ON d.kind = 0 LEFT JOIN range_ranks q ON q.kind = 1
)

-- name: usage_metrics_cells
SELECT {group} AS grp, grouping(grp) AS is_total,
       coalesce(sum(cost_pusd), 0) / 1e12 AS cost_usd,
       coalesce(sum(input_tokens), 0) AS input_tokens,
       coalesce(sum(output_tokens), 0) AS output_tokens,
       coalesce(sum(cache_read_tokens), 0) AS cache_read_tokens,
       coalesce(sum(cache_write_tokens), 0) AS cache_write_tokens
FROM usage_cells
WHERE org_id = $org AND day BETWEEN $from AND $to AND {run_filter}
GROUP BY GROUPING SETS ((grp), ())

-- name: code_metrics_cells
SELECT {group} AS grp, grouping(grp) AS is_total,
       coalesce(sum(lines_added), 0) AS lines_added,
       coalesce(sum(lines_removed), 0) AS lines_removed,
       coalesce(sum(commits), 0) AS commits
FROM code_cells
WHERE org_id = $org AND day BETWEEN $from AND $to AND {run_filter}
GROUP BY GROUPING SETS ((grp), ())

-- name: usage_items
-- What usage events consumed, each with the day, team, user, model, repo and agent it counts under (SPEC §3): a
-- run's usage belongs to the run (its anchor day, team, user and repo; the usage's own model and agent, else the
-- run's), any other to its session's anchor (no repo; its own model and agent). No usage is earlier than its run's
-- or session's anchor, so `u.day >= $from` drops only usage that cannot count, and lets DuckDB skip older row groups.
(SELECT r.day, r.team_id, r.user_id, coalesce(u.model, r.model) AS model, r.repo, coalesce(u.agent, r.agent) AS agent,
        u.input_tokens, u.output_tokens, u.cache_read_tokens, u.cache_write_tokens, u.cost_usd
 FROM usage u JOIN runs r ON r.org_id = u.org_id AND r.run_id = u.run_id
 WHERE u.org_id = $org AND u.day >= $from AND r.org_id = $org AND r.day BETWEEN $from AND $to
 UNION ALL
 SELECT s.day, s.team_id, s.user_id, u.model, NULL AS repo, u.agent,
        u.input_tokens, u.output_tokens, u.cache_read_tokens, u.cache_write_tokens, u.cost_usd
 FROM usage u JOIN sessions s ON s.org_id = u.org_id AND s.session_id = u.session_id
 WHERE u.run_id IS NULL AND u.org_id = $org AND u.day >= $from AND s.org_id = $org AND s.day BETWEEN $from AND $to)

-- name: usage_metrics
-- The usage events' share of cost and tokens; metrics.py adds it to run_metrics' run.finished amounts.
SELECT {group} AS grp, grouping(grp) AS is_total,
       coalesce(sum(
           CAST(round(CASE WHEN cost_usd > 1e14 THEN 1e14 ELSE cost_usd END * 1e12) AS HUGEINT)), 0) / 1e12 AS cost_usd,
       coalesce(sum(input_tokens), 0) AS input_tokens,
       coalesce(sum(output_tokens), 0) AS output_tokens,
       coalesce(sum(cache_read_tokens), 0) AS cache_read_tokens,
       coalesce(sum(cache_write_tokens), 0) AS cache_write_tokens
FROM {usage_items} AS items
WHERE {run_filter}
GROUP BY GROUPING SETS ((grp), ())

-- name: code_items
-- What code.changed events count and where (as usage_items): a run's under its run (the event's model, else the
-- run's), any other under its session's anchor with the event's own model and repo (OTLP vcs.repository.name).
(SELECT r.day, r.team_id, r.user_id, coalesce(c.model, r.model) AS model, r.repo, coalesce(c.agent, r.agent) AS agent,
        c.added, c.removed, c.committed
 FROM code_changes c JOIN runs r ON r.org_id = c.org_id AND r.run_id = c.run_id
 WHERE c.org_id = $org AND c.day >= $from AND r.org_id = $org AND r.day BETWEEN $from AND $to
 UNION ALL
 SELECT s.day, s.team_id, s.user_id, c.model, c.repo, c.agent, c.added, c.removed, c.committed
 FROM code_changes c JOIN sessions s ON s.org_id = c.org_id AND s.session_id = c.session_id
 WHERE c.run_id IS NULL AND c.org_id = $org AND c.day >= $from AND s.org_id = $org AND s.day BETWEEN $from AND $to)

-- name: code_metrics
-- SPEC §7's lines_added, lines_removed, commits per group.
SELECT {group} AS grp, grouping(grp) AS is_total,
       coalesce(sum(added), 0) AS lines_added,
       coalesce(sum(removed), 0) AS lines_removed,
       coalesce(sum(committed), 0) AS commits
FROM {code_items} AS items
WHERE {run_filter}
GROUP BY GROUPING SETS ((grp), ())

-- name: pr_metrics
-- SPEC §7 per group: agent-authored PRs (a mark, a run on their branch, or a branch starting with one of $prefixes)
-- counted on the day of each fact: opened, merged (with open -> merge time), closed unmerged (its latest close).
-- A PR's team, user, model and repo are those of its run (prs.linked), else its events'; filtered as runs are.
WITH p AS (
    SELECT * FROM prs
    WHERE org_id = $org AND {run_filter}
      AND (marked OR linked OR len(list_filter($prefixes, lambda prefix: starts_with(head_branch, prefix))) > 0)
),
facts AS (
    SELECT 'opened' AS fact, opened_us AS us, team_id, user_id, model, repo, agent, NULL AS to_merge_us
    FROM p WHERE opened_us IS NOT NULL
    UNION ALL
    SELECT 'merged', merged_us, team_id, user_id, model, repo, agent, merged_us - opened_us FROM p WHERE merged_us IS NOT NULL
    UNION ALL
    SELECT 'closed', last_at.us, team_id, user_id, model, repo, agent, NULL FROM p
    WHERE merged_us IS NULL AND last_type = 'pr.closed'
),
f AS (SELECT *, CAST(make_timestamp(us) AS DATE) AS day FROM facts)
SELECT {group} AS grp, grouping(grp) AS is_total,
       count(*) FILTER (WHERE fact = 'opened') AS agent_prs_opened,
       count(*) FILTER (WHERE fact = 'merged') AS agent_prs_merged,
       count(*) FILTER (WHERE fact = 'closed') AS agent_prs_closed_unmerged,
       quantile_cont(to_merge_us, 0.5) / 1e6 AS agent_pr_time_to_merge_p50_s
FROM f
WHERE day BETWEEN $from AND $to
GROUP BY GROUPING SETS ((grp), ())

-- name: agent_prs
-- The agent-authored PRs (picked as in pr_metrics) with a fact in range (opened, merged, closed unmerged), newest
-- first, at most $limit; total counts them all. Each with the SPEC §3 figures of its branch's runs (same org,
-- lower(repo) and branch; any day) that the filters and scope let through: runs, their run.finished cost plus
-- their usage events' (each call under its own model, as usage_items), failed runs, runs handed off.
WITH p AS (
    SELECT *, CASE WHEN merged_us IS NULL AND last_type = 'pr.closed' THEN last_at.us END AS closed_us
    FROM prs
    WHERE org_id = $org AND {run_filter}
      AND (marked OR linked OR len(list_filter($prefixes, lambda prefix: starts_with(head_branch, prefix))) > 0)
),
shown AS (
    SELECT *, coalesce(opened_us, first_at.us) AS newest, count(*) OVER () AS total FROM p
    WHERE CAST(make_timestamp(opened_us) AS DATE) BETWEEN $from AND $to
       OR CAST(make_timestamp(merged_us) AS DATE) BETWEEN $from AND $to
       OR CAST(make_timestamp(closed_us) AS DATE) BETWEEN $from AND $to
    ORDER BY newest DESC, repo_key, pr_number DESC
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
    -- No usage is older than its run's anchor: the day bound lets DuckDB skip older row groups.
    SELECT l.repo_key, l.pr_number, l.team_id, l.user_id, coalesce(u.model, l.model), l.repo,
           coalesce(u.agent, l.agent), u.cost_usd, false, NULL, NULL
    FROM usage u JOIN linked l ON u.run_id = l.run_id
    WHERE u.org_id = $org AND u.day >= (SELECT min(day) FROM linked)
),
figures AS (
    SELECT repo_key, pr_number,
           count(*) FILTER (WHERE is_run) AS runs,
           coalesce(fsum(cost_usd), 0) AS cost_usd,
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
ORDER BY s.newest DESC, s.repo_key, s.pr_number DESC

-- name: time_to_merge_histogram
-- Agent PRs merged in range that have an opened at (the PRs of agent_pr_time_to_merge_p50_s), per bucket of
-- $edges (seconds, metrics.TIME_TO_MERGE_EDGES_S): bucket i holds edges[i-1] <= t < edges[i]; bucket 0 everything
-- below the first edge, negative times (clock skew) included.
WITH p AS (
    SELECT * FROM prs
    WHERE org_id = $org AND {run_filter}
      AND (marked OR linked OR len(list_filter($prefixes, lambda prefix: starts_with(head_branch, prefix))) > 0)
),
times AS (
    SELECT (merged_us - opened_us) / 1e6 AS t FROM p
    WHERE opened_us IS NOT NULL AND merged_us IS NOT NULL AND CAST(make_timestamp(merged_us) AS DATE) BETWEEN $from AND $to
),
buckets AS (SELECT (SELECT count(*) FROM unnest($edges) AS e(edge) WHERE edge <= t) AS bucket FROM times)
SELECT bucket, count(*) AS prs FROM buckets GROUP BY bucket

-- name: failure_metrics
SELECT {group} AS grp, grouping(grp) AS is_total, failure_category AS category, count(*) AS runs
FROM runs
WHERE org_id = $org AND day BETWEEN $from AND $to AND status = 'failed' AND {run_filter}
GROUP BY GROUPING SETS ((grp, category), (category))

-- name: session_metrics
SELECT {group} AS grp, grouping(grp) AS is_total,
       count(*) AS sessions,
       sum(last_message_us - first_message_us) / count(first_message_us) / 1e6 AS session_lifespan_avg_s
FROM {sessions}
WHERE org_id = $org AND day BETWEEN $from AND $to AND {who_filter}
GROUP BY GROUPING SETS ((grp), ())

-- name: active_users
SELECT {group} AS grp, grouping(grp) AS is_total, count(DISTINCT user_id) AS active_users
FROM {activity}
WHERE org_id = $org AND day BETWEEN $from AND $to AND {who_filter}
GROUP BY GROUPING SETS ((grp), ())

-- name: rolling_active_users
-- DAU, WAU (7 days) and 30-day active users as of each day in range, by a sweep: each user-day opens
-- a coverage of 1 / 7 / 30 days that the user's next active day cuts short, so every user counts once.
WITH a AS (
    SELECT DISTINCT user_id, day FROM {activity}
    WHERE org_id = $org AND day BETWEEN CAST($from AS DATE) - 29 AND $to AND {who_filter}
),
p AS (SELECT day, coalesce(lead(day) OVER (PARTITION BY user_id ORDER BY day), day + 30) AS next_day FROM a),
deltas AS (
    SELECT day AS d, 1 AS dau, 1 AS wau, 1 AS mau FROM p
    UNION ALL SELECT day + 1, -1, 0, 0 FROM p
    UNION ALL SELECT least(day + 7, next_day), 0, -1, 0 FROM p
    UNION ALL SELECT least(day + 30, next_day), 0, 0, -1 FROM p
),
per_day AS (SELECT d, sum(dau) AS dau, sum(wau) AS wau, sum(mau) AS mau FROM deltas GROUP BY d),
days AS (SELECT CAST(unnest(generate_series(CAST($from AS DATE) - 29, CAST($to AS DATE), INTERVAL 1 DAY)) AS DATE) AS d),
running AS (
    SELECT d, sum(coalesce(dau, 0)) OVER w AS dau, sum(coalesce(wau, 0)) OVER w AS wau, sum(coalesce(mau, 0)) OVER w AS mau
    FROM days LEFT JOIN per_day USING (d)
    WINDOW w AS (ORDER BY d ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
)
SELECT d AS day, CAST(dau AS BIGINT) AS dau, CAST(wau AS BIGINT) AS wau, CAST(mau AS BIGINT) AS mau
FROM running WHERE d >= $from

-- name: duration_histogram
-- Runs in range with a duration, per bucket; metrics.DURATION_EDGES_S holds the same edges.
SELECT CASE WHEN d < 30 THEN 0 WHEN d < 60 THEN 1 WHEN d < 120 THEN 2 WHEN d < 300 THEN 3 WHEN d < 600 THEN 4
            WHEN d < 1200 THEN 5 WHEN d < 1800 THEN 6 WHEN d < 3600 THEN 7 ELSE 8 END AS bucket,
       count(*) AS runs
FROM (SELECT (finished_us - started_us) / 1e6 AS d FROM runs
      WHERE org_id = $org AND day BETWEEN $from AND $to AND finished_us IS NOT NULL AND started_us IS NOT NULL
        AND {run_filter})
GROUP BY bucket

-- The values to offer in a filter list: teams and users active in range, models and repos of runs in range.
-- name: activity_keys
SELECT DISTINCT {group} AS key FROM {activity}
WHERE org_id = $org AND day BETWEEN $from AND $to AND {who_filter} AND {group} IS NOT NULL

-- name: run_keys
SELECT DISTINCT {group} AS key FROM runs
WHERE org_id = $org AND day BETWEEN $from AND $to AND {run_filter} AND {group} IS NOT NULL

-- name: usage_keys
-- The models (or repos) usage in range counts under: a model a run called besides its own is a filter value too.
SELECT DISTINCT {group} AS key FROM {usage_items} AS items
WHERE {run_filter} AND {group} IS NOT NULL

-- name: code_keys
-- The models (or repos) code changes in range count under.
SELECT DISTINCT {group} AS key FROM {code_items} AS items
WHERE {run_filter} AND {group} IS NOT NULL

-- name: pr_keys
-- The agents of PRs opened (else first seen) in range: a forge's mark names agents that send no runs (Copilot).
SELECT DISTINCT {group} AS key FROM prs
WHERE org_id = $org AND CAST(make_timestamp(coalesce(opened_us, first_at.us)) AS DATE) BETWEEN $from AND $to
  AND {run_filter} AND {group} IS NOT NULL
