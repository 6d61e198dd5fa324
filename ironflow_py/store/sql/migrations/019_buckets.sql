-- 019: a bucket on every row keyed by an instance (design/scale-out.md): the key a distributed engine (Citus)
-- would place rows by, stored now so that moving later rewrites no stored data.
--
-- bucket = the low 10 bits of hashtextextended(workflow_type || US || workflow_id, 0): 1,024 buckets,
-- fixed for ever (changing the count would move rows). Every row of one instance has the same bucket, so an
-- instance's rows are co-located by construction. A STORED generated column: the server computes it on
-- every insert, so no write path passes it and no caller can get it wrong. hashtextextended is IMMUTABLE
-- and is what PostgreSQL's own hash partitioning uses, which pg_upgrade keeps in place, so its values do
-- not change across major versions (they are those of the server's byte order).
--
-- Cost: adding a STORED generated column rewrites each table once, under an ACCESS EXCLUSIVE lock (plan the
-- migration for a quiet moment on a large database; design/scale-out.md has the figure).

ALTER TABLE {schema}.instances ADD COLUMN bucket integer NOT NULL
    GENERATED ALWAYS AS ((hashtextextended(workflow_type || chr(31) || workflow_id, 0) & 1023)::integer) STORED;
ALTER TABLE {schema}.events ADD COLUMN bucket integer NOT NULL
    GENERATED ALWAYS AS ((hashtextextended(workflow_type || chr(31) || workflow_id, 0) & 1023)::integer) STORED;
ALTER TABLE {schema}.outbox ADD COLUMN bucket integer NOT NULL
    GENERATED ALWAYS AS ((hashtextextended(workflow_type || chr(31) || workflow_id, 0) & 1023)::integer) STORED;
ALTER TABLE {schema}.timers ADD COLUMN bucket integer NOT NULL
    GENERATED ALWAYS AS ((hashtextextended(workflow_type || chr(31) || workflow_id, 0) & 1023)::integer) STORED;
ALTER TABLE {schema}.input_keys ADD COLUMN bucket integer NOT NULL
    GENERATED ALWAYS AS ((hashtextextended(workflow_type || chr(31) || workflow_id, 0) & 1023)::integer) STORED;
ALTER TABLE {schema}.snapshots ADD COLUMN bucket integer NOT NULL
    GENERATED ALWAYS AS ((hashtextextended(workflow_type || chr(31) || workflow_id, 0) & 1023)::integer) STORED;
ALTER TABLE {schema}.events_archive ADD COLUMN bucket integer NOT NULL
    GENERATED ALWAYS AS ((hashtextextended(workflow_type || chr(31) || workflow_id, 0) & 1023)::integer) STORED;
ALTER TABLE {schema}.input_keys_archive ADD COLUMN bucket integer NOT NULL
    GENERATED ALWAYS AS ((hashtextextended(workflow_type || chr(31) || workflow_id, 0) & 1023)::integer) STORED;

-- What a claim or a projection filtered by bucket reads. Only the pending outbox rows (they leave the index
-- when done, like outbox_due) and the timers (a small table); events by (bucket, tx_id, position) is the
-- projection cursor's order (projection_read) within one bucket.
CREATE INDEX outbox_due_by_bucket ON {schema}.outbox (bucket, available_at, id) WHERE status = 'pending';
CREATE INDEX timers_due_by_bucket ON {schema}.timers (bucket, due_at, id);
CREATE INDEX events_by_bucket ON {schema}.events (bucket, tx_id, position);
