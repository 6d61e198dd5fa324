"""A worker SIGKILLed while it delivers a child's close notice: the parent still gets exactly one input.

The notice is queued by the child's closing transaction; delivering it applies the parent's input and
marks the row done in one transaction, under an input key derived from the row. Killing the worker in the
hook or inside that transaction leaves the row claimed; the next worker delivers it once. A duplicated
delivery of a row (its done mark lost) is answered `duplicate` by the parent's input key.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from ironflow_py import Completed, OutcomeStatus, PostgresStore, WorkflowService
from ironflow_py.composition import CHILD_CLOSED_ROW, delivery_key
from tests.composition_app import StallingJob
from tests.composition_workflows import ChildDone, Collected, FanOut, FinishTask, Task

ROOT = Path(__file__).resolve().parents[2]
Conn = psycopg.Connection[tuple[Any, ...]]


class Workers:
    def __init__(self, pg_url: str, schema: str, folder: Path) -> None:
        self.pg_url, self.schema, self.folder = pg_url, schema, folder
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> subprocess.Popen[bytes]:
        env = {
            **os.environ,
            "IRONFLOW_DATABASE_URL": self.pg_url,
            "IRONFLOW_SCHEMA": self.schema,
            "IRONFLOW_TEST_DIR": str(self.folder),
            "PYTHONPATH": str(ROOT),
        }
        with (self.folder / f"worker-{len(self.procs)}.log").open("wb") as log:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "ironflow_py",
                    "--app",
                    "tests.composition_app:app",
                    "worker",
                    "--lease",
                    "2",
                    "--poll-interval",
                    "0.2",
                ],
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
    return WorkflowService(pg_store, workflows=[StallingJob, Task])


def until(condition: Any, timeout: float = 60.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)
    return value


def collected(service: WorkflowService, job_id: str) -> list[str]:
    return [e.event.key for e in service.history("job", job_id) if isinstance(e.event, Collected)]


@pytest.mark.parametrize("where", ["hook", "decide"])
def test_sigkill_between_child_close_and_notice_delivery_gives_the_parent_exactly_one_input(
    workers: Workers, service: WorkflowService, tmp_path: Path, where: str
) -> None:
    first = workers.start()
    service.execute(FanOut("crash", (1,)))
    until(lambda: service.store.children("job", "crash"), what="the child started")
    (tmp_path / f"stall-{where}").write_text("")
    service.execute(FinishTask("crash-t0"))  # the child closes; its closing transaction queued the notice
    until(lambda: list(tmp_path.glob(f"stalled-{where}-{first.pid}")), what="the worker stalled in the delivery")
    notice = next(e for e in service.store.effects("task", "crash-t0") if e.effect_type == CHILD_CLOSED_ROW)
    assert notice.status == "pending"
    assert notice.locked_by is not None  # claimed by the worker we are about to kill
    first.send_signal(signal.SIGKILL)
    first.wait(30)
    assert collected(service, "crash") == []
    (tmp_path / f"stall-{where}").unlink()
    workers.start()  # takes the row over once the lease lapses
    assert service.wait("job", "crash", timeout=60) == Completed([10])
    assert collected(service, "crash") == ["crash-t0"]
    [notice] = [e for e in service.store.effects("task", "crash-t0") if e.effect_type == CHILD_CLOSED_ROW]
    assert (notice.status, notice.attempts) == ("done", 2)


def test_a_duplicated_delivery_returns_duplicate(
    workers: Workers, service: WorkflowService, admin: Conn, pg_store: PostgresStore
) -> None:
    service.execute(FanOut("dup", (1, 2)))
    workers.start()
    until(lambda: len(service.store.children("job", "dup")) == 2, what="children started")
    service.execute(FinishTask("dup-t0"))
    until(lambda: collected(service, "dup") == ["dup-t0"], what="the first notice delivered")
    [notice] = [e for e in service.store.effects("task", "dup-t0") if e.effect_type == CHILD_CLOSED_ROW]
    # The same row delivered again (as after a lost done mark): the parent's key recognises it.
    again = service.execute_on(
        "job", "dup", ChildDone("dup", "dup-t0", True, 10), input_key=delivery_key("task", "dup-t0", notice.id)
    )
    assert again.status is OutcomeStatus.DUPLICATE
    # And through the worker: the row made pending again is delivered as a duplicate, nothing appended.
    admin.execute(
        sql.SQL("UPDATE {}.outbox SET status = 'pending', available_at = now() WHERE id = %s").format(
            sql.Identifier(pg_store.schema)
        ),
        (notice.id,),
    )

    def redelivered() -> bool:
        row = next(e for e in service.store.effects("task", "dup-t0") if e.id == notice.id)
        return (row.status, row.attempts) == ("done", 2)

    until(redelivered, what="the redelivery settled (a second attempt)")
    assert collected(service, "dup") == ["dup-t0"]
    service.execute(FinishTask("dup-t1"))
    assert service.wait("job", "dup", timeout=60) == Completed([10, 20])
