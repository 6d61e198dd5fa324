-- Named queries of the PostgreSQL store. `{schema}` is replaced with the quoted schema identifier by
-- ironflow_py.store._sql; values are always parameters.

-- name: lock_instance
-- Per-instance serialization. An advisory lock, not a row lock: SELECT ... FOR UPDATE assigns the
-- transaction id while the caller waits, so a waiter could hold a lower xid than the holder and the
-- (tx_id, position) projection cursor would see its events first. The advisory lock assigns no xid;
-- the first write, after the lock is held, does. The key hashes schema ␟ type ␟ id (instance_lock_key,
-- migration 018): advisory locks are per database, so without the schema two tenants' schemas would block
-- each other on the same type and id. Hash collisions only cost extra serialization.
SELECT pg_advisory_xact_lock({schema}.instance_lock_key(%(workflow_type)s, %(workflow_id)s))

-- name: load_events
SELECT seq, event_type, payload
FROM {schema}.events
WHERE workflow_type = %(workflow_type)s AND workflow_id = %(workflow_id)s AND seq > %(after_seq)s
ORDER BY seq

-- name: lock_and_load
-- The decision's first statement: the instance lock, then the input key's status, the latest snapshot newer
-- than after_seq (when asked) and the events after it, in one round trip. A function (migration 016), not a
-- CTE: a statement's MVCC snapshot is taken before it waits on the lock, the function's queries each take
-- one after it.
-- known_gen: the snapshot generation the caller's cached state was checked against (migration 020), or NULL.
SELECT seq, event_type, payload, state_version, snapshot_gen
FROM {schema}.lock_and_load(
    %(workflow_type)s, %(workflow_id)s, %(after_seq)s, %(with_snapshot)s, %(input_key)s, %(known_gen)s
)

-- name: load_input_key
SELECT status
FROM {schema}.input_keys
WHERE workflow_type = %(workflow_type)s AND workflow_id = %(workflow_id)s AND input_key = %(input_key)s

-- name: write_decision
-- Every write of one decision in one statement (one round trip). Data-modifying CTEs all run; they
-- touch different tables, so sharing one snapshot is safe. Timer keys scheduled by this decision are
-- removed from `cancel_keys` by the caller, so no row is modified twice.
-- The arrays are sent in binary (%(...)b): psycopg's text form of an array escapes every element with a
-- regular expression, which cost 7 µs per array against 2 µs (design/decider.md).
-- k.b: the instance's bucket (migration 021), computed once for every row the statement writes.
WITH k AS (
    SELECT {schema}.instance_bucket(%(workflow_type)s, %(workflow_id)s) AS b
), new_events AS (
    INSERT INTO {schema}.events (workflow_type, workflow_id, seq, event_type, payload, recorded_at, bucket)
    SELECT %(workflow_type)s, %(workflow_id)s, %(base_seq)s + n, t, p::jsonb, %(now)s, k.b
    FROM k, unnest(%(event_types)b::text[], %(event_payloads)b::text[]) WITH ORDINALITY AS e(t, p, n)
    ORDER BY n
    RETURNING seq, position
), new_effects AS (
    INSERT INTO {schema}.outbox
        (workflow_type, workflow_id, effect_type, payload, available_at, created_at, trace_context, payload_bytes,
         bucket)
    SELECT %(workflow_type)s, %(workflow_id)s, t, p::jsonb, %(now)s, %(now)s, %(trace_context)s, octet_length(p),
           k.b
    FROM k, unnest(%(effect_types)b::text[], %(effect_payloads)b::text[]) WITH ORDINALITY AS f(t, p, n)
    ORDER BY n
    RETURNING id
), scheduled AS (
    INSERT INTO {schema}.timers
        (workflow_type, workflow_id, timer_key, due_at, input_type, payload, trace_context, bucket)
    SELECT %(workflow_type)s, %(workflow_id)s, m.k, d, t, p::jsonb, %(trace_context)s, k.b
    FROM k, unnest(%(timer_keys)b::text[], %(timer_due)b::timestamptz[], %(timer_types)b::text[],
                   %(timer_payloads)b::text[]) AS m(k, d, t, p)
    ON CONFLICT (workflow_type, workflow_id, timer_key) DO UPDATE
        SET id = EXCLUDED.id, due_at = EXCLUDED.due_at, input_type = EXCLUDED.input_type,
            payload = EXCLUDED.payload, attempts = 0, locked_by = NULL, locked_until = NULL,
            last_error = NULL, trace_context = EXCLUDED.trace_context
    RETURNING 1
), cancelled AS (
    DELETE FROM {schema}.timers
    WHERE workflow_type = %(workflow_type)s AND workflow_id = %(workflow_id)s
      AND timer_key = ANY(%(cancel_keys)b::text[])
    RETURNING 1
), instance AS (
    -- Skipped when the decision only records an input key (a keyed rejection creates no instance).
    -- The outcome and close time are written here, with the closing events: never one without the other.
    -- version: recorded by the first write; a later decision was made by that version's class (or moved it,
    -- migrate_version), so it writes that one. A run continued as new moves the run in continue_run.
    -- snapshot_gen counts this decision's snapshot, if it writes one (migration 020); the caller's cache
    -- keeps the value returned.
    INSERT INTO {schema}.instances AS i
        (workflow_type, workflow_id, status, last_seq, created_at, updated_at, outcome, closed_at, version,
         snapshot_gen, bucket)
    SELECT %(workflow_type)s, %(workflow_id)s, %(status)s, %(last_seq)s, %(now)s, %(now)s, %(outcome)s::jsonb,
           CASE WHEN %(status)s <> 'running' THEN %(now)s::timestamptz END, %(version)s,
           (%(snapshot_payload)s::text IS NOT NULL)::int, k.b
    FROM k WHERE %(touch_instance)s
    ON CONFLICT (workflow_type, workflow_id) DO UPDATE
        SET status = EXCLUDED.status, last_seq = EXCLUDED.last_seq, updated_at = EXCLUDED.updated_at,
            outcome = EXCLUDED.outcome, closed_at = EXCLUDED.closed_at, version = EXCLUDED.version,
            snapshot_gen = i.snapshot_gen + EXCLUDED.snapshot_gen
    RETURNING i.snapshot_gen
), snapshot AS (
    -- The state after this decision's events, replacing the previous snapshot of the instance.
    INSERT INTO {schema}.snapshots (workflow_type, workflow_id, seq, state_version, payload, created_at, bucket)
    SELECT %(workflow_type)s, %(workflow_id)s, %(last_seq)s, %(snapshot_version)s, %(snapshot_payload)s::jsonb, %(now)s,
           k.b
    FROM k WHERE %(snapshot_payload)s::text IS NOT NULL
    ON CONFLICT (workflow_type, workflow_id) DO UPDATE
        SET seq = EXCLUDED.seq, state_version = EXCLUDED.state_version, payload = EXCLUDED.payload,
            created_at = EXCLUDED.created_at
    RETURNING 1
), input_key AS (
    INSERT INTO {schema}.input_keys (workflow_type, workflow_id, input_key, status, recorded_at, bucket)
    SELECT %(workflow_type)s, %(workflow_id)s, %(input_key)s, %(key_status)s, %(now)s, k.b
    FROM k WHERE %(input_key)s::text IS NOT NULL
    RETURNING 1
)
SELECT (SELECT coalesce(array_agg(position ORDER BY seq), '{{}}') FROM new_events),
       (SELECT coalesce(array_agg(id ORDER BY id), '{{}}') FROM new_effects),
       -- Wake the workers when this commits (NOTIFY is delivered at commit, never on rollback). Polling
       -- stays the source of truth: a lost notification only costs latency.
       CASE WHEN %(notify)s THEN pg_notify(%(channel)s, '') END IS NULL,
       (SELECT snapshot_gen FROM instance)

