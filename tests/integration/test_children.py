"""Messages and children on real PostgreSQL with real effect workers (threads running `EffectRuntime.run`)."""

from __future__ import annotations

import itertools
import logging
import random
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from ironflow_py import (
    Cancelled,
    ChildConflict,
    Completed,
    EffectRegistry,
    EffectRuntime,
    OutcomeStatus,
    PostgresStore,
    Terminated,
    WorkflowService,
)
from ironflow_py.composition import START_CHILD_ROW, START_REJECTED, ParentLink, delivery_key
from tests.composition_workflows import (
    FanOut,
    FinishTask,
    Grow,
    Holder,
    Job,
    Keep,
    Keeper,
    Relay,
    Relayer,
    StartTask,
    Task,
    Tree,
)


@pytest.fixture
def service(pg_store: PostgresStore) -> WorkflowService:
    return WorkflowService(pg_store, workflows=[Job, Task, Relayer, Tree, Keeper, Holder])


@pytest.fixture
def worker(service: WorkflowService) -> Iterator[EffectRuntime]:
    rt = EffectRuntime(
        service, EffectRegistry(), rng=random.Random(1), handle_signals=False, poll_interval=0.1, grace=2
    )
    thread = threading.Thread(target=rt.run, daemon=True)
    thread.start()
    yield rt
    rt.stop()
    thread.join(10)


def until(condition: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)
    return value


def open_children(service: WorkflowService, job_id: str, count: int) -> None:
    until(lambda: len(service.store.children("job", job_id)) == count)


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_fan_out_fan_in_gets_results_in_key_order_whatever_order_children_finish(
    service: WorkflowService, worker: EffectRuntime, order: tuple[int, ...]
) -> None:
    job_id = "job-" + "".join(map(str, order))
    assert service.execute(FanOut(job_id, (1, 2, 3))).status is OutcomeStatus.ACCEPTED
    open_children(service, job_id, 3)
    for child in service.store.children("job", job_id):
        assert (child.parent_type, child.parent_id, child.parent_close_policy) == ("job", job_id, "request_cancel")
    # The arrival order is made, not hoped for: the worker delivers close notices concurrently, so two
    # children finished back to back may reach the parent in either order. Each child finishes only after
    # the parent has collected the one before.
    for done, i in enumerate(order, start=1):
        service.execute(FinishTask(f"{job_id}-t{i}"))
        until(lambda done=done: len(collected_keys(service, job_id)) == done)
    assert service.wait("job", job_id, timeout=30) == Completed([10, 20, 30])
    # The notices arrived in `order`, exactly once each (one Collected per child); the results are in key order.
    assert collected_keys(service, job_id) == [f"{job_id}-t{i}" for i in order]


def collected_keys(service: WorkflowService, job_id: str) -> list[str]:
    return [e.event.key for e in service.history("job", job_id) if type(e.event).__name__ == "Collected"]


def test_race_keeps_the_first_child_to_finish(service: WorkflowService, worker: EffectRuntime) -> None:
    service.execute(FanOut("race", (1, 2, 3), race=True))
    open_children(service, "race", 3)
    service.execute(FinishTask("race-t2"))
    assert service.wait("job", "race", timeout=30) == Completed([30])
    # The losers get the parent-close policy (request_cancel) once the race closes the parent.
    for loser in ("race-t0", "race-t1"):
        assert service.wait("task", loser, timeout=30) == Cancelled("parent job/race completed")


@pytest.mark.parametrize(("policy", "expected"), [("request_cancel", Cancelled), ("terminate", Terminated)])
def test_terminating_a_parent_applies_each_open_childs_policy(
    service: WorkflowService, worker: EffectRuntime, policy: str, expected: type
) -> None:
    service.execute(FanOut("stop", (1, 2), policy=policy))
    open_children(service, "stop", 2)
    service.execute(FinishTask("stop-t0"))  # closed before the parent: keeps its own outcome
    until(lambda: service.result("task", "stop-t0") is not None)
    service.terminate("job", "stop", "operator")
    assert service.result("task", "stop-t0") == Completed(10)
    outcome = service.wait("task", "stop-t1", timeout=30)
    assert isinstance(outcome, expected)
    assert isinstance(outcome, Cancelled | Terminated)
    assert outcome.reason == "parent job/stop terminated"


