-- 021: the bucket is written by the statements, no longer computed by a STORED generated column
-- (design/scale-out.md, "The bucket").
--
-- Why: PostgreSQL rebuilds a generated column's expression for every statement that writes the table (it
-- parses the stored expression text and plans it again in the executor's start-up, nodeModifyTable.c's
-- ExecInitStoredGenerated): 16 µs of server CPU per table per statement, 46 µs per decision (events,
-- outbox, instances), 9% of a decision's server CPU under perf. A function call in the statement's own text
-- is planned once with the prepared statement. The values do not change: the same expression, now in
-- instance_bucket, which every INSERT into these tables calls (or copies the bucket of the row it moves).
-- Nothing is rewritten: DROP EXPRESSION keeps every stored value and only forgets the expression. The
-- column stays NOT NULL with no default, so a statement that forgets it fails at once; the same change
-- the sharding plan needs before Citus distributes by the bucket (design/scale-out.md).
--
-- Upgrade: stop the old workers before this migration (design/operations.md): their statements pass no
-- bucket and would fail.

-- IMMUTABLE and a single SELECT, so the planner inlines it into the calling statement.
CREATE FUNCTION {schema}.instance_bucket(p_type text, p_id text)
RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (hashtextextended(p_type || chr(31) || p_id, 0) & 1023)::integer
$$;

ALTER TABLE {schema}.instances ALTER COLUMN bucket DROP EXPRESSION;
ALTER TABLE {schema}.events ALTER COLUMN bucket DROP EXPRESSION;
ALTER TABLE {schema}.outbox ALTER COLUMN bucket DROP EXPRESSION;
ALTER TABLE {schema}.timers ALTER COLUMN bucket DROP EXPRESSION;
ALTER TABLE {schema}.input_keys ALTER COLUMN bucket DROP EXPRESSION;
ALTER TABLE {schema}.snapshots ALTER COLUMN bucket DROP EXPRESSION;
ALTER TABLE {schema}.events_archive ALTER COLUMN bucket DROP EXPRESSION;
ALTER TABLE {schema}.input_keys_archive ALTER COLUMN bucket DROP EXPRESSION;
