-- 003: projection checkpoints, the projection dead-letter table, and a
-- NOTIFY on every event append so workers wake without polling.

CREATE TABLE {schema}.projection_checkpoints (
    name        text        PRIMARY KEY,
    -- The cursor (tx_id, position) of the last event handled; see design/projections.md.
    tx_id       xid8        NOT NULL DEFAULT '0',
    position    bigint      NOT NULL DEFAULT 0,
    -- Bumped by a rebuild, so a running worker knows its per-instance sequence cache is stale.
    generation  bigint      NOT NULL DEFAULT 0,
    applied     bigint      NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE {schema}.projection_dead_letters (
    id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    projection    text        NOT NULL,
    tx_id         xid8        NOT NULL,
    position      bigint      NOT NULL,
    workflow_type text        NOT NULL,
    workflow_id   text        NOT NULL,
    seq           bigint      NOT NULL,
    event_type    text        NOT NULL,
    error         text        NOT NULL,
    attempts      integer     NOT NULL,
    recorded_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX projection_dead_letters_by_projection ON {schema}.projection_dead_letters (projection, id);

-- One notification per appending transaction (PostgreSQL folds identical ones), delivered at commit.
-- A statement trigger keeps write_decision untouched. Channel names are limited to 63 bytes.
CREATE FUNCTION {schema}.notify_event_append() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(left('ironflow_events.' || TG_TABLE_SCHEMA, 63), '');
    RETURN NULL;
END
$$;
CREATE TRIGGER events_notify AFTER INSERT ON {schema}.events
    FOR EACH STATEMENT EXECUTE FUNCTION {schema}.notify_event_append();
