"""Recovery: a worker process killed at every event boundary of a machine with a Task, a Retry, a Wait and
a Map; a fresh worker process resumes the execution from the database, and it ends with the same output
and the same history as an uninterrupted run.

Each run kills the worker at one boundary (inside a task handler, inside a deciding transaction after its
write, or right after a commit). The worker announces the boundary in a file and blocks; the test sees the
file and SIGKILLs it, so the kill happens exactly there. No sleeps order anything.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from ironflow_py import PostgresStore, WorkflowService
from ironflow_py.asl import execution_result
from ironflow_py.codec import make_converter
from ironflow_py.testing import Scenario
from tests.asl.recovery_app import INPUT, Boundaries, Checkout, tasks

ROOT = Path(__file__).resolve().parents[2]
TIMES = {"at", "started_at", "until", "due_at", "timeout_at", "heartbeat_at"}
# In an uninterrupted run the worker makes 6 deciding transactions and 4 handler calls (see recovery_app).
KILL_POINTS = [
    *(f"handler:{n}" for n in range(1, 5)),
    *(f"written:{n}" for n in range(1, 7)),
    *(f"committed:{n}" for n in range(1, 6)),  # after the 6th commit the execution is over
]


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = 90.0) -> None:
    tick = threading.Event()
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        tick.wait(0.02)


def comparable(events: list[Any]) -> list[tuple[str, Any]]:
    """Each event's class and payload without its timestamps (two runs happen at different times)."""
    converter = make_converter()
    out = []
    for e in events:
        data = converter.unstructure(e)
        out.append((type(e).__name__, {k: v for k, v in data.items() if k not in TIMES}))
    return out


def reference() -> tuple[Any, list[tuple[str, Any]]]:
    """The uninterrupted execution, in memory, with the same handlers."""
    s = Scenario(Checkout, effects=tasks(Boundaries(None, None)).effects())
    s.send(Checkout.StartExecution("exec-1", INPUT))
    for _ in range(5):
        s.advance(timedelta(seconds=1))
    result = execution_result(s.state("recovery", "exec-1"))
    assert result.status == "succeeded"
    return result.output, comparable(s.events("recovery", "exec-1"))


class Worker:
    def __init__(self, pg_url: str, schema: str, folder: Path) -> None:
        self.pg_url, self.schema, self.folder = pg_url, schema, folder
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, kill_at: str | None) -> subprocess.Popen[bytes]:
        env = {
            **os.environ,
            "IRONFLOW_DATABASE_URL": self.pg_url,
            "IRONFLOW_SCHEMA": self.schema,
            "IRONFLOW_TEST_DIR": str(self.folder),
            "IRONFLOW_KILL_AT": kill_at or "",
            "PYTHONPATH": str(ROOT),
        }
        with (self.folder / f"worker-{len(self.procs)}.log").open("wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "tests.asl.recovery_app"],
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
def worker(pg_url: str, pg_store: PostgresStore, tmp_path: Path) -> Iterator[Worker]:
    w = Worker(pg_url, pg_store.schema, tmp_path)
    yield w
    w.stop_all()


@pytest.fixture(scope="module")
def uninterrupted() -> tuple[Any, list[tuple[str, Any]]]:
    return reference()


@pytest.mark.slow
@pytest.mark.parametrize("kill_at", [None, *KILL_POINTS])
def test_killed_at_a_boundary_and_resumed_ends_like_an_uninterrupted_run(
    kill_at: str | None,
    worker: Worker,
    pg_store: PostgresStore,
    tmp_path: Path,
    uninterrupted: tuple[Any, list[tuple[str, Any]]],
) -> None:
    service = WorkflowService(pg_store, workflows=[Checkout])
    service.execute(Checkout.StartExecution("exec-1", INPUT))

    def status() -> str:
        return execution_result(service.state("recovery", "exec-1")).status

    if kill_at is not None:
        first = worker.start(kill_at)
        reached = tmp_path / "reached"
        wait_until(reached.exists, f"the worker to reach {kill_at}")
        assert reached.read_text() == kill_at
        first.kill()
        first.wait(30)
        assert status() == "running", "killed before the execution could end"
    worker.start(None)
    wait_until(lambda: status() != "running", "the execution to end")
    output, history = uninterrupted
    assert execution_result(service.state("recovery", "exec-1")).output == output
    assert comparable([e.event for e in service.history("recovery", "exec-1")]) == history