def test_abandoned_children_keep_running(service: WorkflowService, worker: EffectRuntime) -> None:
    service.execute(FanOut("aban", (1,), policy="abandon"))
    open_children(service, "aban", 1)
    service.terminate("job", "aban", "operator")
    until(lambda: all(e.status != "pending" for e in service.store.effects("job", "aban")))
    assert service.result("task", "aban-t0") is None


def test_messages_are_delivered_once_by_class_and_to_a_named_instance(
    service: WorkflowService, worker: EffectRuntime
) -> None:
    service.execute(FanOut("msg", (1,)))
    service.execute(Relay("r1", "msg", "hello"))
    until(lambda: len(service.state("job", "msg").pings) == 2)
    assert sorted(service.state("job", "msg").pings) == ["hello", "hello!"]


def test_starting_the_same_child_twice_is_idempotent_and_another_parents_id_is_refused(
    service: WorkflowService, worker: EffectRuntime
) -> None:
    service.execute(FanOut("p1", (1,)))
    open_children(service, "p1", 1)
    # Another parent whose child id is p1's child: refused with a typed error, the start row goes dead.
    service.execute(StartTask("lonely", 5))  # an instance with no parent

    with pytest.raises(ChildConflict, match="p1-t0"):
        service.start_child("task", "p1-t0", StartTask("p1-t0", 1), ParentLink("job", "p2"), input_key="k")
    with pytest.raises(ChildConflict, match="no parent"):
        service.start_child("task", "lonely", StartTask("lonely", 1), ParentLink("job", "p1"), input_key="k2")
    again = service.start_child(
        "task", "p1-t0", StartTask("p1-t0", 1), ParentLink("job", "p1"), input_key=delivery_key("job", "p1", 10**9)
    )
    assert again.status is OutcomeStatus.DUPLICATE
    assert len(service.history("task", "p1-t0")) == 1


def test_a_start_refused_by_the_child_id_conflict_is_dead_lettered(
    service: WorkflowService, worker: EffectRuntime
) -> None:
    service.execute(StartTask("taken-t0", 1))  # the id the job will ask for, taken by an instance with no parent
    service.execute(FanOut("taken", (1,)))
    row = until(
        lambda: next(
            (
                e
                for e in service.store.effects("job", "taken")
                if e.effect_type == START_CHILD_ROW and e.status == "dead"
            ),
            None,
        )
    )
    assert "ChildConflict" in (row.last_error or "")


def test_terminating_a_grandparent_cascades_to_its_child_and_grandchild(
    service: WorkflowService, worker: EffectRuntime
) -> None:
    service.execute(Grow("root", 2))
    until(lambda: service.store.instance("task", "root/1/leaf") is not None)
    service.terminate("tree", "root", "operator")
    assert service.wait("tree", "root/1", timeout=30) == Cancelled("parent tree/root terminated")
    assert service.wait("task", "root/1/leaf", timeout=30) == Cancelled("parent tree/root/1 cancelled")
    # The middle tree's close notified its own parent too (closed already: already_completed, nothing added).
    until(lambda: all(e.status == "done" for e in service.store.effects("tree", "root/1")))
    assert [e.type_name for e in service.history("tree", "root")] == ["tree.grown/1", "ironflow.terminated/1"]


def test_deliveries_never_lock_the_sender(service: WorkflowService, pg_store: PostgresStore) -> None:
    """A child start and a message are delivered while their senders' instance locks are held elsewhere."""
    service.execute(FanOut("lk", (1,)))  # queues a start row owned by job/lk
    service.execute(FanOut("other", ()))  # the message's target
    service.execute(Relay("r", "other", "hi"))  # queues two message rows owned by relayer/r
    holding, release = threading.Event(), threading.Event()

    def hold_senders() -> None:
        with pg_store.locked("job", "lk"), pg_store.locked("relayer", "r"):
            holding.set()
            release.wait(60)

    holder = threading.Thread(target=hold_senders, daemon=True)
    holder.start()
    assert holding.wait(30)
    rt = EffectRuntime(service, EffectRegistry(), handle_signals=False, listen=False, rng=random.Random(0))
    delivering = threading.Thread(target=lambda: [rt.run_once() for _ in range(3)], daemon=True)
    delivering.start()
    delivering.join(30)
    try:
        assert not delivering.is_alive(), "a delivery waited for its sender's lock"
        assert holder.is_alive()  # the locks were held the whole time
        assert service.store.instance("task", "lk-t0") is not None
        assert sorted(service.state("job", "other").pings) == ["hi", "hi!"]
    finally:
        release.set()
        holder.join(30)


