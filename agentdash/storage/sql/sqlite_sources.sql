-- The source store (storage/embedded/source_store.py), in its own file <data-dir>/sources.sqlite: what each agent
-- has sent per org, version and record name. Adding is commutative: counts sum, last seen is the maximum.

-- name: connect
PRAGMA journal_mode=WAL

-- name: schema
CREATE TABLE IF NOT EXISTS source_records (
    org_id TEXT NOT NULL,             -- '' when the record named no org its key may write
    agent TEXT NOT NULL,              -- service.name
    agent_version TEXT NOT NULL,      -- service.version, '' when absent
    record TEXT NOT NULL,             -- the OTLP record's name
    records INTEGER NOT NULL,
    mapped INTEGER NOT NULL,
    ignored INTEGER NOT NULL,
    rejected INTEGER NOT NULL,
    events_accepted INTEGER NOT NULL,
    events_duplicate INTEGER NOT NULL,
    last_seen_us INTEGER NOT NULL,    -- the newest record's own time
    PRIMARY KEY (org_id, agent, agent_version, record)
);
CREATE TABLE IF NOT EXISTS source_reasons (
    org_id TEXT NOT NULL,
    agent TEXT NOT NULL,
    agent_version TEXT NOT NULL,
    record TEXT NOT NULL,
    reason TEXT NOT NULL,             -- why records were rejected, as the ingest answer said it
    records INTEGER NOT NULL,
    PRIMARY KEY (org_id, agent, agent_version, record, reason)
);
CREATE TABLE IF NOT EXISTS source_people (
    org_id TEXT NOT NULL,
    agent TEXT NOT NULL,
    user_id TEXT NOT NULL,
    last_seen_us INTEGER NOT NULL,
    PRIMARY KEY (org_id, agent, user_id)
);

-- name: add_record
INSERT INTO source_records (org_id, agent, agent_version, record, records, mapped, ignored, rejected, events_accepted,
                            events_duplicate, last_seen_us)
VALUES (:org_id, :agent, :agent_version, :record, :records, :mapped, :ignored, :rejected, :events_accepted,
        :events_duplicate, :last_seen_us)
ON CONFLICT (org_id, agent, agent_version, record) DO UPDATE SET
    records = records + excluded.records, mapped = mapped + excluded.mapped, ignored = ignored + excluded.ignored,
    rejected = rejected + excluded.rejected, events_accepted = events_accepted + excluded.events_accepted,
    events_duplicate = events_duplicate + excluded.events_duplicate,
    last_seen_us = max(last_seen_us, excluded.last_seen_us)

-- name: add_reason
INSERT INTO source_reasons (org_id, agent, agent_version, record, reason, records)
VALUES (:org_id, :agent, :agent_version, :record, :reason, :records)
ON CONFLICT (org_id, agent, agent_version, record, reason) DO UPDATE SET records = records + excluded.records

-- name: add_person
INSERT INTO source_people (org_id, agent, user_id, last_seen_us) VALUES (:org_id, :agent, :user_id, :last_seen_us)
ON CONFLICT (org_id, agent, user_id) DO UPDATE SET last_seen_us = max(last_seen_us, excluded.last_seen_us)

-- name: records
SELECT agent, record, sum(records), sum(mapped), sum(ignored), sum(rejected), sum(events_accepted),
       sum(events_duplicate), max(last_seen_us)
FROM source_records WHERE org_id = :org_id AND org_id <> '' GROUP BY agent, record ORDER BY agent, record

-- name: versions
SELECT agent, agent_version FROM source_records WHERE org_id = :org_id AND org_id <> ''
GROUP BY agent, agent_version ORDER BY agent, max(last_seen_us) DESC, agent_version

-- name: reasons
SELECT agent, record, reason, sum(records) FROM source_reasons WHERE org_id = :org_id AND org_id <> ''
GROUP BY agent, record, reason

-- name: people
SELECT agent, user_id, last_seen_us, people FROM (
    SELECT agent, user_id, last_seen_us, count(*) OVER (PARTITION BY agent) AS people,
           row_number() OVER (PARTITION BY agent ORDER BY last_seen_us DESC, user_id) AS n
    FROM source_people WHERE org_id = :org_id AND org_id <> ''
) WHERE n <= :most ORDER BY agent, n