-- name: terminate_instance
-- Terminate (design/lifecycle.md), before the terminating decision's write_decision, in its transaction and
-- under the instance lock. Every timer of the instance goes (a terminate decision schedules and cancels none):
-- a worker holding a claim on one fires nothing, its fence finds no row. Pending effects become 'cancelled',
-- which no claim selects and no fenced settle accepts (they all require 'pending'), so a worker that claimed
-- one earlier cannot mark it done or feed back. The rows the decision itself writes come after and are not
-- touched. Its own statement, not two CTEs of write_decision: their executor start was paid by every decision.
WITH dropped_timers AS (
    DELETE FROM {schema}.timers
    WHERE workflow_type = %(workflow_type)s AND workflow_id = %(workflow_id)s
)
UPDATE {schema}.outbox
SET status = 'cancelled', completed_at = %(now)s, locked_until = NULL
WHERE workflow_type = %(workflow_type)s AND workflow_id = %(workflow_id)s AND status = 'pending'

-- name: bump_snapshot_gen
-- After a write_decision that stored a snapshot without touching the instance row (`snapshots verify --drop`
-- replacing one): the generation still counts it (migration 020).
UPDATE {schema}.instances SET snapshot_gen = snapshot_gen + 1
WHERE workflow_type = %(workflow_type)s AND workflow_id = %(workflow_id)s
RETURNING snapshot_gen

-- name: continue_run
-- Continue-as-new (design/versioning.md): runs after write_decision, in its transaction and under the
-- instance lock, only when the decision ends its run. Its marker event is at last_seq and the snapshot
-- covers it; the next run starts right after. The run trigger (migration 017) wakes run waiters at commit.
UPDATE {schema}.instances
SET run = run + 1, run_start = %(last_seq)s + 1
WHERE workflow_type = %(workflow_type)s AND workflow_id = %(workflow_id)s

