-- The decision transaction's first statement: take the instance lock and read what the decider needs, in one
-- round trip (design/decider.md). Rows come in this order: the input key's recorded status (seq NULL, its
-- status in event_type), the latest snapshot newer than p_after (event_type NULL), then the events after
-- p_after or after that snapshot, in seq order.
--
-- Why a function and not one statement with a CTE: a statement takes its MVCC snapshot before it starts, so
-- a CTE that waits on the lock would read the instance as it was before the previous holder committed. A
-- VOLATILE plpgsql function takes a fresh snapshot for each query it runs (READ COMMITTED), so every read
-- below happens after the lock is held and sees the previous holder's commit. The lock is an advisory lock
-- (lock_instance in queries.sql): it assigns no transaction id, and nothing here writes, so the xid is still
-- assigned by the decision's first write, after the lock. plpgsql also keeps the plans of these queries for
-- the session, as a prepared statement would.
CREATE FUNCTION {schema}.lock_and_load(p_type text, p_id text, p_after bigint, p_snapshot boolean, p_key text)
RETURNS TABLE (seq bigint, event_type text, payload jsonb, state_version integer)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_after bigint := p_after;
    v_seq bigint;
    v_payload jsonb;
    v_version integer;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended(p_type || chr(31) || p_id, 7330));
    IF p_key IS NOT NULL THEN
        RETURN QUERY
            SELECT NULL::bigint, k.status, NULL::jsonb, NULL::integer
            FROM {schema}.input_keys k
            WHERE k.workflow_type = p_type AND k.workflow_id = p_id AND k.input_key = p_key;
    END IF;
    IF p_snapshot THEN
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
        WHERE e.workflow_type = p_type AND e.workflow_id = p_id AND e.seq > v_after
        ORDER BY e.seq;
END
$$;
