"""A SQL read model over the Counter workflow, used by projection tests in-process and via the CLI, and the
helpers those tests share to drive a worker and look at what it wrote."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import psycopg
from psycopg import sql

from ironflow_py import App, PostgresStore, Projection, ProjectionWorker, RecordedEvent
from tests.workflows import Added, Counter

NAME = "counter_totals"
Conn = psycopg.Connection[tuple[Any, ...]]


def create_read_model(conn: psycopg.Connection[Any], schema: str) -> None:
    """`totals`: one row per counter; `applied`: one row per handled event, in the order handled, with the
    `application_name` of the worker that handled it (`ironflow_py.projections <worker_id>`)."""
    s = sql.Identifier(schema)
    conn.execute(
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {}.rm_totals (workflow_id text PRIMARY KEY, total bigint NOT NULL, "
            "adds bigint NOT NULL, last_seq bigint NOT NULL)"
        ).format(s)
    )
    conn.execute(
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {}.rm_applied (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
            "workflow_id text NOT NULL, seq bigint NOT NULL, position bigint NOT NULL, "
            "applied_by text NOT NULL DEFAULT current_setting('application_name'))"
        ).format(s)
    )


def counter_projection(schema: str, *, fail_on: Callable[[RecordedEvent[Any]], bool] | None = None) -> Projection:
    """Upserts the running total per counter and logs every event; `fail_on` makes the handler raise."""
    s = sql.Identifier(schema)
    upsert = sql.SQL(
        "INSERT INTO {}.rm_totals AS t (workflow_id, total, adds, last_seq) VALUES (%s, %s, 1, %s) "
        "ON CONFLICT (workflow_id) DO UPDATE SET total = t.total + EXCLUDED.total, adds = t.adds + 1, "
        "last_seq = EXCLUDED.last_seq"
    ).format(s)
    log = sql.SQL("INSERT INTO {}.rm_applied (workflow_id, seq, position) VALUES (%s, %s, %s)").format(s)

    def handle(event: RecordedEvent[Any], conn: psycopg.Connection[Any]) -> None:
        conn.execute(log, (event.workflow_id, event.seq, event.position))
        if isinstance(event.event, Added):
            conn.execute(upsert, (event.workflow_id, event.event.amount, event.seq))
        if fail_on is not None and fail_on(event):
            raise RuntimeError(f"handler refuses {event.workflow_id}#{event.seq}")

    def reset(conn: psycopg.Connection[Any]) -> None:
        create_read_model(conn, schema)
        conn.execute(sql.SQL("TRUNCATE {}.rm_totals, {}.rm_applied").format(s, s))

    return Projection(NAME, handle, workflow_types=["counter"], reset=reset)


def counter_batch_projection(
    schema: str,
    *,
    fail_on: Callable[[RecordedEvent[Any]], bool] | None = None,
    calls: list[int] | None = None,
) -> Projection:
    """The same read model as `counter_projection`, written with one statement per table per batch.

    `calls` receives the size of every batch handed over; `fail_on` makes the batch raise if any event in it
    matches (the handler cannot say which: the worker has to find out).
    """
    s = sql.Identifier(schema)
    # One row per counter per batch: ON CONFLICT DO UPDATE may not touch one row twice in a statement.
    upsert = sql.SQL(
        "INSERT INTO {}.rm_totals AS t (workflow_id, total, adds, last_seq) "
        "SELECT w, sum(a), count(*), max(q) FROM unnest(%s::text[], %s::bigint[], %s::bigint[]) AS u(w, a, q) "
        "GROUP BY w "
        "ON CONFLICT (workflow_id) DO UPDATE SET total = t.total + EXCLUDED.total, adds = t.adds + EXCLUDED.adds, "
        "last_seq = EXCLUDED.last_seq"
    ).format(s)
    log = sql.SQL(
        "INSERT INTO {}.rm_applied (workflow_id, seq, position) "
        "SELECT w, q, p FROM unnest(%s::text[], %s::bigint[], %s::bigint[]) WITH ORDINALITY AS u(w, q, p, n) "
        "ORDER BY n"
    ).format(s)

    def handle_batch(conn: psycopg.Connection[Any], events: Sequence[RecordedEvent[Any]]) -> None:
        if calls is not None:
            calls.append(len(events))
        ids = [e.workflow_id for e in events]
        conn.execute(log, (ids, [e.seq for e in events], [e.position for e in events]))
        added = [e for e in events if isinstance(e.event, Added)]
        if added:
            conn.execute(
                upsert, ([e.workflow_id for e in added], [e.event.amount for e in added], [e.seq for e in added])
            )
        bad = [e for e in events if fail_on is not None and fail_on(e)]
        if bad:
            raise RuntimeError(f"handler refuses {bad[0].workflow_id}#{bad[0].seq}")

    def reset(conn: psycopg.Connection[Any]) -> None:
        create_read_model(conn, schema)
        conn.execute(sql.SQL("TRUNCATE {}.rm_totals, {}.rm_applied").format(s, s))

    return Projection(NAME, handle_batch=handle_batch, workflow_types=["counter"], reset=reset)


def counters() -> App:
    """The app the CLI loads (`tests.projection_apps:counters`); the schema comes from IRONFLOW_SCHEMA."""
    return App(workflows=[Counter], projections=[counter_projection(os.environ["IRONFLOW_SCHEMA"])])


#: How long a test waits for other sessions to let the transaction horizon pass its events. The horizon is
#: cluster-wide: on a shared server another run's open transaction (a blocker test, a stalled session, an
#: autoanalyze) holds it. That is the environment, not the code under test, so the wait is generous and a
#: failure names the holders; what the test asserts about the worker is bounded separately, from the moment
#: the horizon has passed.
HORIZON_WAIT = 300.0

_PAST_HORIZON = "SELECT tx_id < pg_snapshot_xmin(pg_current_snapshot()) FROM {}.events WHERE position = %s"
_ALL_PAST_HORIZON = "SELECT NOT EXISTS (SELECT 1 FROM {}.events WHERE tx_id >= pg_snapshot_xmin(pg_current_snapshot()))"
_HOLDERS = """
SELECT pid, datname, application_name, state, round(extract(epoch FROM now() - xact_start)), left(query, 60)
FROM pg_stat_activity
WHERE pid <> pg_backend_pid() AND (backend_xid IS NOT NULL OR backend_xmin IS NOT NULL)
ORDER BY xact_start
LIMIT 5
"""


def _wait_horizon(conn: Conn, query: sql.Composed, params: tuple[Any, ...], what: str) -> None:
    deadline = time.monotonic() + HORIZON_WAIT
    while (row := conn.execute(query, params).fetchone()) is None or not row[0]:
        if time.monotonic() >= deadline:
            holders = conn.execute(_HOLDERS).fetchall()
            raise AssertionError(f"the transaction horizon did not pass {what} in {HORIZON_WAIT}s; held by {holders}")
        time.sleep(0.01)  # polling a condition other sessions control, not ordering events


def wait_past_horizon(store: PostgresStore, position: int) -> None:
    """Wait until the event at `position` is behind the cluster-wide transaction horizon (every transaction
    older than it has ended), so a worker's next read can see it."""
    with store.connection() as conn:
        query = sql.SQL(_PAST_HORIZON).format(sql.Identifier(store.schema))
        _wait_horizon(conn, query, (position,), f"position {position}")


