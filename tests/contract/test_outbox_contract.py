"""The outbox port (`store.base.Outbox`) on both stores: claims, leases, retries, dead letters, releases, fences.

The second half is the fence: for every statement that changes a claimed row, a worker whose claim was lost
(the row was claimed by another worker at the same attempt number, by itself at a later attempt, or by another
worker after its lease expired) changes nothing and is told so, and the rightful owner's claim still holds.
Each case fails if its statement's `locked_by` or attempt condition is removed (see design/effects.md).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest

from ironflow_py import LeaseLost, ManualClock, WorkflowService
from ironflow_py.records import EffectInfo
from ironflow_py.store.base import EffectClaim, Settle, SettleKind, Store, TimerClaim
from tests.workflows import Add, Counter, Schedule

T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
LEASE = timedelta(minutes=1)
LATER = T0 + 2 * LEASE  # after a first claim's lease ended


@pytest.fixture
def service(store: Store) -> WorkflowService:
    return WorkflowService(store, workflows=[Counter], clock=ManualClock(T0))


def add_effects(service: WorkflowService, n: int = 1) -> list[int]:
    """`n` pending effects on instance "c", available at T0, in id order."""
    return [service.execute(Add("c", 1)).effect_ids[0] for _ in range(n)]


def effect(store: Store, effect_id: int) -> EffectInfo:
    (row,) = [e for e in store.effects("counter", "c") if e.id == effect_id]
    return row


def add_timer(service: WorkflowService, store: Store, key: str = "t", at: datetime = T0) -> int:
    service.execute(Schedule("c", key, at))
    (timer,) = [t for t in store.timers("counter", "c") if t.key == key]
    return timer.id


def settle(store: Store, kind: SettleKind, claim: EffectClaim | TimerClaim, worker: str) -> None:
    """Apply a settle alone, in its own locked transaction (what `service.execute(..., settle=)` starts with)."""
    with store.locked(claim.workflow_type, claim.workflow_id, settle=Settle(kind, claim.id, worker, claim.token, T0)):
        pass


# -- effects ------------------------------------------------------------------------------------------------


def test_claims_take_due_rows_oldest_first_up_to_the_limit(service: WorkflowService, store: Store) -> None:
    first, second, third = add_effects(service, 3)
    claims = store.outbox("w1").claim_effects(T0, LEASE, 2)
    assert [(c.id, c.attempt, c.effect_type) for c in claims] == [
        (first, 1, "counter.notify/1"),
        (second, 1, "counter.notify/1"),
    ]
    assert claims[0].payload["total"] == 1
    row = effect(store, first)
    assert (row.status, row.locked_by, row.attempts, row.available_at) == ("pending", "w1", 1, T0 + LEASE)
    # Claimed rows are not due again during their lease: another worker gets only the third.
    assert [(c.id, c.attempt) for c in store.outbox("w2").claim_effects(T0, LEASE, 10)] == [(third, 1)]


def test_a_row_is_not_due_before_its_time_nor_during_a_lease(service: WorkflowService, store: Store) -> None:
    (effect_id,) = add_effects(service)
    assert store.outbox("w1").claim_effects(T0 - timedelta(seconds=1), LEASE, 10) == []
    assert [c.id for c in store.outbox("w1").claim_effects(T0, LEASE, 10)] == [effect_id]
    assert store.outbox("w2").claim_effects(T0 + LEASE - timedelta(seconds=1), LEASE, 10) == []
    (again,) = store.outbox("w2").claim_effects(T0 + LEASE, LEASE, 10)
    assert (again.id, again.attempt) == (effect_id, 2)


def test_heartbeat_extends_the_lease(service: WorkflowService, store: Store) -> None:
    add_effects(service)
    outbox = store.outbox("w1")
    (claim,) = outbox.claim_effects(T0, LEASE, 10)
    until = T0 + 10 * LEASE
    assert outbox.heartbeat(claim, T0, 10 * LEASE) == until
    assert effect(store, claim.id).available_at == until
    assert store.outbox("w2").claim_effects(until - timedelta(seconds=1), LEASE, 10) == []


def test_complete_marks_done_in_one_batch(service: WorkflowService, store: Store) -> None:
    ids = add_effects(service, 2)
    outbox = store.outbox("w1")
    claims = outbox.claim_effects(T0, LEASE, 10)
    assert outbox.complete_effects(claims, T0) == set(ids)
    assert [effect(store, i).status for i in ids] == ["done", "done"]
    assert outbox.complete_effects([], T0) == set()
    assert store.outbox("w2").claim_effects(LATER, LEASE, 10) == []


def test_retry_later_hands_the_row_back_with_its_error(service: WorkflowService, store: Store) -> None:
    add_effects(service)
    outbox = store.outbox("w1")
    (claim,) = outbox.claim_effects(T0, LEASE, 10)
    retry_at = T0 + timedelta(seconds=30)
    assert outbox.retry_effect_later(claim, T0, timedelta(seconds=30), "Retryable: later")
    row = effect(store, claim.id)
    assert (row.status, row.locked_by, row.available_at, row.last_error) == (
        "pending",
        None,
        retry_at,
        "Retryable: later",
    )
    assert store.outbox("w2").claim_effects(retry_at - timedelta(seconds=1), LEASE, 10) == []
    (again,) = store.outbox("w2").claim_effects(retry_at, LEASE, 10)
    assert again.attempt == 2


def test_mark_dead_keeps_the_error_and_never_runs_again(service: WorkflowService, store: Store) -> None:
    add_effects(service)
    outbox = store.outbox("w1")
    (claim,) = outbox.claim_effects(T0, LEASE, 10)
    assert outbox.mark_dead(claim, T0, "Permanent: no")
    row = effect(store, claim.id)
    assert (row.status, row.last_error) == ("dead", "Permanent: no")
    assert store.outbox("w2").claim_effects(LATER, LEASE, 10) == []


def test_release_makes_the_row_due_at_once_without_counting_the_attempt(service: WorkflowService, store: Store) -> None:
    add_effects(service)
    outbox = store.outbox("w1")
    (claim,) = outbox.claim_effects(T0, LEASE, 10)
    assert outbox.release_effects([claim], T0) == {claim.id}
    row = effect(store, claim.id)
    assert (row.locked_by, row.attempts, row.available_at) == (None, 0, T0)
    (again,) = store.outbox("w2").claim_effects(T0, LEASE, 10)
    assert again.attempt == 1


def test_settling_done_and_dead_through_the_store(service: WorkflowService, store: Store) -> None:
    done_id, dead_id = add_effects(service, 2)
    done, dead = store.outbox("w1").claim_effects(T0, LEASE, 10)
    settle(store, SettleKind.EFFECT_DONE, done, "w1")
    settle(store, SettleKind.EFFECT_DEAD, dead, "w1")
    assert (effect(store, done_id).status, effect(store, dead_id).status) == ("done", "dead")


# -- timers -------------------------------------------------------------------------------------------------


def test_timer_claims_take_due_timers_under_a_lease(service: WorkflowService, store: Store) -> None:
    early = add_timer(service, store, "early", T0)
    add_timer(service, store, "late", T0 + timedelta(hours=1))
    (claim,) = store.outbox("w1").claim_timers(T0, LEASE, 10)
    assert (claim.id, claim.key, claim.attempt, claim.due_at, claim.input_type) == (
        early,
        "early",
        1,
        T0,
        "counter.tick/1",
    )
    assert store.outbox("w2").claim_timers(T0 + LEASE - timedelta(seconds=1), LEASE, 10) == []
    (again,) = store.outbox("w2").claim_timers(T0 + LEASE, LEASE, 10)
    assert (again.id, again.attempt) == (early, 2)


def test_timer_retry_holds_it_back_until_the_retry_time(service: WorkflowService, store: Store) -> None:
    timer_id = add_timer(service, store)
    outbox = store.outbox("w1")
    (claim,) = outbox.claim_timers(T0, LEASE, 10)
    retry_at = T0 + timedelta(minutes=10)
    assert outbox.retry_timer_later(claim, T0, timedelta(minutes=10), "DecideFailed: boom")
    assert store.outbox("w2").claim_timers(retry_at - timedelta(seconds=1), LEASE, 10) == []
    (again,) = store.outbox("w2").claim_timers(retry_at, LEASE, 10)
    assert (again.id, again.attempt, again.due_at) == (timer_id, 2, T0)


def test_timer_release_makes_it_due_at_once(service: WorkflowService, store: Store) -> None:
    add_timer(service, store)
    outbox = store.outbox("w1")
    (claim,) = outbox.claim_timers(T0, LEASE, 10)
    assert outbox.release_timers([claim], T0) == {claim.id}
    (again,) = store.outbox("w2").claim_timers(T0, LEASE, 10)
    assert again.attempt == 1


def test_firing_deletes_the_timer(service: WorkflowService, store: Store) -> None:
    add_timer(service, store)
    (claim,) = store.outbox("w1").claim_timers(T0, LEASE, 10)
    settle(store, SettleKind.TIMER_FIRED, claim, "w1")
    assert store.timers("counter", "c") == []


def test_next_due_is_the_earliest_claimable_time(service: WorkflowService, store: Store) -> None:
    outbox = store.outbox("w1")

    def next_due() -> datetime | None:  # next_due answers in seconds from the time it is given
        seconds = outbox.next_due(T0)
        return None if seconds is None else T0 + timedelta(seconds=seconds)

    assert next_due() is None
    add_timer(service, store, "t", T0 + timedelta(hours=1))
    assert next_due() == T0 + timedelta(hours=1)
    add_effects(service)
    assert next_due() == T0
    outbox.claim_effects(T0, LEASE, 10)
    assert next_due() == T0 + LEASE  # the claimed effect comes back when its lease ends
    assert len(outbox.claim_timers(T0 + timedelta(hours=1), timedelta(hours=2), 10)) == 1
    assert next_due() == T0 + LEASE
    outbox.complete_effects(outbox.claim_effects(T0 + LEASE, LEASE, 10), T0 + LEASE)
    assert next_due() == T0 + timedelta(hours=3)  # the timer's lease end


def test_next_due_is_not_hidden_by_an_earlier_timer_backing_off(service: WorkflowService, store: Store) -> None:
    """A timer due first but backing off for an hour must not hide one due in two minutes (issue #11.2)."""
    outbox = store.outbox("w1")
    add_timer(service, store, "early", T0)
    (claim,) = outbox.claim_timers(T0, LEASE, 10)
    assert outbox.retry_timer_later(claim, T0, timedelta(hours=1), "DecideFailed: boom")
    add_timer(service, store, "later", T0 + timedelta(minutes=2))
    assert outbox.next_due(T0) == timedelta(minutes=2).total_seconds()
    # Another member of the class: a timer under a live lease (in flight) hides nothing either.
    add_timer(service, store, "soon", T0 + timedelta(seconds=30))
    (soon,) = outbox.claim_timers(T0 + timedelta(seconds=30), timedelta(hours=2), 10)
    assert soon.key == "soon"
    assert outbox.next_due(T0) == timedelta(minutes=2).total_seconds()


# -- the fence: a lost claim changes nothing ------------------------------------------------------------------

#: How the claim was lost. "other worker, same attempt" kills a missing `locked_by` condition; "own later
#: claim" kills a missing attempt condition; "expired and taken" is the everyday case (both differ).
LOST = ["other worker, same attempt", "own later claim", "expired and taken"]


@attrs.frozen
class Lost:
    """A row claimed twice: `stale` is the lost claim held by `stale_worker`, `owner` the live one."""

    stale_worker: str
    stale: Any
    owner_worker: str
    owner: Any
    #: When the owner claimed it (its lease runs to `owner_at + LEASE`).
    owner_at: datetime


def lose(store: Store, how: str, claim: Callable[[str, datetime], list[Any]]) -> Lost:
    """Claim one row so that w1's claim is lost in the way `how` says; `claim(worker, now)` claims due rows."""
    if how == "other worker, same attempt":
        (owner,) = claim("w2", T0)
        return Lost("w1", owner, "w2", owner, T0)  # w1 presents attempt 1, which is w2's claim
    (stale,) = claim("w1", T0)
    owner_worker = "w1" if how == "own later claim" else "w2"
    (owner,) = claim(owner_worker, LATER)
    return Lost("w1", stale, owner_worker, owner, LATER)


def lose_effect(store: Store, how: str) -> Lost:
    return lose(store, how, lambda worker, now: store.outbox(worker).claim_effects(now, LEASE, 10))


def lose_timer(store: Store, how: str) -> Lost:
    return lose(store, how, lambda worker, now: store.outbox(worker).claim_timers(now, LEASE, 10))


def assert_owner_completes(store: Store, lost: Lost) -> None:
    """The rightful owner's claim survived the stale worker's attempt."""
    assert store.outbox(lost.owner_worker).complete_effects([lost.owner], LATER) == {lost.owner.id}


def assert_owner_fires(store: Store, lost: Lost) -> None:
    settle(store, SettleKind.TIMER_FIRED, lost.owner, lost.owner_worker)
    assert store.timers("counter", "c") == []


def lease_lost(store: Store, kind: SettleKind, lost: Lost) -> bool:
    """The stale worker's settle raises LeaseLost naming its row."""
    what = "timer" if kind is SettleKind.TIMER_FIRED else "effect"
    with pytest.raises(LeaseLost, match=f"{what} {lost.stale.id}"):
        settle(store, kind, lost.stale, lost.stale_worker)
    return True


#: Each statement that changes a claimed effect, made by the stale worker; True when it reported the loss.
EFFECT_STATEMENTS: dict[str, Callable[[Store, Lost], bool]] = {
    "complete": lambda store, lost: store.outbox(lost.stale_worker).complete_effects([lost.stale], LATER) == set(),
    "retry later": lambda store, lost: (
        not store.outbox(lost.stale_worker).retry_effect_later(lost.stale, T0, timedelta(hours=1), "boom")
    ),
    "dead-letter": lambda store, lost: not store.outbox(lost.stale_worker).mark_dead(lost.stale, LATER, "gave up"),
    # A heartbeat that lost its claim must not hand out a new lease end.
    "heartbeat": lambda store, lost: (
        store.outbox(lost.stale_worker).heartbeat(lost.stale, T0, timedelta(hours=1)) is None
    ),
    "release": lambda store, lost: store.outbox(lost.stale_worker).release_effects([lost.stale], LATER) == set(),
    "settle done": lambda store, lost: lease_lost(store, SettleKind.EFFECT_DONE, lost),
    "settle dead": lambda store, lost: lease_lost(store, SettleKind.EFFECT_DEAD, lost),
}

TIMER_STATEMENTS: dict[str, Callable[[Store, Lost], bool]] = {
    "fire": lambda store, lost: lease_lost(store, SettleKind.TIMER_FIRED, lost),
    "retry later": lambda store, lost: (
        not store.outbox(lost.stale_worker).retry_timer_later(lost.stale, T0, timedelta(hours=1), "boom")
    ),
    "release": lambda store, lost: store.outbox(lost.stale_worker).release_timers([lost.stale], LATER) == set(),
}


@pytest.mark.parametrize("statement", EFFECT_STATEMENTS)
@pytest.mark.parametrize("how", LOST)
def test_a_lost_effect_claim_changes_nothing(service: WorkflowService, store: Store, how: str, statement: str) -> None:
    add_effects(service)
    lost = lose_effect(store, how)
    before = effect(store, lost.stale.id)
    assert EFFECT_STATEMENTS[statement](store, lost), "the loss was not reported"
    assert effect(store, lost.stale.id) == before
    assert_owner_completes(store, lost)


@pytest.mark.parametrize("how", LOST)
def test_a_lost_claim_in_a_batch_completes_only_the_held_ones(service: WorkflowService, store: Store, how: str) -> None:
    add_effects(service)
    lost = lose_effect(store, how)
    other_id = add_effects(service)[0]
    # While the owner's lease runs, only the new row is due.
    (held,) = store.outbox(lost.stale_worker).claim_effects(lost.owner_at + LEASE / 2, LEASE, 10)
    assert held.id == other_id
    before = effect(store, lost.stale.id)
    assert store.outbox(lost.stale_worker).complete_effects([lost.stale, held], LATER) == {other_id}
    assert effect(store, lost.stale.id) == before
    assert effect(store, other_id).status == "done"
    assert_owner_completes(store, lost)


@pytest.mark.parametrize("statement", TIMER_STATEMENTS)
@pytest.mark.parametrize("how", LOST)
def test_a_lost_timer_claim_changes_nothing(service: WorkflowService, store: Store, how: str, statement: str) -> None:
    add_timer(service, store)
    lost = lose_timer(store, how)
    before = store.timers("counter", "c")
    assert TIMER_STATEMENTS[statement](store, lost), "the loss was not reported"
    assert store.timers("counter", "c") == before
    # TimerInfo does not show the lease; the owner's firing does: it fails if the stale statement took the claim.
    assert_owner_fires(store, lost)
