"""Projection leadership is a lease row with a fencing generation (issue #11 items 3 and 4).

- A leader whose lease was taken over handles nothing afterwards: its next batch sees the newer fence and
  steps down (in process, the lease ended by the database clock while the leader did not renew).
- A take-over while the leader's handler runs: the leader's fenced checkpoint save moves nothing, its batch
  rolls back, and the new leader applies those events once.
- Real processes: a leader frozen with SIGSTOP is replaced by the standby within its lease; after SIGCONT
  its renewal is fenced out, it logs `projection_lead_lost` and applies nothing; the read model equals the
  fold of the events, each event applied once.
- Behind a real PgBouncer in transaction pooling mode: two workers, exactly one leads, no false
  ProjectionGap, each warns once that LISTEN is unavailable; when both die the lease ends by itself and a
  third worker takes over, with no lock left on any pooled server connection.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import psycopg
import pytest
from psycopg import sql

from ironflow_py import PostgresStore, ProjectionControl, ProjectionWorker, RecordedEvent, WorkflowService
from ironflow_py.store.postgres_projections import PostgresProjections
from tests.projection_apps import NAME, counter_projection, create_read_model, drain, lease
from tests.reliability import pgbouncer
from tests.workflows import Add, Counter

Conn = psycopg.Connection[tuple[Any, ...]]
ROOT = Path(__file__).resolve().parents[2]
LEASE = 2.0


@pytest.fixture
def service(pg_store: PostgresStore, admin: Conn) -> WorkflowService:
    create_read_model(admin, pg_store.schema)
    return WorkflowService(pg_store, workflows=[Counter])


def last_position(admin: Conn, schema: str) -> int:
    row = admin.execute(sql.SQL("SELECT max(position) FROM {}.events").format(sql.Identifier(schema))).fetchone()
    assert row is not None and row[0] is not None
    return int(row[0])


def applied_rows(admin: Conn, schema: str) -> list[tuple[str, int, int, str]]:
    query = sql.SQL("SELECT workflow_id, seq, position, applied_by FROM {}.rm_applied ORDER BY id")
    rows = admin.execute(query.format(sql.Identifier(schema))).fetchall()
    return [(str(r[0]), int(r[1]), int(r[2]), str(r[3])) for r in rows]


def check_fold(admin: Conn, schema: str) -> None:
    """The read model equals the fold of the events table: every event applied once, in sequence order."""
    s = sql.Identifier(schema)
    events = admin.execute(
        sql.SQL("SELECT workflow_id, seq, payload FROM {}.events ORDER BY workflow_id, seq").format(s)
    ).fetchall()
    expected_seqs: dict[str, list[int]] = defaultdict(list)
    expected_totals: dict[str, int] = defaultdict(int)
    for wid, seq, payload in events:
        expected_seqs[wid].append(seq)
        expected_totals[wid] += payload["amount"]
    applied_seqs: dict[str, list[int]] = defaultdict(list)
    for wid, seq, _, _ in applied_rows(admin, schema):
        applied_seqs[wid].append(seq)
    assert applied_seqs == expected_seqs  # in order, none missing, none twice
    totals: dict[str, int] = dict(
        admin.execute(sql.SQL("SELECT workflow_id, total FROM {}.rm_totals").format(s)).fetchall()
    )
    assert totals == dict(expected_totals)


def expire(admin: Conn, schema: str) -> None:
    """End the lease now by the database clock: what a leader that stopped renewing comes to."""
    query = sql.SQL("UPDATE {}.projection_leases SET expires_at = now() WHERE name = %s")
    admin.execute(query.format(sql.Identifier(schema)), (NAME,))


def lead_lost(caplog: pytest.LogCaptureFixture, worker_id: str) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if getattr(r, "event", None) == "projection_lead_lost" and r.__dict__["context"].get("worker_id") == worker_id
    ]


# -- in process ---------------------------------------------------------------------------------------------


def test_a_leader_whose_lease_was_taken_over_handles_nothing_and_steps_down(
    service: WorkflowService, admin: Conn, caplog: pytest.LogCaptureFixture
) -> None:
    schema = service.store.schema  # type: ignore[attr-defined]
    caplog.set_level(logging.WARNING, logger="ironflow_py")
    first = ProjectionWorker(service, [counter_projection(schema)], worker_id="first", lease=30)
    second = ProjectionWorker(service, [counter_projection(schema)], worker_id="second", lease=30)
    try:
        assert first.prepare() == {NAME}
        assert second.prepare() == frozenset()  # a live lease: standby
        service.execute(Add("c1", 5))
        drain(first, last_position(admin, schema))
        fence = lease(admin, schema)
        assert fence is not None and fence[0].startswith("first ") and fence[2]

        expire(admin, schema)  # `first` did not renew in time (it was frozen, say)
        assert second.prepare() == {NAME}
        taken = lease(admin, schema)
        assert taken is not None and taken[0].startswith("second ") and taken[1] == fence[1] + 1

        service.execute(Add("c1", 7))
        drain(second, last_position(admin, schema))  # the new leader moves c1 past what `first` remembers
        service.execute(Add("c1", 9))
        service.execute(Add("c2", 1))
        # `first` still thinks it leads (its renewal is not due): its batch sees the newer fence and steps
        # down before handling anything (acting on its stale cache would be a false ProjectionGap).
        assert first.leading == {NAME}
        assert first.run_once() == 0
        assert first.leading == frozenset()
        assert len(lead_lost(caplog, "first")) == 1

        drain(second, last_position(admin, schema))
        check_fold(admin, schema)
        by = [row[3] for row in applied_rows(admin, schema)]
        assert by == ["ironflow_py.projections first"] + ["ironflow_py.projections second"] * 3
        assert first.run_once() == 0 and first.leading == frozenset()  # a standby now
    finally:
        first.close()
        second.close()


def test_a_take_over_during_a_batch_fences_out_its_checkpoint_save(
    service: WorkflowService, admin: Conn, caplog: pytest.LogCaptureFixture
) -> None:
    """The leader's handler is inside a batch when its lease is taken over: its save moves nothing, the
    batch rolls back, and the new leader applies those events once."""
    schema = service.store.schema  # type: ignore[attr-defined]
    caplog.set_level(logging.WARNING, logger="ironflow_py")
    base = counter_projection(schema)
    inside, release = threading.Event(), threading.Event()

    def blocking(event: RecordedEvent[Any], conn: psycopg.Connection[Any]) -> None:
        assert base.handler is not None
        base.handler(event, conn)
        if event.workflow_id == "block" and not release.is_set():
            inside.set()
            release.wait(30)

    first = ProjectionWorker(service, [attrs.evolve(base, handler=blocking)], worker_id="first", lease=30)
    second = ProjectionWorker(service, [counter_projection(schema)], worker_id="second", lease=30)
    handled: list[int] = []
    try:
        assert first.prepare() == {NAME}
        service.execute(Add("a", 1))
        service.execute(Add("block", 2))
        runner = threading.Thread(target=lambda: handled.append(first.run_until_idle()))
        runner.start()
        assert inside.wait(30), "the first worker never reached the blocking event"
        expire(admin, schema)
        assert second.prepare() == {NAME}  # taken over while `first` is inside its batch (the overlap)
        release.set()
        runner.join(30)
        assert not runner.is_alive()
        assert handled == [0]  # the batch rolled back
        assert first.leading == frozenset()
        assert len(lead_lost(caplog, "first")) == 1

        drain(second, last_position(admin, schema))
        check_fold(admin, schema)
        assert {row[3] for row in applied_rows(admin, schema)} == {"ironflow_py.projections second"}
    finally:
        release.set()
        first.close()
        second.close()


def test_a_stopping_leader_ends_its_lease_so_a_standby_takes_over_at_once(
    service: WorkflowService, admin: Conn
) -> None:
    schema = service.store.schema  # type: ignore[attr-defined]
    first = ProjectionWorker(service, [counter_projection(schema)], worker_id="first", lease=60)
    second = ProjectionWorker(service, [counter_projection(schema)], worker_id="second", lease=60)
    try:
        assert first.prepare() == {NAME}
        assert second.prepare() == frozenset()
        first.close()
        row = lease(admin, schema)
        assert row is not None and not row[2]  # ended now, not in 60 s
        assert second.prepare() == {NAME}
    finally:
        first.close()
        second.close()


def test_a_renewal_with_a_stale_fence_is_refused(service: WorkflowService, admin: Conn) -> None:
    """The old leader's renewal after a take-over moves nothing: the new leader's lease end stays its own."""
    schema = service.store.schema  # type: ignore[attr-defined]
    first = ProjectionWorker(service, [counter_projection(schema)], worker_id="first", lease=30)
    second = ProjectionWorker(service, [counter_projection(schema)], worker_id="second", lease=5)
    statements = PostgresProjections(service.store)  # type: ignore[arg-type]
    try:
        assert first.prepare() == {NAME}
        old = lease(admin, schema)
        assert old is not None
        expire(admin, schema)
        assert second.prepare() == {NAME}
        query = sql.SQL("SELECT expires_at FROM {}.projection_leases WHERE name = %s").format(sql.Identifier(schema))
        before = admin.execute(query, (NAME,)).fetchone()
        with service.store.connection() as conn:  # type: ignore[attr-defined]
            assert statements.renew(conn, NAME, old[1], 300) is False
        assert admin.execute(query, (NAME,)).fetchone() == before
    finally:
        first.close()
        second.close()


def test_a_lease_is_judged_by_the_database_clock(service: WorkflowService, admin: Conn) -> None:
    """The lease end is `now() + lease` on the server: the row says so whatever this host's clock reads."""
    schema = service.store.schema  # type: ignore[attr-defined]
    worker = ProjectionWorker(service, [counter_projection(schema)], worker_id="w", lease=45)
    try:
        worker.prepare()
        query = sql.SQL("SELECT extract(epoch FROM expires_at - now()) FROM {}.projection_leases WHERE name = %s")
        row = admin.execute(query.format(sql.Identifier(schema)), (NAME,)).fetchone()
        assert row is not None and 40 < float(row[0]) <= 45
    finally:
        worker.close()


