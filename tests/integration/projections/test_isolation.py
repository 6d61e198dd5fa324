"""One bad projection does not stop the others (class 6), and a dropped connection is not a handler
failure (class 2, projection half): design/reliability.md. Real worker threads on real PostgreSQL; waits
poll a real condition with a deadline."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from ironflow_py import (
    OnError,
    PostgresStore,
    Projection,
    ProjectionControl,
    ProjectionHandlerFailed,
    ProjectionRetry,
    ProjectionWorker,
    RecordedEvent,
    WorkflowService,
)
from tests.effect_app import Job, Start
from tests.projection_apps import (
    NAME,
    applied,
    caught_up,
    counter_projection,
    create_read_model,
    totals,
    wait_past_horizon,
)
from tests.workflows import Add, Counter

Conn = psycopg.Connection[tuple[Any, ...]]


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)  # polling a real condition, not ordering anything


@pytest.fixture
def service(pg_store: PostgresStore, admin: Conn) -> WorkflowService:
    create_read_model(admin, pg_store.schema)
    return WorkflowService(pg_store, workflows=[Counter, Job])


def jobs_projection(fail: bool = False) -> Projection:
    def handle(event: RecordedEvent[Any], conn: psycopg.Connection[Any]) -> None:
        if fail:
            raise RuntimeError(f"jobs refuses {event.workflow_id}#{event.seq}")

    return Projection("jobs", handle, workflow_types=["job"])


def plant_bad_job_event(admin: Conn, schema: str) -> int:
    """A hand-edited event: its payload no longer decodes as `Started`."""
    row = admin.execute(
        sql.SQL(
            "INSERT INTO {0}.events (workflow_type, workflow_id, seq, event_type, payload, recorded_at, bucket) "
            "VALUES ('job', 'edited', 1, 'job.started/1', '{{\"count\": \"many\"}}', now(), "
            "{0}.instance_bucket('job', 'edited')) RETURNING position"
        ).format(sql.Identifier(schema))
    ).fetchone()
    assert row is not None
    return int(row[0])


@pytest.fixture
def running() -> Iterator[Callable[[ProjectionWorker], threading.Thread]]:
    started: list[tuple[ProjectionWorker, threading.Thread]] = []
    errors: list[BaseException] = []

    def start(worker: ProjectionWorker) -> threading.Thread:
        def run() -> None:
            try:
                worker.run()
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=run)
        thread.start()
        started.append((worker, thread))
        return thread

    yield start
    for worker, thread in started:
        worker.stop()
        thread.join(30)
    assert not errors, errors


def test_an_event_that_no_longer_decodes_stops_only_its_projection(
    service: WorkflowService, admin: Conn, running: Callable[[ProjectionWorker], threading.Thread]
) -> None:
    """The issue's example: a hand-edited event under the default policy used to make the worker exit,
    stopping a healthy projection in the same process."""
    schema = service.store.schema  # type: ignore[attr-defined]
    worker = ProjectionWorker(
        service, [counter_projection(schema), jobs_projection()], retry=ProjectionRetry(max_attempts=2, initial=0.0)
    )
    thread = running(worker)
    bad = plant_bad_job_event(admin, schema)
    wait_past_horizon(worker.store, bad)  # other sessions' transactions may hide it a while
    wait_for(lambda: "jobs" in worker.stopped, "the jobs projection to stop")
    # The healthy projection keeps running in the same process: new events are applied.
    for amount in (1, 2):
        position = service.execute(Add("c1", amount)).events[0].position
        assert caught_up(worker, position)
    assert thread.is_alive()
    assert totals(admin, schema)["c1"][0] == 3
    error = worker.stopped["jobs"]
    assert isinstance(error, ProjectionHandlerFailed) and (error.workflow_id, error.seq) == ("edited", 1)
    by_name = {s.name: s for s in ProjectionControl(service.store).status([NAME, "jobs"])}  # type: ignore[arg-type]
    jobs, healthy = by_name["jobs"], by_name[NAME]
    assert jobs.failed_at is not None and jobs.failed_position == bad and jobs.position < bad
    assert jobs.failed_error is not None and "DecodeError" in jobs.failed_error and "'edited'" in jobs.failed_error
    assert healthy.failed_at is None and healthy.lag_events <= 1  # only the bad job event lies past it


def test_a_handler_failing_under_stop_leaves_the_round_to_the_other_projections(
    service: WorkflowService, admin: Conn
) -> None:
    """Another member: a handler that raises. `run_once` reports it, after draining the others."""
    schema = service.store.schema  # type: ignore[attr-defined]
    worker = ProjectionWorker(
        service,
        [counter_projection(schema), jobs_projection(fail=True)],
        retry=ProjectionRetry(max_attempts=1, on_error=OnError.STOP),
    )
    try:
        service.execute(Start("j1", 0, "noop"))
        last = service.execute(Add("c1", 5)).events[0].position
        deadline = time.monotonic() + 30
        while "jobs" not in worker.stopped or not worker.control.caught_up(NAME, last):
            assert time.monotonic() < deadline, "the round did not finish"
            try:
                worker.run_once()
            except ProjectionHandlerFailed as exc:
                assert exc.projection == "jobs"
        assert worker.run_once() >= 0, "a later round runs the healthy projection and does not raise again"
        assert [r[0] for r in applied(admin, schema)] == ["c1"]
    finally:
        worker.close()


def test_a_connection_terminated_while_the_handler_runs_is_not_an_attempt(
    service: WorkflowService, admin: Conn, running: Callable[[ProjectionWorker], threading.Thread]
) -> None:
    """Class 2, projection half: the worker's backend is terminated 5 times while its handler runs. With
    `dead_letter` after 2 attempts, each used to count and a healthy event was dead-lettered; now the
    worker reconnects and retries the batch: the event is applied once and nothing is dead-lettered."""
    schema = service.store.schema  # type: ignore[attr-defined]
    inner = counter_projection(schema)
    in_handler, killed = threading.Semaphore(0), threading.Semaphore(0)
    calls = {"n": 0}

    def handle(event: RecordedEvent[Any], conn: psycopg.Connection[Any]) -> None:
        calls["n"] += 1
        if calls["n"] <= 5:
            in_handler.release()
            assert killed.acquire(timeout=30)
            conn.execute("SELECT 1")  # the session is gone: this raises
        assert inner.handler is not None
        inner.handler(event, conn)

    worker_id = f"iso-{schema}"
    projection = Projection(NAME, handle, workflow_types=["counter"], reset=inner.reset)
    worker = ProjectionWorker(
        service,
        [projection],
        retry=ProjectionRetry(max_attempts=2, initial=0.0, on_error=OnError.DEAD_LETTER),
        worker_id=worker_id,
        poll_interval=1.0,
    )
    running(worker)
    position = service.execute(Add("victim", 7)).events[0].position
    wait_past_horizon(worker.store, position)  # so the handler's first call is due now
    app = f"ironflow_py.projections {worker_id}"[:63]
    for _ in range(5):
        assert in_handler.acquire(timeout=30)
        row = admin.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s", (app,)).fetchone()
        assert row is not None
        pid = int(row[0])
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))

        def gone(pid: int = pid) -> bool:
            return admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone() is None

        wait_for(gone, "the backend to exit")
        killed.release()
    assert caught_up(worker, position)
    assert worker.control.dead_letters(NAME) == []
    assert totals(admin, schema)["victim"] == (7, 1, 1), "applied once, equal to the fold"
    assert [r[0] for r in applied(admin, schema)] == ["victim"]
    assert calls["n"] == 6


def test_a_handler_meeting_a_read_only_session_is_not_an_attempt(
    service: WorkflowService, admin: Conn, running: Callable[[ProjectionWorker], threading.Thread]
) -> None:
    """After a failover a session can land on a node that cannot write: the handler's write fails with
    SQLSTATE 25006. That is an outage, not the handler's fault: with `dead_letter` after 2 attempts, 4 such
    failures still leave the event applied once and nothing dead-lettered (the worker reconnects)."""
    schema = service.store.schema  # type: ignore[attr-defined]
    inner = counter_projection(schema)
    calls = {"n": 0}

    def handle(event: RecordedEvent[Any], conn: psycopg.Connection[Any]) -> None:
        calls["n"] += 1
        if calls["n"] <= 4:
            conn.execute("SET transaction_read_only = on")  # what every write meets on a standby
        assert inner.handler is not None
        inner.handler(event, conn)

    projection = Projection(NAME, handle, workflow_types=["counter"], reset=inner.reset)
    worker = ProjectionWorker(
        service,
        [projection],
        retry=ProjectionRetry(max_attempts=2, initial=0.0, on_error=OnError.DEAD_LETTER),
        poll_interval=1.0,
    )
    running(worker)
    position = service.execute(Add("read-only", 5)).events[0].position
    assert worker.wait_until_caught_up(NAME, position, 30)
    assert calls["n"] == 5
    assert worker.control.dead_letters(NAME) == []
    assert applied(admin, schema) == [("read-only", 1, position)]  # once
    assert totals(admin, schema) == {"read-only": (5, 1, 1)}
