-- 002: the latest state snapshot per instance, written in the deciding transaction (see design/snapshots.md).

CREATE TABLE {schema}.snapshots (
    workflow_type text        NOT NULL,
    workflow_id   text        NOT NULL,
    -- The last event sequence the snapshot's state includes.
    seq           bigint      NOT NULL CHECK (seq > 0),
    -- The workflow's `state_version` when written; a snapshot of another version is ignored and replaced.
    state_version integer     NOT NULL,
    payload       jsonb       NOT NULL,
    created_at    timestamptz NOT NULL,
    PRIMARY KEY (workflow_type, workflow_id)
);
