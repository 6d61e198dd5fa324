"""Children on both stores: the parent link, the close notice, unstarted children, the parent-close sweep row.

The rows are checked where the stores write them (no worker runs here): what the closing transaction
queues, and what `Store.children` lists.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from ironflow_py import ChildConflict, EffectRegistry, ManualClock, OutcomeStatus, RetryPolicy, WorkflowService
from ironflow_py.composition import (
    CHILD_CLOSED_ROW,
    PARENT_CLOSED_ROW,
    RESERVED_ROWS,
    START_CHILD_ROW,
    ParentLink,
    delivery_key,
)
from ironflow_py.effects._attempt import DEFAULT_TIMER_POLICY, Attempts
from ironflow_py.store.base import Settle, SettleKind, Store
from tests.composition_workflows import FanOut, FinishTask, Grow, Job, StartTask, Task, Tree
from tests.workflows import Add, Counter

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LEASE = timedelta(minutes=1)


@pytest.fixture
def service(store: Store) -> WorkflowService:
    return WorkflowService(store, workflows=[Job, Task, Tree], clock=ManualClock(T0))


def rows(service: WorkflowService, wtype: str, wid: str, kind: str) -> list[str]:
    return [e.status for e in service.store.effects(wtype, wid) if e.effect_type == kind]


def start(service: WorkflowService, child: str, parent: str, policy: str = "request_cancel") -> OutcomeStatus:
    outcome = service.start_child(
        "task", child, StartTask(child, 1), ParentLink("job", parent, policy), input_key=delivery_key("job", parent, 1)
    )
    return outcome.status


def test_a_child_records_its_parent_once_and_is_listed_under_it(service: WorkflowService) -> None:
    assert start(service, "c1", "p", "terminate") is OutcomeStatus.ACCEPTED
    info = service.store.instance("task", "c1")
    assert info is not None
    assert (info.parent_type, info.parent_id, info.parent_close_policy) == ("job", "p", "terminate")
    assert start(service, "c1", "p") is OutcomeStatus.DUPLICATE  # the same key
    again = service.start_child(
        "task", "c1", StartTask("c1", 1), ParentLink("job", "p"), input_key=delivery_key("job", "p", 2)
    )
    assert again.status is OutcomeStatus.DUPLICATE  # the same parent, another start: idempotent
    with pytest.raises(ChildConflict, match="parent job/p"):
        start(service, "c1", "other")
    assert [c.workflow_id for c in service.store.children("job", "p")] == ["c1"]
    assert service.store.children("job", "other") == []
    assert len(service.history("task", "c1")) == 1


def test_closing_a_child_queues_one_notice_with_its_outcome(service: WorkflowService) -> None:
    start(service, "c1", "p")
    assert rows(service, "task", "c1", CHILD_CLOSED_ROW) == []
    service.execute(FinishTask("c1"))
    [notice] = [e for e in service.store.effects("task", "c1") if e.effect_type == CHILD_CLOSED_ROW]
    assert notice.status == "pending"
    assert notice.payload == {"parent_type": "job", "parent_id": "p", "outcome": {"status": "completed", "result": 10}}
    assert service.store.children("job", "p") == []
    assert [c.workflow_id for c in service.store.children("job", "p", open_only=False)] == ["c1"]


def test_an_instance_with_no_parent_queues_no_notice(service: WorkflowService) -> None:
    service.execute(StartTask("solo", 1))
    service.execute(FinishTask("solo"))
    assert rows(service, "task", "solo", CHILD_CLOSED_ROW) == []


def test_closing_a_parent_cancels_unstarted_children_and_queues_one_sweep(service: WorkflowService) -> None:
    service.execute(FanOut("p", (1, 2)))
    assert rows(service, "job", "p", START_CHILD_ROW) == ["pending", "pending"]
    service.terminate("job", "p", "stop")
    assert sorted(rows(service, "job", "p", START_CHILD_ROW)) == ["cancelled", "cancelled"]
    # Terminate cancelled the pending rows first; no child was started, so there is nothing to sweep.
    assert rows(service, "job", "p", PARENT_CLOSED_ROW) == []


def test_a_parent_that_closes_after_starting_children_queues_a_sweep(service: WorkflowService) -> None:
    service.execute(FanOut("p", (1, 2)))
    outbox = service.store.outbox("w")
    first, _ = outbox.claim_effects(T0, timedelta(minutes=1), 10)
    # As the worker delivers it: the child's first decision and the fenced "done" of its start row commit together.
    settle = Settle(SettleKind.EFFECT_DONE, first.id, "w", first.token, T0)
    link = ParentLink("job", "p")
    service.start_child("task", "p-t0", StartTask("p-t0", 1), link, input_key="k", settle=settle)
    assert rows(service, "job", "p", PARENT_CLOSED_ROW) == []
    service.terminate("job", "p", "stop")
    assert rows(service, "job", "p", PARENT_CLOSED_ROW) == ["pending"]
    assert rows(service, "job", "p", START_CHILD_ROW) == ["done", "cancelled"]


def test_abandoned_children_need_no_sweep(service: WorkflowService) -> None:
    service.execute(FanOut("p", (1,), policy="abandon"))
    service.execute(FanOut("p", (1,)))  # rejected: already fanned out
    assert rows(service, "job", "p", START_CHILD_ROW) == ["pending"]


def test_a_parent_that_closes_by_itself_cancels_its_unstarted_children(service: WorkflowService) -> None:
    """Not only terminate: any close cancels the start rows still pending (their children never start)."""
    service.execute(Grow("t", 1))
    assert rows(service, "tree", "t", START_CHILD_ROW) == ["pending"]
    service.cancel("tree", "t", "no longer needed")  # the tree's own decision closes it, Cancelled
    assert rows(service, "tree", "t", START_CHILD_ROW) == ["cancelled"]
    assert rows(service, "tree", "t", PARENT_CLOSED_ROW) == ["pending"]  # a child may have started: sweep


def test_a_reserved_row_whose_attempts_all_died_is_dead_lettered_not_delivered_again(
    service: WorkflowService, store: Store
) -> None:
    """Like a handler's effect: a child start whose every attempt ended without settling (the worker died
    mid-delivery) is dead once the default policy's attempts are spent; the child is never started."""
    service.execute(FanOut("p", (1,)))
    outbox = store.outbox("w")
    registry = EffectRegistry(default_policy=RetryPolicy(max_attempts=3))
    now = T0
    for _ in range(3):  # three workers claim it and die before settling
        outbox.claim_effects(now, LEASE, 10)
        now += 2 * LEASE
    (claim,) = outbox.claim_effects(now, LEASE, 10)
    assert claim.attempt == 4
    clock = ManualClock(now)
    attempts = Attempts(
        service, registry, outbox, clock, random.Random(1).random, LEASE, DEFAULT_TIMER_POLICY, service._log
    )
    assert attempts.run_effect(claim) is None
    [row] = [e for e in store.effects("job", "p") if e.effect_type == START_CHILD_ROW]
    assert row.status == "dead" and "worker lost: attempt 3 of 3" in (row.last_error or "")
    assert store.instance("task", "p-t0") is None


