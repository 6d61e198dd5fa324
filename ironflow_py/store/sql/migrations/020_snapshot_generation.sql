-- 020: a snapshot generation on the instance row (design/snapshots.md, "The warm path").
--
-- A warm state cache used to ask lock_and_load for the latest snapshot newer than its own sequence on every
-- decision: the only way a running process learned that `snapshots verify --drop` had replaced the snapshot
-- its cached state came from. That probe is one more index read under the lock and, after the process wrote
-- a snapshot itself, the decoding of a snapshot it already holds as a state. The instance row (which
-- lock_and_load reads anyway) now counts the changes of the instance's snapshot row: every statement that
-- inserts, replaces or deletes a snapshot adds one (write_decision, bump_snapshot_gen, drop_snapshot). A caller
-- passes the generation its cached state was checked against (p_gen); while it is still the row's, nothing
-- replaced the snapshot since, and the snapshot is not read. NULL (no cached state, or one whose generation
-- is unknown) reads it as before. Adding a NOT NULL column with a constant default rewrites no table.
--
-- Rows, as in 017 with one more column: the instance row's snapshot_gen; NULL on every other row.

ALTER TABLE {schema}.instances ADD COLUMN snapshot_gen bigint NOT NULL DEFAULT 0;

DROP FUNCTION {schema}.lock_and_load(text, text, bigint, boolean, text);

CREATE FUNCTION {schema}.lock_and_load(
    p_type text, p_id text, p_after bigint, p_snapshot boolean, p_key text, p_gen bigint
)
RETURNS TABLE (seq bigint, event_type text, payload jsonb, state_version integer, snapshot_gen bigint)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_after bigint := p_after;
    v_seq bigint;
    v_payload jsonb;
    v_version integer;
    v_run_start bigint := 1;
    v_code text;
    v_run integer;
    v_gen bigint;
BEGIN
    PERFORM pg_advisory_xact_lock({schema}.instance_lock_key(p_type, p_id));
    SELECT i.run_start, i.version, i.run, i.snapshot_gen INTO v_run_start, v_code, v_run, v_gen
    FROM {schema}.instances i
    WHERE i.workflow_type = p_type AND i.workflow_id = p_id;
    IF FOUND THEN
        seq := v_run_start; event_type := v_code; payload := NULL; state_version := v_run; snapshot_gen := v_gen;
        RETURN NEXT;
        snapshot_gen := NULL;
    ELSE
        v_run_start := 1;
    END IF;
    IF p_key IS NOT NULL THEN
        RETURN QUERY
            SELECT NULL::bigint, k.status, NULL::jsonb, NULL::integer, NULL::bigint
            FROM {schema}.input_keys k
            WHERE k.workflow_type = p_type AND k.workflow_id = p_id AND k.input_key = p_key;
    END IF;
    -- Skipped only for a caller whose state was checked against this very generation and lies in the
    -- current run: no snapshot was written, replaced or dropped since it last looked.
    IF (p_snapshot OR v_run_start > 1)
       AND (p_gen IS NULL OR v_gen IS NULL OR p_gen <> v_gen OR p_after < v_run_start - 1) THEN
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
        SELECT e.seq, e.event_type, e.payload, NULL::integer, NULL::bigint
        FROM {schema}.events e
        WHERE e.workflow_type = p_type AND e.workflow_id = p_id AND e.seq > greatest(v_after, v_run_start - 1)
        ORDER BY e.seq;
END
$$;
