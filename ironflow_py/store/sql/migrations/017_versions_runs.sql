-- 017: versions side by side and continue-as-new (design/versioning.md).
--
-- version: the `Workflow.version` an instance runs, recorded by its first write; every later decision uses
--   that version's class until `migrate_version` moves it. Rows written before this migration ran on the
--   one class a type had, whose version is "1" by default. A constant default is a catalog change only.
-- run / run_start: an instance id is a chain of runs; `continue_as_new` ends the current run (a marker
--   event, a snapshot at the last sequence) and starts the next, whose first event is at run_start. A
--   decision loads nothing before run_start: the snapshot at run_start - 1 carries the state.
ALTER TABLE {schema}.instances
    ADD COLUMN version text NOT NULL DEFAULT '1',
    ADD COLUMN run integer NOT NULL DEFAULT 1,
    ADD COLUMN run_start bigint NOT NULL DEFAULT 1;

-- `inspect versions` and the worker's start check count open instances per version of a type.
CREATE INDEX instances_open_versions ON {schema}.instances (workflow_type, version) WHERE status = 'running';

-- Wakes `wait(..., follow_runs=False)` callers when a run continues: the same channel and payload as a
-- close (waiters re-read the row). The WHEN clause keeps it off every other update.
CREATE TRIGGER instances_run_notify AFTER UPDATE OF run ON {schema}.instances
    FOR EACH ROW WHEN (NEW.run <> OLD.run) EXECUTE FUNCTION {schema}.notify_instance_closed();

-- lock_and_load (migration 016) now also reads the instance row first, and loads nothing before the run
-- start. Migration 018 (landed first) keys the lock by schema; numbers apply in order on a new schema (017
-- then 018) but a schema that already had 018 gets 017 afterwards, so both define this same function: the
-- lock through instance_lock_key (created by 018; a plpgsql body looks it up when it runs, and nothing
-- runs a decision between the two in one migrate() transaction). Rows come in this order: the instance row when it exists (seq = run_start, event_type = version,
-- payload NULL, state_version = run), the input key's recorded status (seq NULL, its status in event_type),
-- the latest snapshot newer than p_after (event_type NULL; always asked for once a run has continued, since
-- it carries the state into the run), then the events after p_after or that snapshot, never before
-- run_start, in seq order. The "why a function" of migration 016 holds: every read follows the lock.
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
