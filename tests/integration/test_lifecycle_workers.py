"""Terminate and pause against live effect workers on real PostgreSQL (threads running `EffectRuntime.run`)."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from psycopg import sql

from ironflow_py import (
    EffectContext,
    EffectRegistry,
    EffectRuntime,
    PostgresStore,
    Retryable,
    RetryPolicy,
    WorkflowService,
)
from tests.lifecycle_workflows import JobWorkflow, MoreWork, Poked, StartJob, Work

Conn = psycopg.Connection[tuple[Any, ...]]


class Calls:
    """What the Work handler saw: (job id, n, attempt), thread-safe; the first attempt of `flaky` jobs fails."""

    def __init__(self, flaky: set[str]) -> None:
        self.flaky = flaky
        self.seen: list[tuple[str, int, int]] = []
        self.lock = threading.Lock()

    def of(self, job_id: str) -> list[tuple[str, int, int]]:
        with self.lock:
            return [c for c in self.seen if c[0] == job_id]

    def registry(self) -> EffectRegistry:
        registry = EffectRegistry()

        @registry.handler(Work, policy=RetryPolicy(max_attempts=5, base_delay=1.0, jitter=False))
        def work(effect: Work, ctx: EffectContext) -> None:
            with self.lock:
                self.seen.append((effect.job_id, effect.n, ctx.attempt))
            if effect.job_id in self.flaky and ctx.attempt == 1:
                raise Retryable("first attempt fails")

        return registry


@pytest.fixture
def workers(pg_store: PostgresStore) -> Iterator[Any]:
    started: list[tuple[EffectRuntime, threading.Thread]] = []

    def start(service: WorkflowService, calls: Calls, count: int = 1) -> None:
        for _ in range(count):
            rt = EffectRuntime(
                service, calls.registry(), rng=random.Random(1), handle_signals=False, poll_interval=0.1, grace=2
            )
            thread = threading.Thread(target=rt.run, daemon=True)
            thread.start()
            started.append((rt, thread))

    yield start
    for rt, thread in started:
        rt.stop()
        thread.join(10)


def _until(condition: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


def _rows(admin: Conn, schema: str, job_id: str) -> list[tuple[Any, ...]]:
    return admin.execute(
        sql.SQL(
            "SELECT status, attempts, locked_by, available_at FROM {}.outbox WHERE workflow_id = %s ORDER BY id"
        ).format(sql.Identifier(schema)),
        (job_id,),
    ).fetchall()


def test_terminate_leaves_no_timers_and_its_pending_effects_never_run_with_a_live_worker(
    pg_store: PostgresStore, admin: Conn, workers: Any
) -> None:
    service = WorkflowService(pg_store, workflows=[JobWorkflow])
    calls = Calls(flaky={"t1"})
    workers(service, calls)
    service.execute(StartJob("t1", timer_in=1.0, work=3))
    # Each effect failed once and waits for its retry, one second later: pending, not claimed.
    _until(lambda: len(calls.of("t1")) == 3 and all(r[2] is None for r in _rows(admin, pg_store.schema, "t1")))
    retry_at = max(r[3] for r in _rows(admin, pg_store.schema, "t1"))
    outcome = service.terminate("job", "t1", "operator", request_id="k1")
    assert outcome.accepted and [e.type_name for e in outcome.events] == ["ironflow.terminated/1"]
    assert pg_store.timers("job", "t1") == []
    # Past the retry time and the timer's due time, the live worker claims new work but none of t1's.
    _until(lambda: datetime.now(UTC) > retry_at)
    service.execute(StartJob("probe", work=1))
    _until(lambda: len(calls.of("probe")) == 1)
    assert len(calls.of("t1")) == 3
    assert [r[0] for r in _rows(admin, pg_store.schema, "t1")] == ["cancelled"] * 3
    history = service.history("job", "t1")
    assert [e.type_name for e in history] == ["job.started/1", "ironflow.terminated/1"]
    assert not any(isinstance(e.event, Poked) for e in history)


def test_pause_holds_effects_and_timers_from_two_live_workers_until_resume(
    pg_store: PostgresStore, admin: Conn, workers: Any
) -> None:
    service = WorkflowService(pg_store, workflows=[JobWorkflow])
    calls = Calls(flaky=set())
    workers(service, calls, count=2)
    service.execute(StartJob("p1", timer_in=1.0))
    service.pause("job", "p1", request_id="pause-1")
    service.execute(MoreWork("p1", 7))  # enqueued while paused
    held_since = time.monotonic()
    # The workers are alive and claiming throughout: probes enqueued during the pause run.
    while time.monotonic() - held_since < 5.0:
        probe = f"probe-{int((time.monotonic() - held_since) * 10)}"
        service.execute(StartJob(probe, work=1))
        _until(lambda probe=probe: len(calls.of(probe)) == 1)
        time.sleep(0.5)
    assert calls.of("p1") == []
    assert [(r[0], r[1]) for r in _rows(admin, pg_store.schema, "p1")] == [("pending", 0)]
    (timer,) = pg_store.timers("job", "p1")
    assert timer.attempts == 0 and timer.due_at < datetime.now(UTC)  # due during the pause, not fired
    service.resume("job", "p1", request_id="resume-1")
    _until(lambda: len(calls.of("p1")) == 1 and pg_store.timers("job", "p1") == [])
    _until(lambda: _rows(admin, pg_store.schema, "p1")[0][0] == "done")
    assert calls.of("p1") == [("p1", 7, 1)]
    assert [e.event for e in service.history("job", "p1")].count(Poked()) == 1
