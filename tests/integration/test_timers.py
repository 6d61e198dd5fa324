"""Durable timers on real PostgreSQL: due-time firing with an injected clock, replace and cancel by key,
no double firing, and one test in real time."""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ironflow_py import EffectRuntime, ManualClock, PostgresStore, WorkflowService
from tests.effect_app import CancelRemind, Job, Remind, Start, counting_listeners, make_registry

T0 = datetime(2030, 5, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def service(pg_store: PostgresStore, clock: ManualClock) -> WorkflowService:
    return WorkflowService(pg_store, workflows=[Job], clock=clock)


def runtime(service: WorkflowService, **kw: Any) -> EffectRuntime:
    return EffectRuntime(service, None, rng=random.Random(1), handle_signals=False, listen=False, **kw)


def fired(service: WorkflowService, job: str) -> tuple[str, ...]:
    return service.state("job", job).fired  # type: ignore[no-any-return]


def test_a_timer_fires_at_its_due_time_not_before(service: WorkflowService, clock: ManualClock) -> None:
    service.execute(Remind("a", "ping", T0 + timedelta(seconds=30)))
    rt = runtime(service)
    clock.advance(timedelta(seconds=29, microseconds=999_999))
    assert rt.run_once() == 0
    assert fired(service, "a") == ()
    clock.advance(timedelta(microseconds=1))
    assert rt.run_once() == 1
    assert fired(service, "a") == ("ping",)
    assert service.store.timers("job", "a") == []
    clock.advance(timedelta(hours=1))
    assert rt.run_once() == 0  # fired once, gone


def test_a_runtime_without_a_registry_fires_timers_and_leaves_effects_alone(
    service: WorkflowService, clock: ManualClock
) -> None:
    service.execute(Start("f", 2, "noop"))
    service.execute(Remind("f", "ping", T0))
    assert runtime(service).run_once() == 1
    assert fired(service, "f") == ("ping",)
    assert [(e.status, e.attempts) for e in service.store.effects("job", "f")] == [("pending", 0)] * 2


def test_rescheduling_a_key_replaces_the_timer(service: WorkflowService, clock: ManualClock) -> None:
    service.execute(Remind("b", "ping", T0 + timedelta(seconds=10)))
    service.execute(Remind("b", "ping", T0 + timedelta(seconds=60)))
    (timer,) = service.store.timers("job", "b")
    assert timer.due_at == T0 + timedelta(seconds=60)
    rt = runtime(service)
    clock.advance(timedelta(seconds=30))
    assert rt.run_once() == 0
    clock.advance(timedelta(seconds=30))
    assert rt.run_once() == 1
    assert fired(service, "b") == ("ping",)


def test_a_cancelled_timer_never_fires(service: WorkflowService, clock: ManualClock) -> None:
    service.execute(Remind("c", "ping", T0 + timedelta(seconds=10)))
    service.execute(Remind("c", "other", T0 + timedelta(seconds=10)))
    service.execute(CancelRemind("c", "ping"))
    clock.advance(timedelta(days=1))
    assert runtime(service).run_once() == 1
    assert fired(service, "c") == ("other",)


def test_a_timer_claimed_before_its_cancellation_committed_fires_nothing(
    service: WorkflowService, clock: ManualClock, pg_store: PostgresStore
) -> None:
    service.execute(Remind("d", "ping", T0))
    service.execute(Remind("d", "moved", T0))
    rt = runtime(service)
    claims = rt.outbox.claim_timers(clock.now(), timedelta(seconds=60), 10)
    assert {c.key for c in claims} == {"ping", "moved"}
    service.execute(CancelRemind("d", "ping"))  # commits after the claim
    service.execute(Remind("d", "moved", T0 + timedelta(hours=1)))  # replaced: a new id
    for claim in claims:
        rt.attempts.fire_timer(claim)
    assert fired(service, "d") == ()
    (left,) = service.store.timers("job", "d")
    assert (left.key, left.due_at) == ("moved", T0 + timedelta(hours=1))


def test_two_timer_workers_never_fire_the_same_timer_twice(service: WorkflowService, clock: ManualClock) -> None:
    for i in range(200):
        service.execute(Remind(f"e{i % 20}", f"k{i}", T0))
    runtimes = [runtime(service, batch_size=7, concurrency=2) for _ in range(2)]
    barrier = threading.Barrier(2)

    def drain(rt: EffectRuntime) -> int:
        barrier.wait()
        total = 0
        while n := rt.run_once():
            total += n
        return total

    with ThreadPoolExecutor(2) as pool:
        counts = list(pool.map(drain, runtimes))
    assert sum(counts) == 200
    all_fired = [k for j in range(20) for k in fired(service, f"e{j}")]
    assert sorted(all_fired) == sorted(f"k{i}" for i in range(200))


def test_a_timer_fires_in_real_time_woken_by_notify(
    pg_store: PostgresStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker sleeps until the timer's due time (poll interval: an hour), then fires it. It learns of
    the timer from the deciding transaction's notification, which its listener must have received."""
    listeners = counting_listeners(monkeypatch)
    service = WorkflowService(pg_store, workflows=[Job])
    rt = EffectRuntime(service, make_registry(tmp_path), handle_signals=False, poll_interval=3600)
    thread = threading.Thread(target=rt.run)
    thread.start()
    try:
        tick = threading.Event()
        deadline = datetime.now(UTC) + timedelta(seconds=10)
        while not (listeners and listeners[0].wakes >= 1) and datetime.now(UTC) < deadline:
            tick.wait(0.01)
        assert listeners and listeners[0].wakes == 1, "the listener never connected"
        due = datetime.now(UTC) + timedelta(milliseconds=500)
        service.execute(Remind("rt", "ping", due))
        while not fired(service, "rt") and thread.is_alive() and datetime.now(UTC) < due + timedelta(seconds=10):
            tick.wait(0.01)
        assert listeners[0].wakes >= 2, "no notification reached the listener"
        assert fired(service, "rt") == ("ping",)
        fired_at = service.history("job", "rt")[-1].recorded_at  # the firing transaction's `now`
        assert due <= fired_at < due + timedelta(seconds=5)
    finally:
        rt.stop()
        thread.join(10)
    assert not thread.is_alive()