def test_a_child_that_rejects_its_first_input_is_reported_once_to_its_parent(
    service: WorkflowService, worker: EffectRuntime
) -> None:
    service.execute(FanOut("rej", (1, -1)))
    open_children(service, "rej", 1)
    service.execute(FinishTask("rej-t0"))
    assert service.wait("job", "rej", timeout=30) == Completed([10, None])
    assert service.store.instance("task", "rej-t1") is None  # the rejected child was never created
    failed = [
        e.event for e in service.history("job", "rej") if type(e.event).__name__ == "Collected" and not e.event.ok
    ]
    assert [(c.key, c.error) for c in failed] == [("rej-t1", f"{START_REJECTED}: a negative value")]
    assert {e.status for e in service.store.effects("job", "rej") if e.effect_type == START_CHILD_ROW} == {"done"}


def test_a_request_cancel_child_without_cancel_input_keeps_running_and_is_warned_about(
    service: WorkflowService, worker: EffectRuntime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ironflow_py")
    service.execute(Keep("kp"))
    until(lambda: service.store.instance("holder", "kp/h") is not None)
    service.terminate("keeper", "kp", "stop")
    warned = until(lambda: [r for r in caplog.records if getattr(r, "event", None) == "child_not_cancellable"])
    assert [r.__dict__["context"]["child_id"] for r in warned] == ["kp/h"]
    info = service.store.instance("holder", "kp/h")
    assert info is not None and info.closed_at is None


def test_a_worker_without_handlers_still_delivers_children_and_notices(service: WorkflowService) -> None:
    """`App(effects=None)`: the worker runs no handler but delivers the engine's own rows."""
    rt = EffectRuntime(service, None, rng=random.Random(1), handle_signals=False, poll_interval=0.1, grace=2)
    thread = threading.Thread(target=rt.run, daemon=True)
    thread.start()
    try:
        service.execute(FanOut("bare", (1, 2)))
        open_children(service, "bare", 2)
        service.execute(FinishTask("bare-t0"))
        service.execute(FinishTask("bare-t1"))
        assert service.wait("job", "bare", timeout=30) == Completed([10, 20])
    finally:
        rt.stop()
        thread.join(10)


BUCKETED = (
    "instances",
    "events",
    "outbox",
    "timers",
    "input_keys",
    "snapshots",
    "events_archive",
    "input_keys_archive",
)


def test_every_row_the_composition_and_lifecycle_paths_write_carries_its_instance_bucket(
    service: WorkflowService, worker: EffectRuntime, pg_store: PostgresStore
) -> None:
    """Migration 021: each statement writes the bucket itself (no generated column). The class: every path
    that inserts a row keyed by an instance (decisions, child starts, close notices, the parent-close sweep,
    terminate, pause/resume keys) gives it `instance_bucket(type, id)` of that row's own instance."""
    service.execute(FanOut("bk", (1, 2), policy="request_cancel"))
    open_children(service, "bk", 2)
    service.execute(FinishTask("bk-t0"))  # a child's close notice to the parent
    until(lambda: service.result("task", "bk-t0") is not None)
    service.pause("job", "bk", request_id="p1")
    service.resume("job", "bk", request_id="r1")
    service.terminate("job", "bk", "operator")  # terminate_instance, the sweep row, bk-t1's cancel
    until(lambda: service.result("task", "bk-t1") is not None)
    until(lambda: all(e.status != "pending" for e in service.store.effects("job", "bk")))
    with pg_store.pool.connection() as conn:
        for table in BUCKETED:
            wrong, total = conn.execute(
                f'SELECT count(*) FILTER (WHERE bucket IS DISTINCT FROM "{pg_store.schema}".instance_bucket('
                f'workflow_type, workflow_id)), count(*) FROM "{pg_store.schema}".{table}'
            ).fetchone() or (None, None)
            assert wrong == 0, (table, wrong, total)
        outbox_types = {
            r[0] for r in conn.execute(f'SELECT DISTINCT effect_type FROM "{pg_store.schema}".outbox').fetchall()
        }
        keys = conn.execute(f'SELECT count(*) FROM "{pg_store.schema}".input_keys').fetchone()
    # The paths above did write those rows (a sweep that checks empty tables proves nothing).
    assert {"ironflow.start_child/1", "ironflow.child_closed/1", "ironflow.parent_closed/1"} <= outbox_types
    assert keys is not None and keys[0] >= 3
