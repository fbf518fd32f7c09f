-- Read models and queries of the embedded backend (DuckDB). Loaded by name with storage/queries.py.
--
-- Every fact table is a join-semilattice of the events folded into it: each column is a min, a max
-- or an arg-min/arg-max keyed by (occurred_us, id). Folding the same event twice, or events in any
-- order or grouping, gives the same rows, so the read models equal a fold of the distinct events.

-- name: schema
CREATE TABLE IF NOT EXISTS runs (
    org_id VARCHAR NOT NULL, run_id VARCHAR NOT NULL, day DATE NOT NULL,
    first_us BIGINT NOT NULL, first_id VARCHAR NOT NULL,          -- the anchor event
    who STRUCT(user_id VARCHAR, team_id VARCHAR, session_id VARCHAR) NOT NULL,
    queued_us BIGINT, started_us BIGINT, handoff_us BIGINT,
    finished_us BIGINT, finished_id VARCHAR,                      -- the latest run.finished wins
    outcome STRUCT(status VARCHAR, failure_category VARCHAR, input_tokens BIGINT, output_tokens BIGINT, cost_usd DOUBLE),
    model_at STRUCT(us BIGINT, id VARCHAR), model VARCHAR,        -- from the earliest event carrying it
    repo_at STRUCT(us BIGINT, id VARCHAR), repo VARCHAR
);
CREATE TABLE IF NOT EXISTS sessions (
    org_id VARCHAR NOT NULL, session_id VARCHAR NOT NULL, day DATE NOT NULL,
    first_us BIGINT NOT NULL, first_id VARCHAR NOT NULL,
    who STRUCT(user_id VARCHAR, team_id VARCHAR) NOT NULL,
    first_message_us BIGINT, last_message_us BIGINT
);
CREATE TABLE IF NOT EXISTS activity (org_id VARCHAR NOT NULL, day DATE NOT NULL, user_id VARCHAR NOT NULL, team_id VARCHAR);
CREATE TABLE IF NOT EXISTS queued (
    org_id VARCHAR NOT NULL, session_id VARCHAR NOT NULL, user_id VARCHAR NOT NULL, run_id VARCHAR NOT NULL, queued_us BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS checkpoint (seq BIGINT NOT NULL, folded_at_us BIGINT);

-- name: drop_read_models
DROP TABLE IF EXISTS runs; DROP TABLE IF EXISTS sessions; DROP TABLE IF EXISTS activity;
DROP TABLE IF EXISTS queued; DROP TABLE IF EXISTS checkpoint;

-- name: fold_runs
CREATE OR REPLACE TEMP TABLE run_parts AS
WITH touched AS (SELECT DISTINCT org_id, run_id FROM chunk WHERE run_id IS NOT NULL),
parts AS (
    SELECT org_id, run_id, first_us, first_id, who, queued_us, started_us, handoff_us,
           finished_us, finished_id, outcome, model_at, model, repo_at, repo
    FROM runs SEMI JOIN touched USING (org_id, run_id)
    UNION ALL
    SELECT org_id, run_id, occurred_us, id,
           {'user_id': user_id, 'team_id': team_id, 'session_id': session_id},
           CASE WHEN type = 'run.queued' THEN occurred_us END,
           CASE WHEN type = 'run.started' THEN occurred_us END,
           CASE WHEN type = 'handoff' THEN occurred_us END,
           CASE WHEN type = 'run.finished' THEN occurred_us END,
           CASE WHEN type = 'run.finished' THEN id END,
           CASE WHEN type = 'run.finished' THEN {'status': status, 'failure_category': failure_category,
               'input_tokens': input_tokens, 'output_tokens': output_tokens, 'cost_usd': cost_usd} END,
           CASE WHEN model IS NOT NULL THEN {'us': occurred_us, 'id': id} END, model,
           CASE WHEN repo IS NOT NULL THEN {'us': occurred_us, 'id': id} END, repo
    FROM chunk WHERE run_id IS NOT NULL
)
SELECT org_id, run_id,
       CAST(make_timestamp(min(first_us)) AS DATE) AS day,
       min(first_us) AS first_us,
       arg_min(first_id, (first_us, first_id)) AS first_id,
       arg_min(who, (first_us, first_id)) AS who,
       min(queued_us) AS queued_us, min(started_us) AS started_us, min(handoff_us) AS handoff_us,
       max(finished_us) AS finished_us,
       arg_max(finished_id, (finished_us, finished_id)) FILTER (WHERE finished_us IS NOT NULL) AS finished_id,
       arg_max(outcome, (finished_us, finished_id)) FILTER (WHERE finished_us IS NOT NULL) AS outcome,
       min(model_at) AS model_at, arg_min(model, model_at) FILTER (WHERE model_at IS NOT NULL) AS model,
       min(repo_at) AS repo_at, arg_min(repo, repo_at) FILTER (WHERE repo_at IS NOT NULL) AS repo
FROM parts GROUP BY org_id, run_id;
DELETE FROM runs WHERE (org_id, run_id) IN (SELECT (org_id, run_id) FROM run_parts);
INSERT INTO runs BY NAME SELECT * FROM run_parts;
DROP TABLE run_parts;

-- name: fold_sessions
CREATE OR REPLACE TEMP TABLE session_parts AS
WITH touched AS (SELECT DISTINCT org_id, session_id FROM chunk),
parts AS (
    SELECT org_id, session_id, first_us, first_id, who, first_message_us, last_message_us
    FROM sessions SEMI JOIN touched USING (org_id, session_id)
    UNION ALL
    SELECT org_id, session_id, occurred_us, id, {'user_id': user_id, 'team_id': team_id},
           CASE WHEN type = 'message.sent' THEN occurred_us END,
           CASE WHEN type = 'message.sent' THEN occurred_us END
    FROM chunk
)
SELECT org_id, session_id,
       CAST(make_timestamp(min(first_us)) AS DATE) AS day,
       min(first_us) AS first_us,
       arg_min(first_id, (first_us, first_id)) AS first_id,
       arg_min(who, (first_us, first_id)) AS who,
       min(first_message_us) AS first_message_us, max(last_message_us) AS last_message_us
FROM parts GROUP BY org_id, session_id;
DELETE FROM sessions WHERE (org_id, session_id) IN (SELECT (org_id, session_id) FROM session_parts);
INSERT INTO sessions BY NAME SELECT * FROM session_parts;
DROP TABLE session_parts;

-- name: fold_activity
INSERT INTO activity
SELECT DISTINCT org_id, CAST(make_timestamp(occurred_us) AS DATE) AS day, user_id, team_id FROM chunk
EXCEPT
SELECT org_id, day, user_id, team_id FROM activity;

-- name: fold_queued
INSERT INTO queued
SELECT DISTINCT org_id, session_id, user_id, run_id, occurred_us FROM chunk WHERE type = 'run.queued'
EXCEPT
SELECT org_id, session_id, user_id, run_id, queued_us FROM queued;

-- name: save_checkpoint
DELETE FROM checkpoint;
INSERT INTO checkpoint VALUES ($seq, $folded_at_us);

-- name: load_checkpoint
SELECT seq, folded_at_us FROM checkpoint;

-- Metric queries. Parameters: $org, $from, $to (DATE), $team, $user (NULL = no filter).
-- {group} is a whitelisted grouping column chosen in metrics.py (day, team_id, user_id, model, repo).

-- name: run_metrics
WITH r AS (
    SELECT *, who.user_id AS user_id, who.team_id AS team_id, who.session_id AS session_id,
           outcome.status AS status,
           (finished_us - started_us) / 1e6 AS duration_s,
           (started_us - queued_us) / 1e6 AS queue_wait_s
    FROM runs
    WHERE org_id = $org AND day BETWEEN $from AND $to
      AND ($team IS NULL OR who.team_id = $team) AND ($user IS NULL OR who.user_id = $user)
),
followed AS (  -- handed-off runs whose user queued another run in the same session within 4 h
    SELECT DISTINCT r.run_id
    FROM r JOIN queued q ON q.org_id = r.org_id AND q.session_id = r.session_id AND q.user_id = r.user_id
    WHERE r.handoff_us IS NOT NULL AND r.finished_us IS NOT NULL AND q.run_id <> r.run_id
      AND q.queued_us > r.handoff_us AND q.queued_us <= r.handoff_us + 14400000000
)
SELECT {group} AS grp, grouping(grp) AS is_total,
       count(*) AS runs,
       count(finished_us) AS runs_finished,
       count(*) FILTER (WHERE status = 'succeeded') AS runs_succeeded,
       count(*) FILTER (WHERE status = 'failed') AS runs_failed,
       count(*) FILTER (WHERE status = 'cancelled') AS runs_cancelled,
       avg(duration_s) AS run_duration_avg_s,
       quantile_cont(duration_s, 0.95) AS run_duration_p95_s,
       avg(queue_wait_s) AS queue_wait_avg_s,
       quantile_cont(queue_wait_s, 0.95) AS queue_wait_p95_s,
       coalesce(sum(duration_s), 0) AS duration_sum_s,
       count(DISTINCT session_id) AS run_sessions,
       coalesce(sum(outcome.cost_usd), 0) AS cost_usd,
       coalesce(sum(outcome.input_tokens), 0) AS input_tokens,
       coalesce(sum(outcome.output_tokens), 0) AS output_tokens,
       count(*) FILTER (WHERE handoff_us IS NOT NULL AND finished_us IS NOT NULL) AS runs_handed_off,
       count(f.run_id) AS runs_followed_up,
       count(DISTINCT user_id) AS run_users
FROM r LEFT JOIN followed f USING (run_id)
GROUP BY GROUPING SETS ((grp), ())

-- name: failure_metrics
SELECT {group} AS grp, grouping(grp) AS is_total, outcome.failure_category AS category, count(*) AS runs
FROM (SELECT *, who.user_id AS user_id, who.team_id AS team_id FROM runs
      WHERE org_id = $org AND day BETWEEN $from AND $to AND outcome.status = 'failed'
        AND ($team IS NULL OR who.team_id = $team) AND ($user IS NULL OR who.user_id = $user))
GROUP BY GROUPING SETS ((grp, category), (category))

-- name: session_metrics
SELECT {group} AS grp, grouping(grp) AS is_total,
       count(*) AS sessions,
       avg((last_message_us - first_message_us) / 1e6) AS session_lifespan_avg_s
FROM (SELECT *, who.user_id AS user_id, who.team_id AS team_id FROM sessions
      WHERE org_id = $org AND day BETWEEN $from AND $to
        AND ($team IS NULL OR who.team_id = $team) AND ($user IS NULL OR who.user_id = $user))
GROUP BY GROUPING SETS ((grp), ())

-- name: active_users
SELECT {group} AS grp, grouping(grp) AS is_total, count(DISTINCT user_id) AS active_users
FROM (SELECT * FROM activity
      WHERE org_id = $org AND day BETWEEN $from AND $to
        AND ($team IS NULL OR team_id = $team) AND ($user IS NULL OR user_id = $user))
GROUP BY GROUPING SETS ((grp), ())

-- name: rolling_active_users
-- DAU, WAU (7 days) and 30-day active users as of each day in range.
WITH days AS (SELECT CAST(unnest(generate_series(CAST($from AS DATE), CAST($to AS DATE), INTERVAL 1 DAY)) AS DATE) AS day),
a AS (
    SELECT DISTINCT day, user_id FROM activity
    WHERE org_id = $org AND day BETWEEN CAST($from AS DATE) - 29 AND $to
      AND ($team IS NULL OR team_id = $team) AND ($user IS NULL OR user_id = $user)
)
SELECT d.day,
       count(DISTINCT a.user_id) FILTER (WHERE a.day = d.day) AS dau,
       count(DISTINCT a.user_id) FILTER (WHERE a.day > d.day - 7) AS wau,
       count(DISTINCT a.user_id) AS mau
FROM days d JOIN a ON a.day BETWEEN d.day - 29 AND d.day
GROUP BY d.day

-- name: org_exists
SELECT 1 FROM activity WHERE org_id = $org LIMIT 1
