-- Row-level security for the Postgres backend's reads (storage/postgres/read_models.py, `row_security`): the log
-- and every read model with an org_id let a reader role see only the rows of the org in the transaction's
-- `app.org_id` setting. The read API's queries run as that role (`scope`, SET LOCAL: it ends with the
-- transaction); the app's own login role owns the tables, folds and writes, and bypasses these policies (no FORCE).
-- Loaded with pyformat=True. `{reader}`, `{table}`, `{schema}`: identifiers, quoted by psycopg.sql when run.
-- Applied from prepare(), under its schema lock (advisory key (1634492787, 3)), only where something is missing:
-- ALTER TABLE locks the table, even when row security is already on.

-- name: reader_role
-- One role per database (and schema, when not public): roles belong to the whole server, and one reader shared by
-- two databases would let either app's login role read the other's tables. Names are at most 63 bytes.
SELECT CASE WHEN octet_length(name) <= 63 THEN name ELSE left(name, 40) || '_' || left(md5(name), 16) END,
       current_schema()  -- where the tables are: the search_path of reads ("$user" would name the reader's schema)
FROM (SELECT 'agentdash_reader_' || current_database()
             || CASE WHEN current_schema() = 'public' THEN '' ELSE '_' || current_schema() END AS name) AS n

-- name: reader_state
-- Whether the role exists, whether it may use the tables' schema. (Whether this login role may switch to it is
-- tried: pg_has_role's MEMBER is also true for a membership without the SET option.)
SELECT r.oid IS NOT NULL, coalesce(has_schema_privilege(r.oid, n.oid, 'USAGE'), false)
FROM pg_namespace n LEFT JOIN pg_roles r ON r.rolname = $reader
WHERE n.nspname = current_schema()

-- name: unprotected_tables
-- Those of $tables (in the current schema) without row security on, the policy, or the reader's SELECT.
SELECT coalesce(array_agg(t.name ORDER BY t.n), '{}')
FROM unnest($tables::text[]) WITH ORDINALITY AS t (name, n)
WHERE NOT EXISTS (
    SELECT 1 FROM pg_class c JOIN pg_policy p ON p.polrelid = c.oid AND p.polname = 'agentdash_org'
    WHERE c.relname = t.name AND c.relrowsecurity AND has_table_privilege($reader, c.oid, 'SELECT')
      AND c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema()))

-- name: create_reader
-- NOLOGIN: nobody connects as it; only its members (the app's login role) switch to it. Needs CREATEROLE.
CREATE ROLE {reader} NOLOGIN

-- name: join_reader
-- Needs CREATEROLE (PostgreSQL 16: ADMIN OPTION on the role, which its creator has) or superuser.
GRANT {reader} TO CURRENT_USER

-- name: reader_schema
GRANT USAGE ON SCHEMA {schema} TO {reader}

-- name: protect_table
-- The table's owner (the app's login role) runs this. SELECT only: the reader can never write.
GRANT SELECT ON {table} TO {reader};
ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS agentdash_org ON {table};
-- The setting in a subquery: read once per query (an InitPlan), not once per row, and usable as an index condition.
-- Unset, or '' (what it reads after a transaction that set it ended): no rows.
CREATE POLICY agentdash_org ON {table} FOR SELECT TO {reader}
    USING (org_id = (SELECT NULLIF(current_setting('app.org_id', true), '')))

-- name: scope
-- The first statement of each read's transaction: is_local, so role, search_path and org end with it and a pooled
-- connection never carries one request's org into the next. set_config('role') is SET LOCAL ROLE.
SELECT set_config('role', $reader, true), set_config('search_path', $schema, true), set_config('app.org_id', $org, true)
