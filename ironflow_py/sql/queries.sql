-- Named queries of the PostgreSQL store. `{schema}` is replaced with the quoted schema identifier by
-- ironflow_py.store._sql; values are always parameters.

-- name: lock_instance
-- Per-instance serialization. An advisory lock, not a row lock: SELECT ... FOR UPDATE assigns the
-- transaction id while the caller waits, so a waiter could hold a lower xid than the holder and the
-- (tx_id, position) projection cursor would see its events first. The advisory lock assigns no xid;
-- the first write, after the lock is held, does. Hash collisions only cost extra serialization.
SELECT pg_advisory_xact_lock(hashtextextended(%(workflow_type)s || chr(31) || %(workflow_id)s, 7330))

-- name: load_events
SELECT seq, event_type, payload
FROM {schema}.events
WHERE workflow_type = %(workflow_type)s AND workflow_id = %(workflow_id)s AND seq > %(after_seq)s
ORDER BY seq

-- name: load_snapshot_and_events
-- One statement, so one MVCC snapshot: the latest state snapshot newer than after_seq (if any) and the
-- events after it. The snapshot row comes first (its event_type is NULL and its seq is below the events').
WITH snap AS (
    SELECT seq, state_version, payload
    FROM {schema}.snapshots
    WHERE workflow_type = %(workflow_type)s AND workflow_id = %(workflow_id)s AND seq > %(after_seq)s
)
SELECT seq, NULL::text AS event_type, payload, state_version FROM snap
UNION ALL
SELECT e.seq, e.event_type, e.payload, NULL::integer
FROM {schema}.events e
WHERE e.workflow_type = %(workflow_type)s AND e.workflow_id = %(workflow_id)s
  AND e.seq > greatest(%(after_seq)s, coalesce((SELECT seq FROM snap), 0))
ORDER BY 1, 2 NULLS FIRST

-- name: load_input_key
SELECT status
FROM {schema}.input_keys
WHERE workflow_type = %(workflow_type)s AND workflow_id = %(workflow_id)s AND input_key = %(input_key)s

-- name: write_decision
-- Every write of one decision in one statement (one round trip). Data-modifying CTEs all run; they
-- touch different tables, so sharing one snapshot is safe. Timer keys scheduled by this decision are
-- removed from `cancel_keys` by the caller, so no row is modified twice.
WITH new_events AS (
    INSERT INTO {schema}.events (workflow_type, workflow_id, seq, event_type, payload, recorded_at)
    SELECT %(workflow_type)s, %(workflow_id)s, %(base_seq)s + n, t, p::jsonb, %(now)s
    FROM unnest(%(event_types)s::text[], %(event_payloads)s::text[]) WITH ORDINALITY AS e(t, p, n)
    ORDER BY n
    RETURNING seq, position
), new_effects AS (
    INSERT INTO {schema}.outbox (workflow_type, workflow_id, effect_type, payload, available_at, created_at)
    SELECT %(workflow_type)s, %(workflow_id)s, t, p::jsonb, %(now)s, %(now)s
    FROM unnest(%(effect_types)s::text[], %(effect_payloads)s::text[]) WITH ORDINALITY AS f(t, p, n)
    ORDER BY n
    RETURNING id
), scheduled AS (
    INSERT INTO {schema}.timers (workflow_type, workflow_id, timer_key, due_at, input_type, payload)
    SELECT %(workflow_type)s, %(workflow_id)s, k, d, t, p::jsonb
    FROM unnest(%(timer_keys)s::text[], %(timer_due)s::timestamptz[], %(timer_types)s::text[],
                %(timer_payloads)s::text[]) AS m(k, d, t, p)
    ON CONFLICT (workflow_type, workflow_id, timer_key) DO UPDATE
        SET id = EXCLUDED.id, due_at = EXCLUDED.due_at, input_type = EXCLUDED.input_type,
            payload = EXCLUDED.payload, attempts = 0, locked_by = NULL, locked_until = NULL,
            last_error = NULL
    RETURNING 1
), cancelled AS (
    DELETE FROM {schema}.timers
    WHERE workflow_type = %(workflow_type)s AND workflow_id = %(workflow_id)s
      AND timer_key = ANY(%(cancel_keys)s::text[])
    RETURNING 1
), instance AS (
    -- Skipped when the decision only records an input key (a keyed rejection creates no instance).
    INSERT INTO {schema}.instances (workflow_type, workflow_id, status, last_seq, created_at, updated_at)
    SELECT %(workflow_type)s, %(workflow_id)s, %(status)s, %(last_seq)s, %(now)s, %(now)s
    WHERE %(touch_instance)s
    ON CONFLICT (workflow_type, workflow_id) DO UPDATE
        SET status = EXCLUDED.status, last_seq = EXCLUDED.last_seq, updated_at = EXCLUDED.updated_at
    RETURNING 1
), snapshot AS (
    -- The state after this decision's events, replacing the previous snapshot of the instance.
    INSERT INTO {schema}.snapshots (workflow_type, workflow_id, seq, state_version, payload, created_at)
    SELECT %(workflow_type)s, %(workflow_id)s, %(last_seq)s, %(snapshot_version)s, %(snapshot_payload)s::jsonb, %(now)s
    WHERE %(snapshot_payload)s::text IS NOT NULL
    ON CONFLICT (workflow_type, workflow_id) DO UPDATE
        SET seq = EXCLUDED.seq, state_version = EXCLUDED.state_version, payload = EXCLUDED.payload,
            created_at = EXCLUDED.created_at
    RETURNING 1
), input_key AS (
    INSERT INTO {schema}.input_keys (workflow_type, workflow_id, input_key, status, recorded_at)
    SELECT %(workflow_type)s, %(workflow_id)s, %(input_key)s, %(key_status)s, %(now)s
    WHERE %(input_key)s::text IS NOT NULL
    RETURNING 1
)
SELECT (SELECT coalesce(array_agg(position ORDER BY seq), '{{}}') FROM new_events),
       (SELECT coalesce(array_agg(id ORDER BY id), '{{}}') FROM new_effects)

-- name: history
SELECT seq, position, event_type, payload, recorded_at
FROM {schema}.events
WHERE workflow_type = %(workflow_type)s AND workflow_id = %(workflow_id)s
ORDER BY seq

-- name: instance
SELECT workflow_type, workflow_id, status, last_seq, created_at, updated_at
FROM {schema}.instances
WHERE workflow_type = %(workflow_type)s AND workflow_id = %(workflow_id)s

-- name: list_instances
SELECT workflow_type, workflow_id, status, last_seq, created_at, updated_at
FROM {schema}.instances
WHERE (%(workflow_type)s::text IS NULL OR workflow_type = %(workflow_type)s)
  AND (%(status)s::text IS NULL OR status = %(status)s)
  AND (%(after_id)s::text IS NULL OR (workflow_type, workflow_id) > (%(after_type)s::text, %(after_id)s::text))
ORDER BY workflow_type, workflow_id
LIMIT %(limit)s

-- name: migration_lock
-- Two processes migrating the same schema at once would race on CREATE SCHEMA and on each file;
-- this lock (released at commit) makes the second wait and then find nothing left to apply.
SELECT pg_advisory_xact_lock(hashtextextended('ironflow_py.migrate' || chr(31) || %(schema)s, 7330))

-- name: create_schema
CREATE SCHEMA IF NOT EXISTS {schema}

-- name: create_migrations_table
CREATE TABLE IF NOT EXISTS {schema}.schema_migrations (
    version    integer     PRIMARY KEY,
    name       text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)

-- name: applied_migrations
SELECT version FROM {schema}.schema_migrations ORDER BY version

-- name: record_migration
INSERT INTO {schema}.schema_migrations (version, name) VALUES (%(version)s, %(name)s)

-- name: instance_effects
SELECT id, workflow_type, workflow_id, effect_type, payload, status, attempts, available_at, locked_by,
       locked_until, last_error
FROM {schema}.outbox
WHERE workflow_type = %(workflow_type)s AND workflow_id = %(workflow_id)s
ORDER BY id

-- name: instance_timers
SELECT id, workflow_type, workflow_id, timer_key, due_at, input_type, payload, attempts
FROM {schema}.timers
WHERE workflow_type = %(workflow_type)s AND workflow_id = %(workflow_id)s
ORDER BY due_at, id

-- name: instance_snapshot
SELECT seq, state_version, payload
FROM {schema}.snapshots
WHERE workflow_type = %(workflow_type)s AND workflow_id = %(workflow_id)s