def caught_up(worker: ProjectionWorker, position: int, timeout: float = 30.0) -> bool:
    """Whether the running `worker` applies the event at `position` within `timeout` seconds of the horizon
    passing it (waited for first, see HORIZON_WAIT)."""
    wait_past_horizon(worker.store, position)
    return worker.wait_until_caught_up(NAME, position, timeout)


def drain(worker: ProjectionWorker, position: int, timeout: float = 30.0) -> None:
    """Run rounds until the event at `position` is applied: first wait for the horizon to pass it (another
    session's open transaction can delay an event, never drop it), then give the worker `timeout` seconds."""
    wait_past_horizon(worker.store, position)
    deadline = time.monotonic() + timeout
    while not worker.control.caught_up(NAME, position):
        assert time.monotonic() < deadline, f"position {position} not applied within {timeout}s of the horizon"
        if worker.run_until_idle() == 0:
            worker.wait_until_caught_up(NAME, position, 0.05)


def wait_for_horizon(admin: psycopg.Connection[Any], schema: str) -> None:
    """Wait until every committed event of `schema` is behind the xmin horizon, so the next batch can read
    all of them (see HORIZON_WAIT)."""
    _wait_horizon(admin, sql.SQL(_ALL_PAST_HORIZON).format(sql.Identifier(schema)), (), f"the events of {schema}")


def run_until_raises(worker: ProjectionWorker, timeout: float = 30.0) -> None:
    """Run rounds until one raises (the test expects it to), within `timeout` seconds of the horizon passing
    every event of the worker's schema (the one that should make it raise among them)."""
    with worker.store.connection() as conn:
        wait_for_horizon(conn, worker.store.schema)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if worker.run_until_idle() == 0:
            time.sleep(0.01)  # a retry's backoff, not ordering anything
    raise AssertionError(f"nothing raised within {timeout}s")


def applied(admin: Conn, schema: str) -> list[tuple[str, int, int]]:
    query = sql.SQL("SELECT workflow_id, seq, position FROM {}.rm_applied ORDER BY id")
    return [tuple(r) for r in admin.execute(query.format(sql.Identifier(schema))).fetchall()]


def totals(admin: Conn, schema: str) -> dict[str, tuple[int, int, int]]:
    query = sql.SQL("SELECT workflow_id, total, adds, last_seq FROM {}.rm_totals")
    return {r[0]: (r[1], r[2], r[3]) for r in admin.execute(query.format(sql.Identifier(schema)))}


def checkpoint(admin: Conn, schema: str) -> int:
    query = sql.SQL("SELECT position FROM {}.projection_checkpoints WHERE name = %s")
    row = admin.execute(query.format(sql.Identifier(schema)), (NAME,)).fetchone()
    return 0 if row is None else int(row[0])


def append(conn: Conn, schema: str, workflow_id: str, seq: int, amount: int = 1) -> int:
    """What the Decider writes for one Added event: instance lock first, then the row."""
    lock = sql.SQL("SELECT pg_advisory_xact_lock({}.instance_lock_key('counter', %s))").format(sql.Identifier(schema))
    conn.execute(lock, (workflow_id,))
    row = conn.execute(
        sql.SQL(
            "INSERT INTO {0}.events (workflow_type, workflow_id, seq, event_type, payload, recorded_at, bucket) "
            "VALUES ('counter', %s, %s, 'counter.added/1', %s::jsonb, now(), {0}.instance_bucket('counter', %s)) "
            "RETURNING position"
        ).format(sql.Identifier(schema)),
        (workflow_id, seq, f'{{"amount": {amount}, "total": {amount * seq}}}', workflow_id),
    ).fetchone()
    assert row is not None
    return int(row[0])


def lease(admin: Conn, schema: str, name: str = NAME) -> tuple[str, int, bool] | None:
    """The lease row of projection `name`: (holder, fence, live by the database clock), or None."""
    query = sql.SQL("SELECT holder, fence, expires_at > now() FROM {}.projection_leases WHERE name = %s")
    row = admin.execute(query.format(sql.Identifier(schema)), (name,)).fetchone()
    return None if row is None else (str(row[0]), int(row[1]), bool(row[2]))
