"""Real `ironflow-py worker` processes on real PostgreSQL: sharing work, being killed, being stopped.

Processes coordinate with the test through files the handlers write and through the database; waits
poll for a condition with a deadline, never sleep for a fixed time to force an order.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from ironflow_py import PostgresStore, WorkflowService
from tests.effect_app import Job, Start, Tally

ROOT = Path(__file__).resolve().parents[2]
Conn = psycopg.Connection[tuple[Any, ...]]
PYTHON_CLI = (sys.executable, "-m", "ironflow_py")


class Workers:
    """Starts worker processes for one schema and makes sure none outlives the test."""

    def __init__(self, pg_url: str, schema: str, folder: Path) -> None:
        self.pg_url, self.schema, self.folder = pg_url, schema, folder
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, *args: str, log_level: str = "warning") -> subprocess.Popen[bytes]:
        env = {
            **os.environ,
            "IRONFLOW_DATABASE_URL": self.pg_url,
            "IRONFLOW_SCHEMA": self.schema,
            "IRONFLOW_TEST_DIR": str(self.folder),
            "PYTHONPATH": str(ROOT),
        }
        with (self.folder / f"worker-{len(self.procs)}.log").open("wb") as log:
            proc = subprocess.Popen(
                [*PYTHON_CLI, "--log-level", log_level, "--app", "tests.effect_app:app", "worker", *args],
                env=env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(30)


@pytest.fixture
def workers(pg_url: str, pg_store: PostgresStore, tmp_path: Path) -> Iterator[Workers]:
    w = Workers(pg_url, pg_store.schema, tmp_path)
    yield w
    w.stop_all()


@pytest.fixture
def service(pg_store: PostgresStore) -> WorkflowService:
    return WorkflowService(pg_store, workflows=[Job, Tally])


def wait_until(predicate: Callable[[], bool], timeout: float = 60.0, what: str = "condition") -> None:
    tick = threading.Event()
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        tick.wait(0.02)


def lines(path: Path) -> list[list[str]]:
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


def listening(admin: Conn, store: PostgresStore) -> int:
    row = admin.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE query = %s",
        (sql.SQL("LISTEN {}").format(sql.Identifier(store.channel)).as_string(admin),),
    ).fetchone()
    assert row is not None
    return int(row[0])


def outbox(admin: Conn, store: PostgresStore) -> list[tuple[Any, ...]]:
    return admin.execute(
        sql.SQL("SELECT id, status, attempts, locked_by FROM {}.outbox ORDER BY id").format(
            sql.Identifier(store.schema)
        )
    ).fetchall()


def statuses(admin: Conn, store: PostgresStore) -> Counter[str]:
    return Counter(r[1] for r in outbox(admin, store))


@pytest.mark.slow
def test_two_worker_processes_drain_2000_effects_each_handled_once(
    workers: Workers, service: WorkflowService, admin: Conn, pg_store: PostgresStore, tmp_path: Path
) -> None:
    procs = [workers.start("--concurrency", "4", "--lease", "120") for _ in range(2)]
    wait_until(lambda: listening(admin, pg_store) == 2, what="both workers listening")
    for j in range(20):
        service.execute(Start(f"bulk-{j}", 100, "record"))
    wait_until(lambda: statuses(admin, pg_store)["done"] == 2000, timeout=180, what="2000 effects done")
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    assert [proc.wait(60) for proc in procs] == [0, 0]
    handled = {path.name: lines(path) for path in tmp_path.glob("handled-*.log")}
    assert len(handled) == 2 and all(handled.values()), "both processes took a share"
    ids = Counter(int(t[1]) for trace in handled.values() for t in trace)
    assert len(ids) == 2000 and set(ids.values()) == {1}, "every effect handled exactly once"
    assert {(r[1], r[2]) for r in outbox(admin, pg_store)} == {("done", 1)}


@pytest.mark.slow
def test_a_worker_killed_mid_handler_loses_nothing_and_the_retry_keeps_the_key(
    workers: Workers, service: WorkflowService, admin: Conn, pg_store: PostgresStore, tmp_path: Path
) -> None:
    service.execute(Start("kill", 1, "block_first"))
    first = workers.start("--lease", "2")
    wait_until(lambda: len(lines(tmp_path / "started.log")) == 1, what="the handler to start")
    first.send_signal(signal.SIGKILL)
    first.wait(30)
    ((_, status, attempts, locked_by),) = outbox(admin, pg_store)
    assert (status, attempts) == ("pending", 1) and locked_by is not None
    workers.start("--lease", "2")
    wait_until(lambda: statuses(admin, pg_store)["done"] == 1, what="the retried effect to finish")
    (one, two) = lines(tmp_path / "started.log")
    assert one[0] != two[0], "a different process ran the retry"
    assert (one[2], two[2]) == ("1", "2")
    assert one[3] == two[3], "the same idempotency key on every attempt"


@pytest.mark.slow
@pytest.mark.parametrize("boundary", ["before_commit", "after_commit"])
def test_returned_input_is_applied_once_when_the_worker_dies_around_its_feedback_commit(
    workers: Workers,
    service: WorkflowService,
    admin: Conn,
    pg_store: PostgresStore,
    tmp_path: Path,
    boundary: str,
) -> None:
    """The handler's returned input and the effect's "done" mark commit in one transaction. Killed while
    that transaction waits (before_commit), the worker leaves the effect to be retried and applied once
    by the next worker; killed once it has committed (after_commit), the effect is already done, so no
    later worker runs it or applies its input again."""
    service.execute(Start("ret", 1, "reply_traced"))
    # Hold the instance lock so the worker's feedback transaction waits right after the handler returns.
    # The transaction may wait half the first worker's lease (its deadline, design/reliability.md "Stalls"):
    # a lease of 6 s leaves it 3 s, far more than the test needs to see it wait and let it go.
    lock = pg_store.q["lock_instance"]
    holder = psycopg.connect(admin.info.dsn)
    try:
        holder.execute(lock, {"workflow_type": "job", "workflow_id": "ret"})
        first = workers.start("--lease", "6")
        wait_until(lambda: len(lines(tmp_path / "returned.log")) == 1, what="the handler to return")
        waiting = "SELECT count(*) FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))"
        wait_until(
            lambda: admin.execute(waiting, (holder.info.backend_pid,)).fetchone() == (1,),
            what="the feedback transaction to wait on the instance lock",
        )
        if boundary == "before_commit":
            first.send_signal(signal.SIGKILL)
            first.wait(30)
            holder.rollback()
        else:
            holder.rollback()  # the feedback transaction takes the lock and commits
            wait_until(lambda: service.state("job", "ret").recorded == (0,), what="the feedback to commit")
            first.send_signal(signal.SIGKILL)
            first.wait(30)
            ((_, status, attempts, _),) = outbox(admin, pg_store)
            assert (status, attempts) == ("done", 1), "the input is visible, so its effect is done in the same commit"
    finally:
        holder.close()  # a failing test must not leave the instance lock held on the server
    workers.start("--lease", "2")
    # A marker effect queued once the first claim's lease has ended: the new worker claims in due order,
    # so by the time the marker is done it has seen the first effect too, had it still been pending.
    lease_over = sql.SQL("SELECT bool_and(available_at < now()) FROM {}.outbox").format(sql.Identifier(pg_store.schema))
    wait_until(lambda: admin.execute(lease_over).fetchone() == (True,), what="the first lease to end")
    service.execute(Start("marker", 1, "reply_traced"))
    wait_until(lambda: statuses(admin, pg_store)["done"] == 2, what="both effects to be done")
    runs = 2 if boundary == "before_commit" else 1
    ran = len(lines(tmp_path / "returned.log"))
    assert ran == runs + 1, f"the handler should run {runs} time(s) for the effect and once for the marker"
    assert service.state("job", "ret").recorded == (0,), "its returned input was applied once"


@pytest.mark.slow
def test_sigterm_finishes_in_flight_handlers_releases_the_rest_and_exits_0(
    workers: Workers, service: WorkflowService, admin: Conn, pg_store: PostgresStore, tmp_path: Path
) -> None:
    service.execute(Start("term", 6, "block"))
    proc = workers.start("--concurrency", "2", "--batch-size", "10", "--grace", "60")
    wait_until(lambda: len(lines(tmp_path / "started.log")) == 2, what="two handlers in flight")
    proc.send_signal(signal.SIGTERM)

    def released() -> int:
        return sum(1 for r in outbox(admin, pg_store) if r[3] is None)

    wait_until(lambda: released() == 4, what="the four queued claims to be released")
    (tmp_path / "go").touch()
    assert proc.wait(60) == 0
    assert len(lines(tmp_path / "started.log")) == 2, "nothing new started after SIGTERM"
    rows = outbox(admin, pg_store)
    assert sorted((r[1], r[2], r[3] is None) for r in rows) == [("done", 1, False)] * 2 + [("pending", 0, True)] * 4


@pytest.mark.slow
def test_a_second_signal_exits_at_once(
    workers: Workers, service: WorkflowService, admin: Conn, pg_store: PostgresStore, tmp_path: Path
) -> None:
    service.execute(Start("twice", 1, "block"))
    proc = workers.start("--grace", "600", log_level="info")
    wait_until(lambda: len(lines(tmp_path / "started.log")) == 1, what="a handler in flight")
    proc.send_signal(signal.SIGTERM)
    wait_until(lambda: "worker_stopping" in (tmp_path / "worker-0.log").read_text(), what="shutdown")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 128 + signal.SIGTERM
    ((_, status, attempts, locked_by),) = outbox(admin, pg_store)
    assert (status, attempts) == ("pending", 1) and locked_by is not None  # its lease will expire
