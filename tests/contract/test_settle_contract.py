"""The settle seam on both stores: a fenced outbox/timer change commits with the decision or not at all."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from ironflow_py import (
    DecideFailed,
    LeaseLost,
    ManualClock,
    UnknownInputType,
    WorkflowService,
)
from ironflow_py.store.base import Settle, SettleKind, Store
from tests.workflows import Add, Boom, Counter, Schedule, Tick

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LEASE = timedelta(minutes=1)
Claim = Callable[[str, int, str], int]  # (table, id, worker) -> token


@pytest.fixture
def claim(store: Store) -> Claim:
    """Claim a row through the outbox port, as a worker does, and return the claim's token.

    Each claim comes after the last one's lease ended.
    """
    hours = itertools.count(1)

    def take(table: str, row_id: int, worker: str) -> int:
        now, outbox = T0 + timedelta(hours=next(hours)), store.outbox(worker)
        claims = outbox.claim_timers(now, LEASE, 100) if table == "timers" else outbox.claim_effects(now, LEASE, 100)
        (token,) = [c.token for c in claims if c.id == row_id]
        return token

    return take


@pytest.fixture
def service(store: Store) -> WorkflowService:
    return WorkflowService(store, workflows=[Counter], clock=ManualClock(T0))


def done(effect_id: int, worker: str, token: int) -> Settle:
    return Settle(SettleKind.EFFECT_DONE, effect_id, worker, token, T0)


def test_the_input_and_the_done_mark_commit_together(service: WorkflowService, store: Store, claim: Claim) -> None:
    (effect_id,) = service.execute(Add("c", 1)).effect_ids
    token = claim("outbox", effect_id, "w1")
    service.execute(Add("c", 10), settle=done(effect_id, "w1", token))
    assert service.state("counter", "c").total == 11
    assert [e.status for e in store.effects("counter", "c")] == ["done", "pending"]


@pytest.mark.parametrize("who", ["another worker", "a stale token", "nobody"])
def test_a_lost_claim_applies_nothing(service: WorkflowService, store: Store, claim: Claim, who: str) -> None:
    (effect_id,) = service.execute(Add("c", 1)).effect_ids
    worker, token = "w1", 0
    if who != "nobody":
        token = claim("outbox", effect_id, "w1")
        # The lease expired and the row was claimed again: by someone else, or by this worker id later.
        claim("outbox", effect_id, "w2" if who == "another worker" else "w1")
    with pytest.raises(LeaseLost, match=f"effect {effect_id}"):
        service.execute(Add("c", 10), settle=done(effect_id, worker, token))
    assert service.state("counter", "c").total == 1
    assert [e.status for e in store.effects("counter", "c")] == ["pending"]


def test_a_failing_decision_leaves_the_claimed_row_untouched(
    service: WorkflowService, store: Store, claim: Claim
) -> None:
    (effect_id,) = service.execute(Add("c", 1)).effect_ids
    token = claim("outbox", effect_id, "w1")
    with pytest.raises(DecideFailed):
        service.execute(Boom("c"), settle=done(effect_id, "w1", token))
    assert [e.status for e in store.effects("counter", "c")] == ["pending"]
    service.execute(Add("c", 2), settle=done(effect_id, "w1", token))  # the claim still holds
    assert [e.status for e in store.effects("counter", "c")] == ["done", "pending"]


def test_dead_settle_records_the_error_and_its_traceback(service: WorkflowService, store: Store, claim: Claim) -> None:
    (effect_id,) = service.execute(Add("c", 1)).effect_ids
    token = claim("outbox", effect_id, "w1")
    tb = "Traceback (most recent call last):\n  ...\nValueError: card declined\n"
    dead = Settle(SettleKind.EFFECT_DEAD, effect_id, "w1", token, T0, "card declined", tb)
    service.execute(Add("c", 5), settle=dead)
    (effect, _) = store.effects("counter", "c")
    assert (effect.status, effect.last_error, effect.last_traceback) == ("dead", "card declined", tb)


def test_firing_a_timer_deletes_it_in_the_same_transaction(
    service: WorkflowService, store: Store, claim: Claim
) -> None:
    service.execute(Schedule("c", "t", T0))
    (timer,) = store.timers("counter", "c")
    token = claim("timers", timer.id, "w1")
    fire = Settle(SettleKind.TIMER_FIRED, timer.id, "w1", token, T0)
    service.execute_on("counter", "c", Tick("c"), settle=fire)
    assert store.timers("counter", "c") == []
    assert [e.type_name for e in service.history("counter", "c")][-1] == "counter.ticked/1"


@pytest.mark.parametrize("change", ["replaced", "cancelled"])
def test_a_replaced_or_cancelled_timer_fires_nothing(
    service: WorkflowService, store: Store, claim: Claim, change: str
) -> None:
    service.execute(Schedule("c", "t", T0))
    (timer,) = store.timers("counter", "c")
    token = claim("timers", timer.id, "w1")
    if change == "replaced":
        service.execute(Schedule("c", "t", T0 + timedelta(hours=1)))
    else:
        service.execute(Schedule("c", "other", T0, cancel=("t",)))
    fire = Settle(SettleKind.TIMER_FIRED, timer.id, "w1", token, T0)
    with pytest.raises(LeaseLost, match=f"timer {timer.id}"):
        service.execute_on("counter", "c", Tick("c"), settle=fire)
    assert "counter.ticked/1" not in [e.type_name for e in service.history("counter", "c")]
    assert [t.key for t in store.timers("counter", "c")] == ["other" if change == "cancelled" else "t"]


def test_execute_on_refuses_an_input_the_workflow_does_not_declare(service: WorkflowService) -> None:
    with pytest.raises(UnknownInputType):
        service.execute_on("counter", "c", object())