# -- real processes -----------------------------------------------------------------------------------------


def start_worker(url: str, schema: str, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "IRONFLOW_DATABASE_URL": url, "IRONFLOW_SCHEMA": schema, "PYTHONPATH": str(ROOT)}
    with log.open("ab") as out:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ironflow_py",
                "--app",
                "tests.projection_apps:counters",
                "--log-format",
                "json",
                *extra,
                "projections",
                "run",
                NAME,
                "--poll-interval",
                "0.5",
                "--batch-size",
                "20",
                "--lease",
                str(LEASE),
                "--standby-interval",
                "0.1",
            ],
            env=env,
            stdout=out,
            stderr=out,
        )


def holder_pid(admin: Conn, schema: str) -> int | None:
    """The pid of the process holding the live lease ("host:pid token"), or None."""
    row = lease(admin, schema)
    if row is None or not row[2]:
        return None
    return int(row[0].split(" ")[0].rsplit(":", 1)[1])


def wait_for(condition: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what} within {timeout}s"
        pause.wait(0.02)


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for p in started:
        if p.poll() is None:
            p.send_signal(signal.SIGCONT)
            p.kill()
        p.wait(10)


def caught_up(store: PostgresStore, admin: Conn, timeout: float = 60) -> None:
    assert ProjectionControl(store).wait_until_caught_up(NAME, last_position(admin, store.schema), timeout)


