-- 004: the instance lifecycle (design/lifecycle.md): every terminal status, the encoded outcome and the
-- close time (written by the statement that writes the closing events), the pause hold, cancelled
-- outbox rows (terminate), and a NOTIFY when an instance closes so waiters wake without polling.

ALTER TABLE {schema}.instances
    ADD COLUMN outcome   jsonb,
    ADD COLUMN closed_at timestamptz,
    ADD COLUMN paused_at timestamptz;
UPDATE {schema}.instances SET closed_at = updated_at WHERE status <> 'running';
ALTER TABLE {schema}.instances
    DROP CONSTRAINT instances_status_check,
    ADD CONSTRAINT instances_status_check
        CHECK (status IN ('running', 'completed', 'failed', 'cancelled', 'timed_out', 'terminated')),
    ADD CONSTRAINT instances_closed_at CHECK ((status = 'running') = (closed_at IS NULL));
-- The claim statements anti-join on this to skip paused instances; it holds only paused rows, so the
-- lookup is nearly free while nothing is paused.
CREATE INDEX instances_paused ON {schema}.instances (workflow_type, workflow_id) WHERE paused_at IS NOT NULL;

-- 'cancelled': an effect of a terminated instance, which no worker may run.
ALTER TABLE {schema}.outbox
    DROP CONSTRAINT outbox_status_check,
    ADD CONSTRAINT outbox_status_check CHECK (status IN ('pending', 'done', 'dead', 'cancelled'));

-- Wakes `wait` callers when an instance closes: the payload is type US id (US = chr(31)), or '' when the
-- pair would not fit a notification (waiters then re-read). Delivered at commit, never on rollback; the
-- WHEN clause keeps the function from running on the hot path of an update that leaves it running.
CREATE FUNCTION {schema}.notify_instance_closed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(
        left('ironflow_closed.' || TG_TABLE_SCHEMA, 63),
        CASE WHEN octet_length(NEW.workflow_type) + octet_length(NEW.workflow_id) < 7900
             THEN NEW.workflow_type || chr(31) || NEW.workflow_id ELSE '' END);
    RETURN NULL;
END
$$;
CREATE TRIGGER instances_closed_notify AFTER INSERT OR UPDATE OF status ON {schema}.instances
    FOR EACH ROW WHEN (NEW.status <> 'running') EXECUTE FUNCTION {schema}.notify_instance_closed();
