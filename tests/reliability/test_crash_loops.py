"""Crash loops are counted: an attempt that takes its worker process down is an attempt, so a handler runs
exactly `max_attempts` times under a restarting supervisor, then the row is dead with "worker lost" and
its dead-letter input is delivered (design/reliability.md, class 3). Also class 2's effect half: a
returned input the database would refuse is permanent. Real processes, no sleeps to force an order."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from ironflow_py import PostgresStore, WorkflowService
from tests.effect_app import FAST_FAIL, Start
from tests.reliability.test_worker_processes import Workers, lines, service, wait_until, workers

__all__ = ["service", "workers"]  # fixtures re-used from the worker-process suite

Conn = psycopg.Connection[tuple[Any, ...]]
MAX = FAST_FAIL.max_attempts


def row(admin: Conn, store: PostgresStore) -> tuple[Any, ...]:
    found = admin.execute(
        sql.SQL("SELECT status, attempts, last_error FROM {}.outbox").format(sql.Identifier(store.schema))
    ).fetchall()
    assert len(found) == 1
    return tuple(found[0])


def supervise(workers: Workers, admin: Conn, store: PostgresStore, crash: Any) -> int:
    """Restart a worker each time its process dies, until the row is dead; returns how many started."""
    started = 0
    while row(admin, store)[0] != "dead":
        assert started <= MAX + 1, "the supervisor restarted more often than the policy allows attempts"
        proc = workers.start("--lease", "1", "--poll-interval", "0.2")
        started += 1
        crash(proc, started)
    return started


@pytest.mark.slow
def test_a_handler_that_exits_its_process_runs_exactly_max_attempts_times(
    workers: Workers, service: WorkflowService, admin: Conn, pg_store: PostgresStore, tmp_path: Path
) -> None:
    """The issue's example: os._exit in the handler. Each worker runs one attempt and dies."""
    service.execute(Start("crash", 1, "exit"))

    def crash(proc: subprocess.Popen[bytes], n: int) -> None:
        def settled() -> bool:
            return proc.poll() is not None or row(admin, pg_store)[0] == "dead"

        wait_until(settled, what=f"worker {n} to crash or to dead-letter the row")
        if proc.poll() is None:  # the last one found no attempts left and is idle
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(30) == 0
        else:
            assert proc.returncode == 3

    supervise(workers, admin, pg_store, crash)
    assert len(lines(tmp_path / "started.log")) == MAX, "exactly max_attempts runs"
    status, attempts, last_error = row(admin, pg_store)
    assert (status, attempts) == ("dead", MAX + 1)
    assert last_error.startswith(f"worker lost: attempt {MAX} of {MAX} ended without settling")
    abandoned = service.state("job", "crash").abandoned
    assert [(a.index, a.error.split(":")[0]) for a in abandoned] == [(0, "worker lost")]


@pytest.mark.slow
def test_a_sigkilled_attempt_is_counted_too(
    workers: Workers, service: WorkflowService, admin: Conn, pg_store: PostgresStore, tmp_path: Path
) -> None:
    """Another member: the supervisor (or the OOM killer) SIGKILLs the worker while its handler runs."""
    service.execute(Start("hang", 1, "hang"))

    def crash(proc: subprocess.Popen[bytes], n: int) -> None:
        def running_or_dead() -> bool:
            return len(lines(tmp_path / "started.log")) == n or row(admin, pg_store)[0] == "dead"

        wait_until(running_or_dead, what=f"attempt {n} to start")
        proc.send_signal(signal.SIGKILL if row(admin, pg_store)[0] != "dead" else signal.SIGTERM)
        proc.wait(30)

    supervise(workers, admin, pg_store, crash)
    assert len(lines(tmp_path / "started.log")) == MAX
    status, _, last_error = row(admin, pg_store)
    assert status == "dead" and "worker lost" in last_error
    assert [a.index for a in service.state("job", "hang").abandoned] == [0]


@pytest.mark.slow
def test_a_returned_input_the_database_refuses_is_dead_at_once_with_its_error(
    workers: Workers, service: WorkflowService, admin: Conn, pg_store: PostgresStore, tmp_path: Path
) -> None:
    """Class 2, effect half: the handler returns an input holding NUL. It is not retried for ever: the
    row is dead after one attempt with last_error, and the dead-letter input is delivered."""
    service.execute(Start("nul", 1, "nul_reply"))
    proc = workers.start("--lease", "30")
    wait_until(lambda: row(admin, pg_store)[0] == "dead", what="the row to be dead")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    status, attempts, last_error = row(admin, pg_store)
    assert (status, attempts) == ("dead", 1)
    assert "can never be applied" in last_error and "NUL" in last_error and "$.error" in last_error
    assert len(lines(tmp_path / "started.log")) == 1
    (abandoned,) = service.state("job", "nul").abandoned
    assert "can never be applied" in abandoned.error
