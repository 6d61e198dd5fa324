-- 011: retention (design/retention.md). Tombstones for pruned instances, archive tables, the indexes the
-- pruner walks in close order, partial indexes that keep status reads off finished outbox rows, and the
-- payload size the effect worker's byte-bounded prefetch reads.

-- A tombstone: the instance's history was pruned; its row and outcome stay, so a later input still gets
-- `already_completed` (the engine reads the tombstone when an instance has no events).
ALTER TABLE {schema}.instances ADD COLUMN pruned_at timestamptz;
-- The pruner's walk: closed instances not yet pruned, oldest close first.
CREATE INDEX instances_prunable ON {schema}.instances (closed_at)
    WHERE closed_at IS NOT NULL AND pruned_at IS NULL;

-- Finished outbox rows in close order, for the done (and cancelled) retention; dead rows likewise.
CREATE INDEX outbox_finished ON {schema}.outbox (completed_at, id) WHERE status IN ('done', 'cancelled');
CREATE INDEX outbox_dead_by_close ON {schema}.outbox (completed_at, id) WHERE status = 'dead';
-- Every unfinished row of an instance (the pruner skips instances with pending effects; the instance
-- overview counts pending and dead rows) without visiting its finished ones.
CREATE INDEX outbox_open_by_instance ON {schema}.outbox (workflow_type, workflow_id)
    WHERE status IN ('pending', 'dead');

-- The JSON text's size in bytes of an effect's payload, written with the row: the worker bounds what it
-- holds claimed by bytes as well as rows without detoasting a payload to measure it. NULL on rows written
-- before this migration (the claim then uses the stored size).
ALTER TABLE {schema}.outbox ADD COLUMN payload_bytes integer;

-- Archive mode: events of pruned instances are moved here (same columns, plus when), and the input keys.
CREATE TABLE {schema}.events_archive (
    position      bigint      PRIMARY KEY,
    tx_id         xid8        NOT NULL,
    workflow_type text        NOT NULL,
    workflow_id   text        NOT NULL,
    seq           bigint      NOT NULL,
    event_type    text        NOT NULL,
    payload       jsonb       NOT NULL,
    recorded_at   timestamptz NOT NULL,
    archived_at   timestamptz NOT NULL
);
CREATE INDEX events_archive_by_instance ON {schema}.events_archive (workflow_type, workflow_id, seq);
CREATE TABLE {schema}.input_keys_archive (
    workflow_type text        NOT NULL,
    workflow_id   text        NOT NULL,
    input_key     text        NOT NULL,
    status        text        NOT NULL,
    recorded_at   timestamptz NOT NULL,
    archived_at   timestamptz NOT NULL,
    PRIMARY KEY (workflow_type, workflow_id, input_key)
);
