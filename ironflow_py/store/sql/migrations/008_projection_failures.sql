-- 008: a projection that stopped on an event (policy `stop`) says so in its checkpoint row, so that
-- `projections status` shows which projection failed, on which event and why, while the other projections
-- of the same worker keep running (design/reliability.md, class 6). Cleared when the projection moves on.
ALTER TABLE {schema}.projection_checkpoints ADD COLUMN failed_at timestamptz;
ALTER TABLE {schema}.projection_checkpoints ADD COLUMN failed_position bigint;
ALTER TABLE {schema}.projection_checkpoints ADD COLUMN failed_error text;