def test_a_leader_frozen_with_sigstop_is_replaced_within_its_lease_and_fenced_out_after_sigcont(
    service: WorkflowService,
    pg_store: PostgresStore,
    pg_url: str,
    admin: Conn,
    tmp_path: Path,
    procs: list[subprocess.Popen[bytes]],
) -> None:
    schema = pg_store.schema
    logs = [tmp_path / "w0.log", tmp_path / "w1.log"]
    procs += [start_worker(pg_url, schema, logs[0]), start_worker(pg_url, schema, logs[1])]
    by_pid = {p.pid: (p, log) for p, log in zip(procs, logs, strict=True)}
    leader_pid = wait_for(lambda: holder_pid(admin, schema), 30, "no worker took the lead")
    leader, leader_log = by_pid[leader_pid]
    standby = next(p for p in procs if p is not leader)
    for i in range(20):
        service.execute(Add(f"c{i % 4}", i + 1))
    caught_up(pg_store, admin)

    # Freeze the leader while it holds no transaction (the usual case: it sleeps between rounds). A leader
    # frozen inside a batch holds the checkpoint row, which the server frees after
    # idle_in_transaction_session_timeout (30 s); that case is the in-process test above.
    app = f"ironflow_py.projections %:{leader_pid}"
    state = "SELECT state FROM pg_stat_activity WHERE application_name LIKE %s AND backend_type = 'client backend'"
    for _ in range(50):
        leader.send_signal(signal.SIGSTOP)
        frozen_at = time.monotonic()
        if admin.execute(state, (app,)).fetchall() == [("idle",)]:
            break
        leader.send_signal(signal.SIGCONT)
    else:
        raise AssertionError("the leader never sat idle")
    for i in range(20, 40):
        service.execute(Add(f"c{i % 4}", i + 1))
    wait_for(lambda: holder_pid(admin, schema) == standby.pid, 3 * LEASE + 5, "the standby did not take over")
    takeover = time.monotonic() - frozen_at
    caught_up(pg_store, admin)
    before_resume = len(applied_rows(admin, schema))

    leader.send_signal(signal.SIGCONT)
    wait_for(lambda: b"projection_lead_lost" in leader_log.read_bytes(), 30, "the old leader did not step down")
    for i in range(40, 60):
        service.execute(Add(f"c{i % 4}", i + 1))
    caught_up(pg_store, admin)

    check_fold(admin, schema)
    rows = applied_rows(admin, schema)
    assert len(rows) == 60 and before_resume == 40
    frozen_name = f":{leader_pid}"
    assert not [r for r in rows[20:] if r[3].endswith(frozen_name)]  # nothing by the frozen leader after it froze
    assert holder_pid(admin, schema) == standby.pid
    assert leader.poll() is None and standby.poll() is None  # both alive: no false ProjectionGap
    for log in logs:
        assert b"ProjectionGap" not in log.read_bytes()
    print(f"takeover after SIGSTOP: {takeover:.2f} s (lease {LEASE} s, standby interval 0.1 s)")
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        assert p.wait(20) == 0


