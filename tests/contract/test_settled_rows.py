"""A row its own claim has already settled (done or dead) cannot be changed again through that claim, on both
stores: a worker that feeds back twice (say after an unknown commit outcome) applies its input once.

The claim is still this worker's and the attempt number still matches, so only the status condition of each
fenced statement stands between a second settle and a second application (test_outbox_contract covers the
owner and attempt conditions).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ironflow_py import LeaseLost, ManualClock, WorkflowService
from ironflow_py.store.base import EffectClaim, Settle, SettleKind, Store
from tests.workflows import Add, Counter

T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
LEASE = timedelta(minutes=1)


@pytest.fixture
def service(store: Store) -> WorkflowService:
    return WorkflowService(store, workflows=[Counter], clock=ManualClock(T0))


def claimed(service: WorkflowService, store: Store) -> EffectClaim:
    service.execute(Add("c", 1))
    (claim,) = store.outbox("w1").claim_effects(T0, LEASE, 10)
    return claim


def settle(kind: SettleKind, claim: EffectClaim) -> Settle:
    return Settle(kind, claim.id, "w1", claim.attempt, T0, "gave up" if kind is SettleKind.EFFECT_DEAD else None)


@pytest.mark.parametrize("first", [SettleKind.EFFECT_DONE, SettleKind.EFFECT_DEAD])
@pytest.mark.parametrize("again", [SettleKind.EFFECT_DONE, SettleKind.EFFECT_DEAD])
def test_a_settled_row_is_not_settled_again_and_the_second_input_applies_nothing(
    service: WorkflowService, store: Store, first: SettleKind, again: SettleKind
) -> None:
    claim = claimed(service, store)
    service.execute(Add("c", 10), settle=settle(first, claim))
    status = "done" if first is SettleKind.EFFECT_DONE else "dead"
    with pytest.raises(LeaseLost, match=f"effect {claim.id}"):
        service.execute(Add("c", 100), settle=settle(again, claim))
    assert service.state("counter", "c").total == 11, "the second feedback was not applied"
    assert [e.status for e in store.effects("counter", "c") if e.id == claim.id] == [status]


def test_a_done_row_takes_no_more_outbox_changes_through_its_claim(service: WorkflowService, store: Store) -> None:
    claim = claimed(service, store)
    outbox = store.outbox("w1")
    assert outbox.complete_effects([claim], T0) == {claim.id}
    assert outbox.complete_effects([claim], T0) == set()
    assert outbox.retry_effect_later(claim, T0, LEASE, "late failure") is False
    assert outbox.mark_dead(claim, T0, "late failure") is False
    assert outbox.heartbeat(claim, T0, LEASE) is None
    assert outbox.release_effects([claim], T0) == set()
    (row,) = [e for e in store.effects("counter", "c") if e.id == claim.id]
    assert (row.status, row.last_error) == ("done", None)