-- name: link_parent
-- A child records its parent in the transaction that creates it (a start-child delivery, under the
-- child's lock only). `parent_id IS NULL`: a link is written once and never moved to another parent.
UPDATE {schema}.instances
SET parent_type = %(parent_type)s, parent_id = %(parent_id)s, parent_close_policy = %(policy)s
WHERE workflow_type = %(workflow_type)s AND workflow_id = %(workflow_id)s AND parent_id IS NULL

-- name: close_relations
-- Runs in the transaction that closes an instance, after write_decision (whose rows it sees), under that
-- instance's lock only: a close never locks another instance (design/composition.md).
-- notice: a child queues the notice to its parent, carrying its outcome, in the same transaction.
-- unstarted: its own pending start-child rows whose policy is not 'abandon' are cancelled. A worker that
--   is delivering one holds its row lock (the fenced settle), so this waits for that delivery to commit
--   and then leaves the row (no longer pending): the child it created is committed before this close is.
-- sweep: a parent that ever asked for a child with a policy queues one sweep row; the worker runs it
--   after this commit, so it sees every child committed before (each gets its policy).
WITH notice AS (
    INSERT INTO {schema}.outbox
        (workflow_type, workflow_id, effect_type, payload, available_at, created_at, trace_context, bucket)
    SELECT workflow_type, workflow_id, 'ironflow.child_closed/1',
           jsonb_build_object('parent_type', parent_type, 'parent_id', parent_id, 'outcome', outcome),
           %(now)s, %(now)s, %(trace_context)s, bucket
    FROM {schema}.instances
    WHERE workflow_type = %(workflow_type)s AND workflow_id = %(workflow_id)s AND parent_id IS NOT NULL
    RETURNING 1
), unstarted AS (
    UPDATE {schema}.outbox
    SET status = 'cancelled', completed_at = %(now)s, locked_until = NULL
    WHERE workflow_type = %(workflow_type)s AND workflow_id = %(workflow_id)s
      AND effect_type = 'ironflow.start_child/1' AND status = 'pending'
      AND payload->>'on_parent_close' <> 'abandon'
    RETURNING 1
), sweep AS (
    INSERT INTO {schema}.outbox
        (workflow_type, workflow_id, effect_type, payload, available_at, created_at, trace_context, bucket)
    SELECT %(workflow_type)s, %(workflow_id)s, 'ironflow.parent_closed/1', '{{}}'::jsonb, %(now)s, %(now)s,
           %(trace_context)s, {schema}.instance_bucket(%(workflow_type)s, %(workflow_id)s)
    WHERE EXISTS (SELECT 1 FROM {schema}.outbox
                  WHERE workflow_type = %(workflow_type)s AND workflow_id = %(workflow_id)s
                    AND effect_type = 'ironflow.start_child/1' AND status IN ('pending', 'done')
                    AND payload->>'on_parent_close' <> 'abandon')
    RETURNING 1
)
-- Wake the workers only when a row was queued (delivered at commit, as in write_decision).
SELECT CASE WHEN EXISTS (SELECT 1 FROM notice) OR EXISTS (SELECT 1 FROM sweep)
            THEN pg_notify(%(channel)s, '') END IS NULL,
       (SELECT count(*) FROM unstarted)

-- name: open_versions
-- Open instances per recorded version (the partial index instances_open_versions, migration 017).
SELECT version, count(*)
FROM {schema}.instances
WHERE workflow_type = %(workflow_type)s AND status = 'running'
GROUP BY version
ORDER BY version

-- name: children
SELECT workflow_type, workflow_id, status, last_seq, created_at, updated_at, closed_at, outcome, paused_at,
       parent_type, parent_id, parent_close_policy, version, run, run_start
FROM {schema}.instances
WHERE parent_type = %(workflow_type)s AND parent_id = %(workflow_id)s
  AND parent_id IS NOT NULL AND (NOT %(open_only)s OR status = 'running')
ORDER BY workflow_type, workflow_id

-- name: hold_instance
-- Pause (a time) or resume (NULL). Runs under the instance lock, which every status change also takes, so
-- the instance is still open here. Claims anti-join on paused_at (claim_effects, claim_timers); a resume
-- notifies the workers so held effects and due timers run at once.
WITH held AS (
    UPDATE {schema}.instances
    SET paused_at = %(paused_at)s, updated_at = %(now)s
    WHERE workflow_type = %(workflow_type)s AND workflow_id = %(workflow_id)s
    RETURNING 1
), input_key AS (
    INSERT INTO {schema}.input_keys (workflow_type, workflow_id, input_key, status, recorded_at, bucket)
    SELECT %(workflow_type)s, %(workflow_id)s, %(input_key)s, 'accepted', %(now)s,
           {schema}.instance_bucket(%(workflow_type)s, %(workflow_id)s)
    WHERE %(input_key)s::text IS NOT NULL
    RETURNING 1
)
SELECT (SELECT count(*) FROM held), CASE WHEN %(paused_at)s::timestamptz IS NULL THEN pg_notify(%(channel)s, '') END IS NULL

-- name: history
SELECT seq, position, event_type, payload, recorded_at
FROM {schema}.events
WHERE workflow_type = %(workflow_type)s AND workflow_id = %(workflow_id)s
ORDER BY seq

-- name: read_load
-- A lock-free `lock_and_load` without the input key (Store.reading: a state read on a replica). The
-- instance row first (part 0: run_start, version, run), then the snapshot row (event_type NULL; always
-- read once a run has continued, as in lock_and_load, migration 017), then the events after it or after
-- p_after, never before the run start, in seq order. It runs inside a REPEATABLE READ READ ONLY
-- transaction, so a following load_events sees the same data.
WITH inst AS (
    SELECT i.run_start, i.version, i.run FROM {schema}.instances i
    WHERE i.workflow_type = %(workflow_type)s AND i.workflow_id = %(workflow_id)s
), snap AS (
    SELECT s.seq, s.payload, s.state_version FROM {schema}.snapshots s
    WHERE s.workflow_type = %(workflow_type)s AND s.workflow_id = %(workflow_id)s
      AND s.seq > %(after_seq)s AND (%(with_snapshot)s OR coalesce((SELECT run_start FROM inst), 1) > 1)
)
SELECT 0 AS part, run_start AS seq, version AS event_type, NULL::jsonb AS payload, run AS state_version FROM inst
UNION ALL
SELECT 1, seq, NULL::text, payload, state_version FROM snap
UNION ALL
SELECT 2, e.seq, e.event_type, e.payload, NULL::integer
FROM {schema}.events e
WHERE e.workflow_type = %(workflow_type)s AND e.workflow_id = %(workflow_id)s
  AND e.seq > greatest(coalesce((SELECT seq FROM snap), %(after_seq)s), coalesce((SELECT run_start FROM inst), 1) - 1)
ORDER BY part, seq

-- name: read_only_snapshot
SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY

-- name: wal_position
-- Asked after COMMIT returned: the insert position is at or past the commit record whatever
-- synchronous_commit says (the write position, pg_current_wal_lsn(), may still be before it when commits
-- are asynchronous). design/scale-out.md, "Read your writes".
SELECT pg_current_wal_insert_lsn()::text

-- name: replay_reached
-- On a standby: has replay passed the position? On a primary (replay position NULL, not in recovery):
-- every commit is visible, so yes. The second column is what to report when it has not.
SELECT coalesce(pg_last_wal_replay_lsn() >= %(min_lsn)s::pg_lsn, NOT pg_is_in_recovery()),
       pg_last_wal_replay_lsn()::text

-- name: instance
SELECT workflow_type, workflow_id, status, last_seq, created_at, updated_at, closed_at, outcome, paused_at,
       parent_type, parent_id, parent_close_policy, version, run, run_start
FROM {schema}.instances
WHERE workflow_type = %(workflow_type)s AND workflow_id = %(workflow_id)s

-- name: list_instances
SELECT workflow_type, workflow_id, status, last_seq, created_at, updated_at, closed_at, outcome, paused_at,
       parent_type, parent_id, parent_close_policy, version, run, run_start
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

-- name: migrations_table_exists
SELECT EXISTS (
    SELECT 1 FROM pg_catalog.pg_tables WHERE schemaname = %(schema)s AND tablename = 'schema_migrations'
)

-- name: applied_migrations
SELECT version FROM {schema}.schema_migrations ORDER BY version

-- name: record_migration
INSERT INTO {schema}.schema_migrations (version, name) VALUES (%(version)s, %(name)s)

-- name: instance_effects
SELECT id, workflow_type, workflow_id, effect_type, payload, status, attempts, available_at, locked_by,
       locked_until, last_error, last_traceback
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

-- name: settle_effect_done
-- Fenced: only the worker holding this attempt's claim may finish the row. A worker whose lease expired
-- and was taken over matches nothing, and its whole transaction (returned input included) rolls back.
UPDATE {schema}.outbox
SET status = 'done', completed_at = %(now)s, locked_until = NULL
WHERE id = %(id)s AND locked_by = %(worker)s AND claim_token = %(token)s AND status = 'pending'

-- name: settle_effect_dead
-- Fenced like settle_effect_done; the dead-letter input (if any) commits in the same transaction.
UPDATE {schema}.outbox
SET status = 'dead', completed_at = %(now)s, locked_until = NULL, last_error = %(error)s,
    last_traceback = %(traceback)s
WHERE id = %(id)s AND locked_by = %(worker)s AND claim_token = %(token)s AND status = 'pending'

-- name: settle_timer_fired
-- Fenced on the timer's id, which a reschedule replaces and a cancellation deletes: a claim on an old or
-- cancelled timer matches nothing, so its input is never applied. Runs under the instance lock, which
-- the deciding transaction that cancels or replaces timers also takes, so the two cannot interleave.
DELETE FROM {schema}.timers
WHERE id = %(id)s AND locked_by = %(worker)s AND claim_token = %(token)s

-- name: claim_effects
-- One statement claims a batch. FOR UPDATE SKIP LOCKED: concurrent workers take disjoint rows without
-- waiting for each other. The lease end is written to available_at as well as locked_until, so a row
-- whose lease expires becomes due again through the same partial index, with no second predicate to
-- scan past live claims. attempts counts claims (committed before the handler runs, so an attempt whose
-- process dies is counted). claim_token, fresh from a sequence, names this claim: it fences every later
-- change of the row and never repeats, even when `dead-letters retry` resets attempts (design/reliability.md).
-- RETURNING due.available_at: when the row became due (queued, retry time or lease end), before the claim
-- moved it, for the schedule-to-start delay metric.
-- One clock: the `now` parameter is NULL except under a ManualClock (tests), so now(), the database's
-- clock, judges due-ness and lease ends: hosts whose clocks disagree still agree on them (design/operations.md).
-- The byte bound (design/retention.md): the locked candidates are cut where their payloads' running total
-- passes max_bytes (the first row stays when always_one: an idle worker takes one payload of any size);
-- the rows cut off are unlocked when the statement commits.
-- payload_bytes is NULL only on rows written before migration 011 (their stored size stands in).
WITH candidates AS (
    -- The anti-join skips paused instances (design/lifecycle.md); instances_paused holds only paused rows.
    SELECT id, available_at, coalesce(payload_bytes, pg_column_size(payload)) AS bytes FROM {schema}.outbox o
    WHERE status = 'pending' AND available_at <= coalesce(%(now)s::timestamptz, now())
      AND NOT EXISTS (SELECT 1 FROM {schema}.instances i
                      WHERE i.paused_at IS NOT NULL
                        AND i.workflow_type = o.workflow_type AND i.workflow_id = o.workflow_id)
      -- A worker with no effect handlers still delivers the engine's own rows (messages, child starts,
      -- notices, sweeps): it names their types, and leaves the rest to workers that have handlers.
      AND (%(types)s::text[] IS NULL OR effect_type = ANY(%(types)s::text[]))
    ORDER BY available_at, id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), due AS (
    SELECT id, available_at, bytes FROM (
        SELECT id, available_at, bytes, row_number() OVER w AS n, sum(bytes) OVER w AS running
        FROM candidates WINDOW w AS (ORDER BY available_at, id)
    ) c
    WHERE %(max_bytes)s::bigint IS NULL OR running <= %(max_bytes)s::bigint OR (n = 1 AND %(always_one)s)
)
UPDATE {schema}.outbox o
SET locked_by = %(worker)s, attempts = o.attempts + 1,
    claim_token = nextval('{schema}.claim_tokens'),
    locked_until = coalesce(%(now)s::timestamptz, now()) + %(lease)s,
    available_at = coalesce(%(now)s::timestamptz, now()) + %(lease)s
