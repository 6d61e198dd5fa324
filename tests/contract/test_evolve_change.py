"""An `evolve` fix that keeps the state's shape (no `state_version` bump) on both stores: decisions and
`service.state()` rebuild the same way, so they agree; `verify_snapshots` finds the snapshots the old
`evolve` wrote, and replacing them brings both to the fixed fold, even in a process whose state cache was
filled from a stale snapshot."""

from __future__ import annotations

import attrs
import pytest

from ironflow_py import WorkflowService
from ironflow_py.store.base import Store
from ironflow_py.upgrade import SnapshotStatus, verify_snapshots
from tests.snapshot_workflows import SnappyCounter
from tests.workflows import Add, Added, CounterState


class BuggyCounter(SnappyCounter):
    """Counts every add twice in `adds` (the bug); snapshots every 3 events."""

    def evolve(self, state: CounterState, event: object) -> CounterState:
        if isinstance(event, Added):
            return CounterState(event.total, state.finished, state.adds + 2)
        return super().evolve(state, event)  # type: ignore[arg-type]


class FixedCounter(SnappyCounter):
    """The fix: one per add. Same state shape, same `state_version`."""


def deploy(store: Store, workflow: type[SnappyCounter], cache: int) -> WorkflowService:
    return WorkflowService(store, workflows=[workflow], state_cache_size=cache)


@pytest.mark.parametrize("cache", [0, 10], ids=["cold", "warm"])
def test_after_an_evolve_fix_decisions_and_state_agree_and_verify_reports_the_stale_snapshots(
    store: Store, cache: int
) -> None:
    old = deploy(store, BuggyCounter, cache)
    for wid, adds in (("c1", 4), ("c2", 3), ("c3", 2)):  # c1, c2: snapshot at 3; c3: none
        for _ in range(adds):
            old.execute(Add(wid, 1))
    new = deploy(store, FixedCounter, cache)
    # The same rebuild path: the state a read returns is the state the next decision starts from.
    read = new.state("snappy", "c1")
    decided = new.execute(Add("c1", 1)).state
    assert read == CounterState(total=4, adds=7)  # snapshot (old evolve: 6) + one fixed fold
    assert decided == attrs.evolve(read, total=5, adds=8)
    assert new.state("snappy", "c1") == decided

    checks = {c.workflow_id: c for c in verify_snapshots(new, "snappy")}
    assert sorted(checks) == ["c1", "c2"]
    assert checks["c2"].status is SnapshotStatus.MISMATCH and checks["c2"].detail == "fields differ: adds"
    assert not checks["c2"].dropped
    # c1 decided once more under the new code, but still folds from the stale snapshot at 3.
    assert checks["c1"].status is SnapshotStatus.MISMATCH

    dropped = {
        c.workflow_id for c in verify_snapshots(deploy(store, FixedCounter, 0), "snappy", drop=True) if c.dropped
    }
    assert dropped == {"c1", "c2"}
    after = {c.workflow_id: (c.status, c.seq) for c in verify_snapshots(new, "snappy")}
    assert after == {"c1": (SnapshotStatus.OK, 5), "c2": (SnapshotStatus.OK, 3)}  # replaced at the last event
    # The running service (warm: its cache was filled from the stale snapshot) sees the fix without a restart.
    assert new.state("snappy", "c2") == CounterState(total=3, adds=3)
    assert new.execute(Add("c2", 1)).state == CounterState(total=4, adds=4)
    assert new.state("snappy", "c1") == CounterState(total=5, adds=5)
    assert new.execute(Add("c1", 1)).state == CounterState(total=6, adds=6)


def test_verify_reports_snapshots_of_another_state_version_and_matching_ones(store: Store) -> None:
    service = deploy(store, SnappyCounter, 0)
    for _ in range(3):
        service.execute(Add("c1", 1))

    class Bumped(SnappyCounter):
        state_version = 2

    assert [(c.workflow_id, c.status) for c in verify_snapshots(service, "snappy")] == [("c1", SnapshotStatus.OK)]
    bumped = deploy(store, Bumped, 0)
    checks = list(verify_snapshots(bumped, "snappy", drop=True))
    assert [(c.workflow_id, c.status, c.dropped) for c in checks] == [("c1", SnapshotStatus.OTHER_VERSION, False)]
