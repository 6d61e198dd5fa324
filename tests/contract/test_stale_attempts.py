"""Stale attempts never win: a claim is named by a token that never repeats, so after `dead-letters retry`
reset the attempt count and the same worker id claimed the row again, the stale attempt's settle,
heartbeat, retry and release all fail and the fresh attempt's result is applied (design/reliability.md,
class 4). Both stores."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ironflow_py import LeaseLost, ManualClock, MemoryStore, WorkflowService
from ironflow_py.store import postgres_admin
from ironflow_py.store.base import EffectClaim, Settle, SettleKind, Store
from ironflow_py.store.postgres import PostgresStore
from tests.workflows import Add, Counter

T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
LEASE = timedelta(minutes=1)


@pytest.fixture
def service(store: Store) -> WorkflowService:
    return WorkflowService(store, workflows=[Counter], clock=ManualClock(T0))


def revive(store: Store, effect_id: int, now: datetime) -> None:
    """What an operator's `ironflow-py dead-letters retry ID` does: pending again, attempts reset to 0."""
    if isinstance(store, MemoryStore):
        assert store.retry_dead_letter(effect_id, now)
    else:
        assert isinstance(store, PostgresStore)
        assert postgres_admin.retry_dead_letter(store, effect_id, now)


def stale_and_fresh(service: WorkflowService, store: Store) -> tuple[EffectClaim, EffectClaim]:
    """The issue's sequence: w1's slow call outlives its lease; w2 dead-letters the row; an operator
    retries it; w1 claims it again. Both of w1's claims say attempt 1."""
    (effect_id,) = service.execute(Add("c", 1)).effect_ids
    (stale,) = store.outbox("w1").claim_effects(T0, LEASE, 10)
    (second,) = store.outbox("w2").claim_effects(T0 + 2 * LEASE, LEASE, 10)
    assert store.outbox("w2").mark_dead(second, T0 + 2 * LEASE, "card declined")
    revive(store, effect_id, T0 + 3 * LEASE)
    (fresh,) = store.outbox("w1").claim_effects(T0 + 3 * LEASE, LEASE, 10)
    assert (stale.id, stale.attempt) == (fresh.id, fresh.attempt) == (effect_id, 1), "the attempt repeats"
    assert stale.token != fresh.token, "the token does not"
    return stale, fresh


def done(claim: EffectClaim) -> Settle:
    return Settle(SettleKind.EFFECT_DONE, claim.id, "w1", claim.token, T0 + 3 * LEASE)


def test_a_stale_settle_after_a_retry_gets_lease_lost_and_the_fresh_result_is_applied(
    service: WorkflowService, store: Store
) -> None:
    """The issue's first run: the stale price (999999) must not be applied, the fresh one (120) must."""
    stale, fresh = stale_and_fresh(service, store)
    with pytest.raises(LeaseLost):
        service.execute(Add("c", 999_999), settle=done(stale))
    service.execute(Add("c", 120), settle=done(fresh))
    assert service.state("counter", "c").total == 1 + 120
    assert next(e.status for e in store.effects("counter", "c")) == "done"


def test_a_stale_attempt_cannot_kill_the_row_after_the_fresh_one_settled(
    service: WorkflowService, store: Store
) -> None:
    """The issue's second run, reversed order: the fresh result lands first; the stale attempt's dead mark
    (plain or with a dead-letter input) changes nothing."""
    stale, fresh = stale_and_fresh(service, store)
    service.execute(Add("c", 120), settle=done(fresh))
    outbox = store.outbox("w1")
    assert not outbox.mark_dead(stale, T0, "timeout")
    dead = Settle(SettleKind.EFFECT_DEAD, stale.id, "w1", stale.token, T0, "timeout")
    with pytest.raises(LeaseLost):
        service.execute(Add("c", 999_999), settle=dead)
    row = store.effects("counter", "c")[0]
    assert (row.status, row.last_error) == ("done", "card declined")
    assert service.state("counter", "c").total == 121


def test_every_fenced_call_of_a_stale_attempt_is_refused_while_the_fresh_claim_holds(
    service: WorkflowService, store: Store
) -> None:
    stale, fresh = stale_and_fresh(service, store)
    outbox = store.outbox("w1")
    assert outbox.heartbeat(stale, T0, 10 * LEASE) is None
    assert not outbox.retry_effect_later(stale, T0, 10 * LEASE, "boom")
    assert outbox.release_effects([stale], T0) == set()
    assert outbox.complete_effects([stale], T0) == set()
    row = store.effects("counter", "c")[0]
    assert (row.status, row.attempts, row.locked_by) == ("pending", 1, "w1")
    assert outbox.heartbeat(fresh, T0, 10 * LEASE) == T0 + 10 * LEASE
    assert outbox.complete_effects([fresh], T0) == {fresh.id}