FROM due
WHERE o.id = due.id
RETURNING o.id, o.workflow_type, o.workflow_id, o.effect_type, o.payload, o.attempts, o.claim_token,
          due.available_at, o.trace_context, due.bytes

-- name: complete_effects
-- Batch completion of handlers that returned nothing, fenced per row (this worker, this attempt): rows
-- taken over by another worker are left alone and reported missing from the RETURNING list.
UPDATE {schema}.outbox o
SET status = 'done', completed_at = coalesce(%(now)s::timestamptz, now()), locked_until = NULL
FROM unnest(%(ids)s::bigint[], %(tokens)s::bigint[]) AS c(id, token)
WHERE o.id = c.id AND o.claim_token = c.token AND o.locked_by = %(worker)s AND o.status = 'pending'
RETURNING o.id

-- name: retry_effect_later
-- Fenced: a failed attempt schedules the next one only if this worker still holds the claim.
UPDATE {schema}.outbox
SET available_at = coalesce(%(now)s::timestamptz, now()) + %(delay)s,
    locked_by = NULL, locked_until = NULL, last_error = %(error)s, last_traceback = %(traceback)s
WHERE id = %(id)s AND locked_by = %(worker)s AND claim_token = %(token)s AND status = 'pending'

-- name: release_effects
-- Fenced: hand back claims this worker holds but will not finish (shutdown); the claim does not count as
-- an attempt, and the row is due at once for any worker.
UPDATE {schema}.outbox o
SET available_at = coalesce(%(now)s::timestamptz, now()),
    locked_by = NULL, locked_until = NULL, attempts = o.attempts - 1
FROM unnest(%(ids)s::bigint[], %(tokens)s::bigint[]) AS c(id, token)
WHERE o.id = c.id AND o.claim_token = c.token AND o.locked_by = %(worker)s AND o.status = 'pending'
RETURNING o.id

-- name: heartbeat_effect
-- Fenced: a worker extends only its own live claim; a lost claim returns no row. The new end is the
-- database's clock plus the lease (see claim_effects).
UPDATE {schema}.outbox
SET locked_until = coalesce(%(now)s::timestamptz, now()) + %(lease)s,
    available_at = coalesce(%(now)s::timestamptz, now()) + %(lease)s
WHERE id = %(id)s AND locked_by = %(worker)s AND claim_token = %(token)s AND status = 'pending'
RETURNING locked_until

-- name: claim_timers
-- FOR UPDATE SKIP LOCKED: concurrent timer workers take disjoint timers. The lease keeps a claimed
-- timer from being claimed again until it expires; claim_token (never repeated) and locked_by fence the firing.
-- One clock: the `now` parameter is NULL except under a ManualClock (tests), so now(), the database's
-- clock, judges due-ness and lease ends: hosts whose clocks disagree still agree on them (design/operations.md).
WITH due AS (
    -- Paused instances are skipped, as in claim_effects; a timer that fell due meanwhile fires after resume.
    SELECT id FROM {schema}.timers t
    WHERE due_at <= coalesce(%(now)s::timestamptz, now())
      AND (locked_until IS NULL OR locked_until <= coalesce(%(now)s::timestamptz, now()))
      AND NOT EXISTS (SELECT 1 FROM {schema}.instances i
                      WHERE i.paused_at IS NOT NULL
                        AND i.workflow_type = t.workflow_type AND i.workflow_id = t.workflow_id)
    ORDER BY due_at, id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE {schema}.timers t
SET locked_by = %(worker)s, locked_until = coalesce(%(now)s::timestamptz, now()) + %(lease)s, attempts = t.attempts + 1,
    claim_token = nextval('{schema}.claim_tokens')
FROM due
WHERE t.id = due.id
RETURNING t.id, t.workflow_type, t.workflow_id, t.timer_key, t.due_at, t.input_type, t.payload, t.attempts,
          t.claim_token, t.trace_context

-- name: retry_timer_later
-- Fenced: a failed firing schedules the next try only if this worker still holds the claim.
UPDATE {schema}.timers
SET locked_by = NULL, locked_until = coalesce(%(now)s::timestamptz, now()) + %(delay)s, last_error = %(error)s
WHERE id = %(id)s AND locked_by = %(worker)s AND claim_token = %(token)s

-- name: release_timers
-- Fenced: hand back unfired timer claims at shutdown; due again at once, not counted as an attempt.
UPDATE {schema}.timers t
SET locked_by = NULL, locked_until = NULL, attempts = t.attempts - 1
FROM unnest(%(ids)s::bigint[], %(tokens)s::bigint[]) AS c(id, token)
WHERE t.id = c.id AND t.claim_token = c.token AND t.locked_by = %(worker)s
RETURNING t.id

-- name: next_due
-- Seconds until the idle loop should look again, by the database's clock (or the `now` parameter under a
-- ManualClock): the earliest row that is actually claimable. Effects: available_at holds the due time, the
-- retry time and a lease end alike. Timers: one under a lease or a retry backoff is claimable at
-- greatest(due_at, locked_until), so it must not hide a later, unlocked one; the unlocked ones are read in
-- due_at order and stop at the first row, the locked ones are few (in flight or backing off). Rows of
-- paused instances are skipped as in the claims, or a paused due row would make the idle loop spin.
SELECT extract(epoch FROM (least(
         (SELECT available_at FROM {schema}.outbox o WHERE status = 'pending'
            AND NOT EXISTS (SELECT 1 FROM {schema}.instances i WHERE i.paused_at IS NOT NULL
                              AND i.workflow_type = o.workflow_type AND i.workflow_id = o.workflow_id)
          ORDER BY available_at, id LIMIT 1),
         (SELECT due_at FROM {schema}.timers t WHERE locked_until IS NULL
            AND NOT EXISTS (SELECT 1 FROM {schema}.instances i WHERE i.paused_at IS NOT NULL
                              AND i.workflow_type = t.workflow_type AND i.workflow_id = t.workflow_id)
          ORDER BY due_at, id LIMIT 1),
         (SELECT min(greatest(due_at, locked_until)) FROM {schema}.timers WHERE locked_until IS NOT NULL)
       ) - coalesce(%(now)s::timestamptz, clock_timestamp())))::float8