@pytest.mark.skipif(not pgbouncer.available(), reason="needs the pgbouncer binary (Debian package `pgbouncer`)")
def test_two_workers_behind_pgbouncer_one_leads_and_the_lease_ends_when_both_die(
    service: WorkflowService,
    pg_store: PostgresStore,
    pg_url: str,
    admin: Conn,
    tmp_path: Path,
    procs: list[subprocess.Popen[bytes]],
) -> None:
    schema = pg_store.schema
    bouncer = pgbouncer.PgBouncer(pg_url, pool_mode="transaction", pool_size=4)
    try:
        logs = [tmp_path / "w0.log", tmp_path / "w1.log"]
        pooled = ("--prepare-threshold", "none")
        procs += [start_worker(bouncer.url, schema, log, *pooled) for log in logs]
        leader_pid = wait_for(lambda: holder_pid(admin, schema), 30, "no worker took the lead")
        for i in range(60):
            service.execute(Add(f"c{i % 6}", i + 1))
        caught_up(pg_store, admin)
        for i in range(60, 120):
            service.execute(Add(f"c{i % 6}", i + 1))
        caught_up(pg_store, admin)

        check_fold(admin, schema)
        assert {r[3] for r in applied_rows(admin, schema)} == {f"ironflow_py.projections {_host()}:{leader_pid}"}
        assert holder_pid(admin, schema) == leader_pid
        assert all(p.poll() is None for p in procs)  # neither died of a false ProjectionGap
        for log in logs:
            text = log.read_bytes()
            assert b"ProjectionGap" not in text and b"projection_stopped" not in text
            assert text.count(b"listen_unavailable") == 1

        for p in procs:
            p.kill()
            p.wait(10)
        # No session lock survives on a pooled server connection: the lease simply ends.
        assert no_projection_advisory_locks(admin)
        third_log = tmp_path / "w2.log"
        procs.append(start_worker(bouncer.url, schema, third_log, *pooled))
        died = time.monotonic()
        wait_for(lambda: holder_pid(admin, schema) == procs[-1].pid, 2 * LEASE + 30, "the lease never ended")
        print(f"lead free again {time.monotonic() - died:.2f} s after both workers were killed (lease {LEASE} s)")
        service.execute(Add("c0", 1))
        caught_up(pg_store, admin)
        check_fold(admin, schema)
    finally:
        bouncer.close()


def _host() -> str:
    return socket.gethostname()


def no_projection_advisory_locks(admin: Conn) -> bool:
    """Advisory locks may belong to other tests' sessions on a shared server; none is a projection worker's."""
    rows = admin.execute(
        "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE l.locktype = 'advisory'"
    ).fetchall()
    return not [r for r in rows if str(r[0]).startswith("ironflow_py.projections")]