def test_a_reserved_row_with_attempts_left_is_delivered(service: WorkflowService, store: Store) -> None:
    service.execute(FanOut("p", (1,)))
    outbox = store.outbox("w")
    registry = EffectRegistry(default_policy=RetryPolicy(max_attempts=3))
    now = T0
    for _ in range(2):
        outbox.claim_effects(now, LEASE, 10)
        now += 2 * LEASE
    (claim,) = outbox.claim_effects(now, LEASE, 10)
    assert claim.attempt == 3  # the last one allowed
    attempts = Attempts(
        service, registry, outbox, ManualClock(now), random.Random(1).random, LEASE, DEFAULT_TIMER_POLICY, service._log
    )
    assert attempts.run_effect(claim) is None
    [row] = [e for e in store.effects("job", "p") if e.effect_type == START_CHILD_ROW]
    assert row.status == "done" and store.instance("task", "p-t0") is not None


def test_a_claim_restricted_to_the_engine_rows_leaves_the_application_effects(store: Store) -> None:
    """What a worker with no handlers (`App(effects=None)`) claims: start rows, never a handler's effect."""
    service = WorkflowService(store, workflows=[Job, Task, Counter], clock=ManualClock(T0))
    service.execute(Add("c", 1))  # queues a counter.notify/1 effect
    service.execute(FanOut("p", (1,)))
    claims = store.outbox("w").claim_effects(T0, LEASE, 10, effect_types=sorted(RESERVED_ROWS))
    assert [c.effect_type for c in claims] == [START_CHILD_ROW]
    assert [e.status for e in store.effects("counter", "c")] == ["pending"]
    assert [c.effect_type for c in store.outbox("w2").claim_effects(T0, LEASE, 10)] == ["counter.notify/1"]