-- name: notify
SELECT pg_notify(%(channel)s, '')

-- name: dead_letters
SELECT id, workflow_type, workflow_id, effect_type, payload, status, attempts, available_at, locked_by,
       locked_until, last_error, last_traceback
FROM {schema}.outbox
WHERE status = 'dead' AND id > %(after_id)s
ORDER BY id
LIMIT %(limit)s

-- name: count_dead_letters
SELECT count(*) FROM {schema}.outbox WHERE status = 'dead'

-- name: retry_dead_letter
-- Only a dead row is revived; a fresh attempt count gives it the full retry policy again.
WITH revived AS (
    UPDATE {schema}.outbox
    SET status = 'pending', attempts = 0, available_at = %(now)s, locked_by = NULL, locked_until = NULL,
        completed_at = NULL, claim_token = NULL
    WHERE id = %(id)s AND status = 'dead'
    RETURNING id
)
SELECT id, pg_notify(%(channel)s, '') IS NULL FROM revived

-- name: discard_dead_letter
DELETE FROM {schema}.outbox WHERE id = %(id)s AND status = 'dead' RETURNING id

-- name: outbox_health
-- What waits, what runs, what died, for `ironflow-py inspect outbox`. Each part reads one partial index
-- (outbox_due: pending rows; outbox_dead: dead rows), never the finished rows, which can be millions
-- (design/retention.md: a `status <> 'done'` filter scanned them all).
SELECT p.pending, p.due_now, p.in_flight, p.retrying,
       (SELECT count(*) FROM {schema}.outbox WHERE status = 'dead') AS dead,
       p.oldest_pending_at
FROM (
    SELECT count(*) AS pending,
           count(*) FILTER (WHERE available_at <= %(now)s) AS due_now,
           count(*) FILTER (WHERE locked_until > %(now)s) AS in_flight,
           count(*) FILTER (WHERE attempts > 0 AND locked_by IS NULL) AS retrying,
           min(created_at) AS oldest_pending_at
    FROM {schema}.outbox
    WHERE status = 'pending'
) p

-- name: outbox_in_flight_by_worker
SELECT locked_by, count(*), min(locked_until)
FROM {schema}.outbox
WHERE status = 'pending' AND locked_until > %(now)s
GROUP BY locked_by
ORDER BY locked_by

-- name: timer_health
SELECT count(*), count(*) FILTER (WHERE due_at <= %(now)s), min(due_at)
FROM {schema}.timers

-- ---------------------------------------------------------------------------------------------------
-- Projections (design/projections.md)

