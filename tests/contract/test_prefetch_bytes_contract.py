"""The outbox port's byte bound on both stores: claims stop where payload bytes would pass `max_bytes`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ironflow_py import ManualClock, WorkflowService
from ironflow_py.store.base import Store
from tests.bulky_app import Bulky, Ship

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LEASE = timedelta(minutes=1)


def test_claims_stop_at_the_byte_bound_and_an_idle_worker_still_takes_one(store: Store) -> None:
    WorkflowService(store, workflows=[Bulky], clock=ManualClock(T0)).execute(Ship("s1", 3, 1000))
    outbox = store.outbox("w")
    (size,) = {c.size for c in outbox.claim_effects(T0, LEASE, 1)}  # claim one to learn a payload's size
    assert 1000 < size < 1100  # the JSON text of the payload, in bytes
    later = T0 + LEASE  # that claim's lease is over: all three are due again
    assert len(outbox.claim_effects(later, LEASE, 10, 2 * size + 10, always_one=False)) == 2
    again = later + LEASE
    assert outbox.claim_effects(again, LEASE, 10, size - 1, always_one=False) == []  # nothing fits
    assert len(outbox.claim_effects(again, LEASE, 10, size - 1)) == 1  # but an idle worker takes one
    assert len(outbox.claim_effects(again + LEASE, LEASE, 10)) == 3  # no bound: rows alone
