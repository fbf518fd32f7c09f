-- The source store of the Postgres backend (storage/postgres/source_store.py), in the shared database: what each
-- agent has sent per org, version and record name. Adding is commutative (counts sum, last seen is the maximum),
-- so every worker adds what it counted.

-- name: schema
SELECT pg_advisory_xact_lock(1634492787, 3);  -- the schema lock of postgres.sql: processes create it once
CREATE TABLE IF NOT EXISTS source_records (
    org_id TEXT NOT NULL,             -- '' when the record named no org its key may write
    agent TEXT NOT NULL,              -- service.name
    agent_version TEXT NOT NULL,      -- service.version, '' when absent
    record TEXT NOT NULL,             -- the OTLP record's name
    records BIGINT NOT NULL,
    mapped BIGINT NOT NULL,
    ignored BIGINT NOT NULL,
    rejected BIGINT NOT NULL,
    events_accepted BIGINT NOT NULL,
    events_duplicate BIGINT NOT NULL,
    last_seen_us BIGINT NOT NULL,     -- the newest record's own time
    PRIMARY KEY (org_id, agent, agent_version, record)
);
CREATE TABLE IF NOT EXISTS source_reasons (
    org_id TEXT NOT NULL,
    agent TEXT NOT NULL,
    agent_version TEXT NOT NULL,
    record TEXT NOT NULL,
    reason TEXT NOT NULL,             -- why records were rejected, as the ingest answer said it
    records BIGINT NOT NULL,
    PRIMARY KEY (org_id, agent, agent_version, record, reason)
);
CREATE TABLE IF NOT EXISTS source_people (
    org_id TEXT NOT NULL,
    agent TEXT NOT NULL,
    user_id TEXT NOT NULL,
    last_seen_us BIGINT NOT NULL,
    PRIMARY KEY (org_id, agent, user_id)
)

-- name: add_record
INSERT INTO source_records AS r (org_id, agent, agent_version, record, records, mapped, ignored, rejected,
                                 events_accepted, events_duplicate, last_seen_us)
VALUES ($org_id, $agent, $agent_version, $record, $records, $mapped, $ignored, $rejected, $events_accepted,
        $events_duplicate, $last_seen_us)
ON CONFLICT (org_id, agent, agent_version, record) DO UPDATE SET
    records = r.records + excluded.records, mapped = r.mapped + excluded.mapped, ignored = r.ignored + excluded.ignored,
    rejected = r.rejected + excluded.rejected, events_accepted = r.events_accepted + excluded.events_accepted,
    events_duplicate = r.events_duplicate + excluded.events_duplicate,
    last_seen_us = GREATEST(r.last_seen_us, excluded.last_seen_us)

-- name: add_reason
INSERT INTO source_reasons AS r (org_id, agent, agent_version, record, reason, records)
VALUES ($org_id, $agent, $agent_version, $record, $reason, $records)
ON CONFLICT (org_id, agent, agent_version, record, reason) DO UPDATE SET records = r.records + excluded.records

-- name: add_person
INSERT INTO source_people AS p (org_id, agent, user_id, last_seen_us) VALUES ($org_id, $agent, $user_id, $last_seen_us)
ON CONFLICT (org_id, agent, user_id) DO UPDATE SET last_seen_us = GREATEST(p.last_seen_us, excluded.last_seen_us)

-- name: snapshot
-- The four queries of one report see the same adds.
SET TRANSACTION ISOLATION LEVEL REPEATABLE READ

-- name: records
-- sum() of BIGINT is NUMERIC in PostgreSQL: cast back, so both backends hand over ints.
SELECT agent, record, sum(records)::bigint, sum(mapped)::bigint, sum(ignored)::bigint, sum(rejected)::bigint,
       sum(events_accepted)::bigint, sum(events_duplicate)::bigint, max(last_seen_us)
FROM source_records WHERE org_id = $org_id AND org_id <> '' GROUP BY agent, record ORDER BY agent, record

-- name: versions
SELECT agent, agent_version FROM source_records WHERE org_id = $org_id AND org_id <> ''
GROUP BY agent, agent_version ORDER BY agent, max(last_seen_us) DESC, agent_version

-- name: reasons
SELECT agent, record, reason, sum(records)::bigint FROM source_reasons WHERE org_id = $org_id AND org_id <> ''
GROUP BY agent, record, reason

-- name: people
SELECT agent, user_id, last_seen_us, people FROM (
    SELECT agent, user_id, last_seen_us, count(*) OVER (PARTITION BY agent) AS people,
           row_number() OVER (PARTITION BY agent ORDER BY last_seen_us DESC, user_id) AS n
    FROM source_people WHERE org_id = $org_id AND org_id <> ''
) AS ranked WHERE n <= $most ORDER BY agent, n