-- name: projection_lead
-- Take the lead of a projection whose lease is free: no row yet, or its lease ended by the DATABASE clock
-- (now(); hosts' clocks never decide, design/operations.md "One clock"). Every take bumps the fence, so a
-- frozen former leader that wakes up holds a stale fence and every write it tries is refused. Two standbys
-- racing: the second waits on the row lock of the first's upsert, then re-checks the WHERE against the
-- new row (READ COMMITTED re-evaluation), finds the lease live, and gets no row.
INSERT INTO {schema}.projection_leases AS l (name, holder, fence, expires_at)
VALUES (%(name)s, %(holder)s, 1, now() + %(lease)s)
ON CONFLICT (name) DO UPDATE
SET holder = EXCLUDED.holder, fence = l.fence + 1, expires_at = EXCLUDED.expires_at,
    acquired_at = now(), renewed_at = now()
WHERE l.expires_at <= now()
RETURNING fence

-- name: projection_renew
-- Extend the lease, only while the fence is still ours (a lease that ran out but was not taken over is
-- still ours: nobody else wrote under a newer fence). No row: another worker took over; step down.
UPDATE {schema}.projection_leases
SET expires_at = now() + %(lease)s, renewed_at = now()
WHERE name = %(name)s AND fence = %(fence)s
RETURNING fence

-- name: projection_release
-- A leader that stops ends its lease at once (fenced: never a successor's), so a standby need not wait.
UPDATE {schema}.projection_leases
SET expires_at = now()
WHERE name = %(name)s AND fence = %(fence)s

-- name: projection_leader
-- Who leads each projection, for status and tests: holder, fence, and whether the lease is live now.
SELECT name, holder, fence, expires_at, expires_at > now()
FROM {schema}.projection_leases
WHERE name = ANY(%(names)s::text[])
ORDER BY name

-- name: projection_ensure
INSERT INTO {schema}.projection_checkpoints (name) VALUES (%(name)s) ON CONFLICT (name) DO NOTHING

-- name: projection_checkpoint_for_update
-- FOR UPDATE: a rebuild (which resets this row) waits for the batch in flight instead of racing it. The
-- last column is the lease's current fence: a batch goes on only while it is the worker's own, so a former
-- leader whose lease was taken over (it froze, or its batch outlived the lease) steps down before handling
-- anything, instead of working from a cache the new leader has made stale (a false ProjectionGap).
-- idle_ms (a batch: the lease) becomes the transaction's local idle_in_transaction_session_timeout: a leader
-- frozen inside its batch (a stalled network) holds this row lock, which the standby's batches need, and the
-- transaction horizon no longer than that after it stopped talking; local, so right behind a pooler too.
SELECT c.tx_id::text, c.position, c.generation,
       (SELECT l.fence FROM {schema}.projection_leases l WHERE l.name = c.name),
       CASE WHEN %(idle_ms)s::text IS NOT NULL
            THEN set_config('idle_in_transaction_session_timeout', %(idle_ms)s::text, true) END
FROM {schema}.projection_checkpoints c
WHERE c.name = %(name)s
FOR UPDATE OF c

-- name: projection_read
-- The cursor. Positions are allocated before commit, so a lower position can become visible after a
-- higher one; ordering by (tx_id, position) and reading only transactions below the snapshot's xmin
-- means every transaction we read has finished, and any transaction that commits later has a larger
-- tx_id than everything we have read. Within one transaction rows are read in position order, so a
-- batch boundary inside a transaction resumes where it stopped. One statement: one snapshot.
-- ORDER BY names the table's columns (e.tx_id): a bare `tx_id` would sort by the text output column.
SELECT e.tx_id::text, e.position, e.workflow_type, e.workflow_id, e.seq, e.event_type, e.payload, e.recorded_at
FROM {schema}.events e
WHERE (e.tx_id, e.position) > (%(tx_id)s::xid8, %(position)s::bigint)
  AND e.tx_id < pg_snapshot_xmin(pg_current_snapshot())
ORDER BY e.tx_id, e.position
LIMIT %(limit)s

-- name: projection_last_applied
-- The gap guard's answer for instances the worker has not seen since it took the lead: the highest
-- sequence below the one in hand that the cursor has already passed (0: none). If that is not the one
-- just before, an earlier event is still ahead of the cursor (reordered) or missing, and the worker stops.
SELECT u.t, u.i, coalesce(p.seq, 0)
FROM unnest(%(types)s::text[], %(ids)s::text[], %(seqs)s::bigint[]) AS u(t, i, s)
LEFT JOIN LATERAL (
    SELECT e.seq FROM {schema}.events e
    WHERE e.workflow_type = u.t AND e.workflow_id = u.i AND e.seq < u.s
      AND (e.tx_id, e.position) <= (%(tx_id)s::xid8, %(position)s::bigint)
    ORDER BY e.seq DESC
    LIMIT 1
) AS p ON true

-- name: projection_save
-- The checkpoint moves in the same transaction as the read model's writes. The notification (delivered
-- at commit) wakes wait_until_caught_up callers. Fenced: it moves only while the lease's fence is still
-- the one the worker took (this statement's snapshot is fresh, so a take-over committed while the batch
-- ran is seen); no row means the lead was lost and the worker rolls the whole batch back.
WITH saved AS (
    UPDATE {schema}.projection_checkpoints
    SET tx_id = %(tx_id)s::xid8, position = %(position)s, applied = applied + %(handled)s, updated_at = now(),
        failed_at = NULL, failed_position = NULL, failed_error = NULL
    WHERE name = %(name)s
      AND EXISTS (SELECT 1 FROM {schema}.projection_leases l WHERE l.name = %(name)s AND l.fence = %(fence)s)
    RETURNING name
)
SELECT pg_notify(%(channel)s, name) FROM saved

-- name: projection_held_back
-- Asked after a round that read all it could: are there events after one of these checkpoints? Either an
-- older transaction still holds the horizon in front of them, or the horizon passed them between that
-- read and this question. The transaction that held it ends without a NOTIFY if it wrote no events, so
-- in both cases the worker polls soon instead of waiting for one. (Asking only "is anything behind the
-- horizon?" missed the second case and slept a whole poll interval.)
SELECT EXISTS (
    SELECT 1 FROM {schema}.projection_checkpoints c
    CROSS JOIN LATERAL (
        SELECT 1 FROM {schema}.events e WHERE (e.tx_id, e.position) > (c.tx_id, c.position) LIMIT 1
    ) AS beyond
    WHERE c.name = ANY(%(names)s::text[])
)

-- name: projection_dead_letter
INSERT INTO {schema}.projection_dead_letters
    (projection, tx_id, position, workflow_type, workflow_id, seq, event_type, error, attempts)
VALUES (%(name)s, %(tx_id)s::xid8, %(position)s, %(workflow_type)s, %(workflow_id)s, %(seq)s, %(event_type)s,
        %(error)s, %(attempts)s)

-- name: projection_dead_letters
SELECT id, projection, position, workflow_type, workflow_id, seq, event_type, error, attempts, recorded_at
FROM {schema}.projection_dead_letters
WHERE projection = %(name)s
ORDER BY id

-- name: projection_reset
UPDATE {schema}.projection_checkpoints
SET tx_id = '0', position = 0, applied = 0, generation = generation + 1, updated_at = now()
WHERE name = %(name)s

-- name: projection_failed
-- A projection stopped on an event under the `stop` policy; its checkpoint is unchanged. Written on its
-- own (autocommit), after the failed batch rolled back.
UPDATE {schema}.projection_checkpoints
SET failed_at = now(), failed_position = %(position)s, failed_error = %(error)s
WHERE name = %(name)s
  AND EXISTS (SELECT 1 FROM {schema}.projection_leases l WHERE l.name = %(name)s AND l.fence = %(fence)s)

-- name: projection_status
-- Lag counts the visible events after the checkpoint, including those still behind the horizon. The
-- leader is the lease's holder while the lease is live by the database clock (an ended lease: no leader).
SELECT c.name, c.tx_id::text, c.position, c.applied, c.updated_at,
       (SELECT count(*) FROM {schema}.events e WHERE (e.tx_id, e.position) > (c.tx_id, c.position)),
       (SELECT e.recorded_at FROM {schema}.events e WHERE (e.tx_id, e.position) > (c.tx_id, c.position)
        ORDER BY e.tx_id, e.position LIMIT 1),
       c.failed_at, c.failed_position, c.failed_error,
       CASE WHEN l.expires_at > now() THEN l.holder END, CASE WHEN l.expires_at > now() THEN l.expires_at END
FROM {schema}.projection_checkpoints c
LEFT JOIN {schema}.projection_leases l ON l.name = c.name
WHERE c.name = ANY(%(names)s::text[])
ORDER BY c.name

-- name: database_now
-- The database clock, for ages computed against timestamps the database wrote (lag, blocker age).
SELECT now()

-- name: projection_horizon
-- Committed events the cursor may not read yet because an older transaction is still open, and the
-- oldest open transaction that holds an xid (the one keeping the horizon back).
SELECT pg_snapshot_xmin(pg_current_snapshot())::text,
       (SELECT count(*) FROM {schema}.events WHERE tx_id >= pg_snapshot_xmin(pg_current_snapshot())),
       a.pid, a.application_name, a.xact_start, a.state
FROM (SELECT 1) AS one
LEFT JOIN LATERAL (
    SELECT pid, application_name, xact_start, state FROM pg_stat_activity
    WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid()
    ORDER BY xact_start NULLS LAST LIMIT 1
) AS a ON true

-- name: projection_caught_up
-- Whether the event at `position` is at or behind the checkpoint (no row: no committed event there).
SELECT coalesce((e.tx_id, e.position) <= (c.tx_id, c.position), false)
FROM {schema}.events e
LEFT JOIN {schema}.projection_checkpoints c ON c.name = %(name)s
WHERE e.position = %(position)s

-- ---------------------------------------------------------------------------------------------------
-- Operations: metrics collectors, health checks and the web view (design/operations.md). Read-only,
-- off the hot path; none of them takes a lock.

-- name: ops_instance_counts
-- Instances per workflow type and status, for the overview page (an index-only scan of instances_by_status).
SELECT workflow_type, status, count(*)
FROM {schema}.instances
GROUP BY workflow_type, status
ORDER BY workflow_type, status

-- name: ops_instances
-- Instances with what is pending on them, optionally only the stuck ones: `dead` (an effect is dead),
-- `overdue` (a timer is past due by more than the slack), `waiting` (running with nothing pending: it
-- waits for an input from outside), `any` (one of those). The stuck filter scans every instance's
-- outbox and timer rows through their instance indexes: fine for an operator's page, not for a loop.
SELECT i.workflow_type, i.workflow_id, i.status, i.last_seq, i.created_at, i.updated_at,
       o.pending, o.dead, t.timers, t.overdue
FROM {schema}.instances i
CROSS JOIN LATERAL (
    SELECT count(*) FILTER (WHERE status = 'pending') AS pending, count(*) FILTER (WHERE status = 'dead') AS dead
    FROM {schema}.outbox
    WHERE workflow_type = i.workflow_type AND workflow_id = i.workflow_id AND status IN ('pending', 'dead')
) o
CROSS JOIN LATERAL (
    SELECT count(*) AS timers, count(*) FILTER (WHERE due_at <= %(overdue_before)s) AS overdue
    FROM {schema}.timers
    WHERE workflow_type = i.workflow_type AND workflow_id = i.workflow_id
) t
WHERE (%(workflow_type)s::text IS NULL OR i.workflow_type = %(workflow_type)s)
  AND (%(status)s::text IS NULL OR i.status = %(status)s)
  AND (%(after_id)s::text IS NULL OR (i.workflow_type, i.workflow_id) > (%(after_type)s::text, %(after_id)s::text))
  AND CASE %(stuck)s::text
        WHEN 'dead' THEN o.dead > 0
        WHEN 'overdue' THEN t.overdue > 0
        WHEN 'waiting' THEN i.status = 'running' AND o.pending = 0 AND o.dead = 0 AND t.timers = 0
        WHEN 'any' THEN o.dead > 0 OR t.overdue > 0 OR (i.status = 'running' AND o.pending = 0 AND t.timers = 0)
        ELSE true
      END
ORDER BY i.workflow_type, i.workflow_id
LIMIT %(limit)s

-- name: instances_with_events
-- For `events upgrade`: a scan of the type's events (no index on event_type; an operator's command).
SELECT DISTINCT workflow_id
FROM {schema}.events
WHERE workflow_type = %(workflow_type)s AND event_type = ANY(%(type_names)s::text[])
  AND (%(after)s::text IS NULL OR workflow_id > %(after)s::text)
ORDER BY workflow_id
LIMIT %(limit)s

-- name: events_named
SELECT seq, event_type, payload
FROM {schema}.events
WHERE workflow_type = %(workflow_type)s AND workflow_id = %(workflow_id)s
  AND event_type = ANY(%(type_names)s::text[])
ORDER BY seq
LIMIT %(limit)s

-- name: rewrite_events
-- Run under the instance's lock (`events upgrade`), so no decision folds the rows half rewritten. Only
-- the name and payload change: position and tx_id stay, so no projection cursor moves.
UPDATE {schema}.events AS e
SET event_type = u.event_type, payload = u.payload::jsonb
FROM unnest(%(seqs)s::bigint[], %(types)s::text[], %(payloads)s::text[]) AS u(seq, event_type, payload)
WHERE e.workflow_type = %(workflow_type)s AND e.workflow_id = %(workflow_id)s AND e.seq = u.seq

-- name: drop_snapshot
-- Under the instance's lock, and only the snapshot that was verified: a newer one is left alone. The
-- instance's snapshot generation counts the drop (migration 020), so a warm cache looks again.
WITH dropped AS (
    DELETE FROM {schema}.snapshots
    WHERE workflow_type = %(workflow_type)s AND workflow_id = %(workflow_id)s AND seq = %(seq)s
    RETURNING workflow_type, workflow_id
), counted AS (
    UPDATE {schema}.instances i SET snapshot_gen = i.snapshot_gen + 1
    FROM dropped d WHERE i.workflow_type = d.workflow_type AND i.workflow_id = d.workflow_id
)
SELECT count(*) FROM dropped

-- ---------------------------------------------------------------------------------------------------
-- Retention (design/retention.md). One batch is one transaction: prune_lock first, then the steps below in
-- dependency order (what refers to an instance before the instance row). A pruner killed mid-batch
-- leaves nothing half-done: its transaction rolls back.

-- name: prune_lock
-- One pruner at a time per schema. Transaction-scoped: released at commit or rollback, and held by the
-- transaction, not the session, so it is right behind a transaction-pooling PgBouncer. Not waited for:
-- a second pruner reports `busy` and tries again at its next interval.
SELECT pg_try_advisory_xact_lock(hashtextextended('ironflow_py.prune' || chr(31) || %(schema)s, 7330))

-- name: prune_done_effects
-- Finished effects in close order through the outbox_finished partial index. SKIP LOCKED: a row a worker
-- is settling right now is left for the next batch.
WITH doomed AS (
    SELECT id FROM {schema}.outbox
    WHERE status IN ('done', 'cancelled') AND completed_at < coalesce(%(now)s::timestamptz, now()) - %(keep)s::interval
    ORDER BY completed_at, id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
DELETE FROM {schema}.outbox o USING doomed WHERE o.id = doomed.id

-- name: prune_dead_effects
WITH doomed AS (
    SELECT id FROM {schema}.outbox
    WHERE status = 'dead' AND completed_at < coalesce(%(now)s::timestamptz, now()) - %(keep)s::interval
    ORDER BY completed_at, id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
DELETE FROM {schema}.outbox o USING doomed WHERE o.id = doomed.id

-- name: prune_pick_instances
-- Closed instances due for pruning, oldest close first (instances_prunable), that
--   * have no pending effect: an effect written by the closing decision still runs, and its handler's
--     result still lands (as already_completed);
--   * in delete mode, have no dead effect that its own retention still keeps (the operator's dead letter
--     would otherwise outlive its instance, and a reused id would meet it);
--   * are behind every projection's checkpoint: the instance's last event (the highest tx_id and position
--     of its events, since its decisions are serialized by the instance lock) is at or before the slowest
--     cursor; `held` is true when a projection the caller names has no checkpoint row yet.
-- FOR UPDATE OF i: the rows stay ours until commit. The instance lock (the deciding transaction's own
-- advisory lock) is tried after the LIMIT, on the chosen rows only, so a batch holds at most `limit` of
-- them; an instance whose lock is held right now (a decision answering `already_completed`) waits for the
-- next batch.
WITH candidates AS MATERIALIZED (
    SELECT i.workflow_type, i.workflow_id, i.closed_at
    FROM {schema}.instances i
    WHERE i.closed_at IS NOT NULL AND i.pruned_at IS NULL
      AND i.closed_at < coalesce(%(now)s::timestamptz, now()) - %(keep)s::interval
      AND NOT %(held)s
      AND NOT EXISTS (SELECT 1 FROM {schema}.outbox o
                      WHERE o.workflow_type = i.workflow_type AND o.workflow_id = i.workflow_id
                        AND (o.status = 'pending'
                             OR (%(delete)s AND o.status = 'dead'
                                 AND NOT coalesce(o.completed_at < coalesce(%(now)s::timestamptz, now())
                                                                   - %(dead_keep)s::interval, false))))
      AND NOT EXISTS (SELECT 1 FROM {schema}.events e
                      JOIN {schema}.projection_checkpoints c ON (e.tx_id, e.position) > (c.tx_id, c.position)
                      WHERE e.workflow_type = i.workflow_type AND e.workflow_id = i.workflow_id
                        AND e.seq = i.last_seq)
    ORDER BY i.closed_at
    LIMIT %(limit)s
    FOR UPDATE OF i SKIP LOCKED
)
SELECT workflow_type, workflow_id FROM candidates
WHERE pg_try_advisory_xact_lock({schema}.instance_lock_key(workflow_type, workflow_id))
ORDER BY closed_at

-- name: prune_pick_runs
-- Open instances continued as new (design/versioning.md) with events of earlier runs to prune: for each,
-- the newest run marker (ironflow.run_continued/1) written before the retention cutoff and before the
-- current run; every event before that marker goes (the marker stays, so the history still begins at a run
-- boundary). Decisions never read those events (lock_and_load starts at run_start). Only behind every
-- projection's checkpoint: the marker's (tx_id, position) is at or before the slowest cursor, and within
-- one instance both rise with seq, so every earlier event is too. The same locks as prune_pick_instances:
-- the instance row, then its advisory lock tried on the chosen rows only.
WITH candidates AS MATERIALIZED (
    SELECT i.workflow_type, i.workflow_id, m.seq AS upto, m.recorded_at
    FROM {schema}.instances i
    CROSS JOIN LATERAL (
        SELECT e.seq, e.recorded_at, e.tx_id, e.position FROM {schema}.events e
        WHERE e.workflow_type = i.workflow_type AND e.workflow_id = i.workflow_id
          AND e.seq < i.run_start AND e.event_type = 'ironflow.run_continued/1'
          AND e.recorded_at < coalesce(%(now)s::timestamptz, now()) - %(keep)s::interval
        ORDER BY e.seq DESC LIMIT 1
    ) m
    WHERE i.run_start > 1 AND i.pruned_at IS NULL AND NOT %(held)s
      AND EXISTS (SELECT 1 FROM {schema}.events f
                  WHERE f.workflow_type = i.workflow_type AND f.workflow_id = i.workflow_id AND f.seq < m.seq)
      AND NOT EXISTS (SELECT 1 FROM {schema}.projection_checkpoints c
                      WHERE (m.tx_id, m.position) > (c.tx_id, c.position))
    ORDER BY m.recorded_at
    LIMIT %(limit)s
    FOR UPDATE OF i SKIP LOCKED
)
SELECT workflow_type, workflow_id, upto FROM candidates
WHERE pg_try_advisory_xact_lock({schema}.instance_lock_key(workflow_type, workflow_id))
ORDER BY recorded_at

-- name: prune_archive_run_events
INSERT INTO {schema}.events_archive
    (position, tx_id, workflow_type, workflow_id, seq, event_type, payload, recorded_at, archived_at, bucket)
SELECT e.position, e.tx_id, e.workflow_type, e.workflow_id, e.seq, e.event_type, e.payload, e.recorded_at,
       coalesce(%(now)s::timestamptz, now()), e.bucket
FROM unnest(%(types)s::text[], %(ids)s::text[], %(upto)s::bigint[]) AS d(t, i, u)
JOIN {schema}.events e ON e.workflow_type = d.t AND e.workflow_id = d.i AND e.seq < d.u

-- name: prune_run_events
DELETE FROM {schema}.events e
USING unnest(%(types)s::text[], %(ids)s::text[], %(upto)s::bigint[]) AS d(t, i, u)
WHERE e.workflow_type = d.t AND e.workflow_id = d.i AND e.seq < d.u

-- name: prune_archive_events
INSERT INTO {schema}.events_archive
    (position, tx_id, workflow_type, workflow_id, seq, event_type, payload, recorded_at, archived_at, bucket)
SELECT e.position, e.tx_id, e.workflow_type, e.workflow_id, e.seq, e.event_type, e.payload, e.recorded_at,
       coalesce(%(now)s::timestamptz, now()), e.bucket
FROM unnest(%(types)s::text[], %(ids)s::text[]) AS d(t, i)
JOIN {schema}.events e ON e.workflow_type = d.t AND e.workflow_id = d.i

-- name: prune_archive_keys
INSERT INTO {schema}.input_keys_archive
    (workflow_type, workflow_id, input_key, status, recorded_at, archived_at, bucket)
SELECT k.workflow_type, k.workflow_id, k.input_key, k.status, k.recorded_at, coalesce(%(now)s::timestamptz, now()),
       k.bucket
FROM unnest(%(types)s::text[], %(ids)s::text[]) AS d(t, i)
JOIN {schema}.input_keys k ON k.workflow_type = d.t AND k.workflow_id = d.i

-- name: prune_instance_timers
DELETE FROM {schema}.timers x USING unnest(%(types)s::text[], %(ids)s::text[]) AS d(t, i)
WHERE x.workflow_type = d.t AND x.workflow_id = d.i

-- name: prune_instance_keys
DELETE FROM {schema}.input_keys x USING unnest(%(types)s::text[], %(ids)s::text[]) AS d(t, i)
WHERE x.workflow_type = d.t AND x.workflow_id = d.i

-- name: prune_instance_snapshots
DELETE FROM {schema}.snapshots x USING unnest(%(types)s::text[], %(ids)s::text[]) AS d(t, i)
WHERE x.workflow_type = d.t AND x.workflow_id = d.i

-- name: prune_instance_events
DELETE FROM {schema}.events x USING unnest(%(types)s::text[], %(ids)s::text[]) AS d(t, i)
WHERE x.workflow_type = d.t AND x.workflow_id = d.i

-- name: prune_instance_effects
-- The instance's finished effects (no pending one is left: prune_pick_instances checked). A dead row only
-- once its own retention has passed (dead_keep NULL: never); otherwise it stays with the tombstone for the
-- operator (and delete mode skipped the instance).
DELETE FROM {schema}.outbox x USING unnest(%(types)s::text[], %(ids)s::text[]) AS d(t, i)
WHERE x.workflow_type = d.t AND x.workflow_id = d.i
  AND (x.status <> 'dead'
       OR coalesce(x.completed_at < coalesce(%(now)s::timestamptz, now()) - %(dead_keep)s::interval, false))
RETURNING x.status = 'dead'

-- name: prune_tombstone_instances
-- The row and its outcome stay (status, last_seq, closed_at), marked pruned: a later input reads it when
-- it finds no event, and answers already_completed.
UPDATE {schema}.instances x SET pruned_at = coalesce(%(now)s::timestamptz, now())
FROM unnest(%(types)s::text[], %(ids)s::text[]) AS d(t, i)
WHERE x.workflow_type = d.t AND x.workflow_id = d.i

-- name: prune_delete_instances
DELETE FROM {schema}.instances x USING unnest(%(types)s::text[], %(ids)s::text[]) AS d(t, i)
WHERE x.workflow_type = d.t AND x.workflow_id = d.i

-- name: prune_projection_names
SELECT name FROM {schema}.projection_checkpoints WHERE name = ANY(%(names)s::text[])

-- name: load_tombstone
-- Asked only when an instance has no event and no snapshot (new, or pruned): a pruned instance's row stays.
SELECT last_seq, outcome FROM {schema}.instances
WHERE workflow_type = %(workflow_type)s AND workflow_id = %(workflow_id)s AND pruned_at IS NOT NULL

-- name: local_idle_timeout
-- The server ends this session if it sits idle inside the current transaction for %(ms)s milliseconds: a
-- worker frozen inside its feedback transaction (a stalled network) cannot hold the instance lock, the
-- claimed row and the cluster's transaction horizon past its deadline. Local (set_config's third argument):
-- it ends with the transaction, so it is right behind a transaction-mode pooler too.
SELECT set_config('idle_in_transaction_session_timeout', %(ms)s, true)
