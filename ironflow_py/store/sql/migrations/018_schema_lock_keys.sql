-- 018: the instance lock key includes the schema (design/decider.md, "One key per schema").
--
-- Advisory locks belong to the database, not to a schema. Until now the instance key hashed type ␟ id only,
-- so two schemas of one database (two tenants, or two test schemas on one server) holding an instance of the
-- same type and id took the same lock and blocked each other. The key now hashes schema ␟ type ␟ id, and it
-- lives in this one function: lock_and_load below, lock_instance and prune_pick_instances (queries.sql) all
-- call it. The schema name is bound in as a literal when the migration runs, the name the schema had then
-- (after ALTER SCHEMA ... RENAME the key still hashes the old name: still distinct from every other schema's
-- unless a new schema takes the old name, and a shared key only costs serialization, never correctness).
-- IMMUTABLE and a single SELECT, so the planner inlines it into the calling statement.
--
-- Upgrade: stop the workers of the old version before running this migration (design/operations.md). An old
-- process's lock_instance still hashes type ␟ id, which no longer excludes a decision holding the new key.
CREATE FUNCTION {schema}.instance_lock_key(p_type text, p_id text)
RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT hashtextextended({schema_name} || chr(31) || p_type || chr(31) || p_id, 7330)
$$;

-- lock_and_load with the new key. Merged with migration 017 (versions and runs): on a new schema 017 runs
-- first and this definition, the same as 017's, is the one in force; rows and "why a function": 016, 017.
CREATE OR REPLACE FUNCTION {schema}.lock_and_load(
    p_type text, p_id text, p_after bigint, p_snapshot boolean, p_key text
)
RETURNS TABLE (seq bigint, event_type text, payload jsonb, state_version integer)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_after bigint := p_after;
    v_seq bigint;
    v_payload jsonb;
    v_version integer;
    v_run_start bigint := 1;
    v_code text;
    v_run integer;
BEGIN
    PERFORM pg_advisory_xact_lock({schema}.instance_lock_key(p_type, p_id));
    SELECT i.run_start, i.version, i.run INTO v_run_start, v_code, v_run
    FROM {schema}.instances i
    WHERE i.workflow_type = p_type AND i.workflow_id = p_id;
    IF FOUND THEN
        seq := v_run_start; event_type := v_code; payload := NULL; state_version := v_run;
        RETURN NEXT;
    ELSE
        v_run_start := 1;
    END IF;
    IF p_key IS NOT NULL THEN
        RETURN QUERY
            SELECT NULL::bigint, k.status, NULL::jsonb, NULL::integer
            FROM {schema}.input_keys k
            WHERE k.workflow_type = p_type AND k.workflow_id = p_id AND k.input_key = p_key;
    END IF;
    IF p_snapshot OR v_run_start > 1 THEN
        SELECT s.seq, s.payload, s.state_version INTO v_seq, v_payload, v_version
        FROM {schema}.snapshots s
        WHERE s.workflow_type = p_type AND s.workflow_id = p_id AND s.seq > p_after;
        IF FOUND THEN
            seq := v_seq; event_type := NULL; payload := v_payload; state_version := v_version;
            RETURN NEXT;
            v_after := v_seq;
        END IF;
    END IF;
    RETURN QUERY
        SELECT e.seq, e.event_type, e.payload, NULL::integer
        FROM {schema}.events e
        WHERE e.workflow_type = p_type AND e.workflow_id = p_id AND e.seq > greatest(v_after, v_run_start - 1)
        ORDER BY e.seq;
END
$$;
