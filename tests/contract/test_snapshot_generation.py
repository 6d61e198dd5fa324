"""The snapshot generation on the instance row (migration 020, design/snapshots.md "The warm path"), on both
stores: a warm state cache reads no snapshot while the generation it was checked against holds, and every
change of the snapshot row (a decision of another process, a replacement, a drop, an edit) makes it look
again and drop a state that may come from a snapshot that is gone."""

from __future__ import annotations

import pytest

from ironflow_py import WorkflowService
from ironflow_py.store.base import Store
from tests.contract.test_evolve_change import BuggyCounter, FixedCounter
from tests.snapshot_workflows import SnappyCounter, plant_snapshot
from tests.version_workflows import CountingStore
from tests.workflows import Add, CounterState


def test_a_warm_cache_reads_no_snapshot_while_the_generation_holds(store: Store) -> None:
    counting = CountingStore(store)
    service = WorkflowService(counting, workflows=[SnappyCounter])
    for _ in range(10):  # snapshots at 3, 6 and 9, each written by this process
        service.execute(Add("c1", 1))
    assert [loaded.snapshot for loaded in counting.loads] == [None] * 10
    # Each decision after the first read only its cached event and nothing older.
    assert [[e.seq for e in loaded.events] for loaded in counting.loads[1:]] == [[n] for n in range(1, 10)]
    assert counting.loads[-1].snapshot_gen == 3  # three snapshot writes counted
    assert service.state("snappy", "c1") == CounterState(total=10, adds=10)
    assert counting.loads[-1].snapshot is None and counting.replays == []


def test_a_cold_or_unknown_generation_reads_the_snapshot(store: Store) -> None:
    writer = WorkflowService(store, workflows=[SnappyCounter], state_cache_size=0)
    for _ in range(4):
        writer.execute(Add("c1", 1))
    counting = CountingStore(store)
    cold = WorkflowService(counting, workflows=[SnappyCounter], state_cache_size=0)
    assert cold.state("snappy", "c1") == CounterState(total=4, adds=4)
    loaded = counting.loads[-1]
    assert loaded.snapshot is not None and loaded.snapshot.seq == 3 and [e.seq for e in loaded.events] == [4]


def test_another_process_writing_a_snapshot_moves_a_warm_cache_to_it(store: Store) -> None:
    counting = CountingStore(store)
    warm = WorkflowService(counting, workflows=[SnappyCounter])
    other = WorkflowService(store, workflows=[SnappyCounter], state_cache_size=0)
    warm.execute(Add("c1", 1))
    for _ in range(3):  # seq 2..4: the snapshot at 3 is the other process's
        other.execute(Add("c1", 1))
    before = len(counting.loads)
    assert warm.execute(Add("c1", 1)).state == CounterState(total=5, adds=5)
    assert len(counting.loads) == before + 1  # the changed generation made lock_and_load read the snapshot
    loaded = counting.loads[-1]
    assert loaded.snapshot is not None and loaded.snapshot.seq == 3 and [e.seq for e in loaded.events] == [4]
    warm.execute(Add("c1", 1))  # its generation is known again: no snapshot read
    assert counting.loads[-1].snapshot is None and [e.seq for e in counting.loads[-1].events] == [5]


@pytest.mark.parametrize("change", ["drop", "edit"])
def test_a_warm_state_from_a_snapshot_that_changed_is_dropped(store: Store, change: str) -> None:
    """The class: whatever changes the snapshot row under a warm cache (here a drop through the transaction
    API, and an operator's edit that counts the generation as the docs say), the cached state derived from
    the old snapshot is not served again."""
    old = WorkflowService(store, workflows=[BuggyCounter], state_cache_size=0)
    for _ in range(4):  # the buggy snapshot at 3 says adds=6
        old.execute(Add("c1", 1))
    warm = WorkflowService(store, workflows=[FixedCounter])
    assert warm.state("snappy", "c1") == CounterState(total=4, adds=7)  # cached: from the stale snapshot
    if change == "drop":
        with store.locked("snappy", "c1") as tx:
            assert tx.drop_snapshot(3)
    else:
        plant_snapshot(store, "c1", 3, FixedCounter.state_version, {"total": 3, "finished": False, "adds": 3})
    assert warm.state("snappy", "c1") == CounterState(total=4, adds=4)
    assert warm.execute(Add("c1", 1)).state == CounterState(total=5, adds=5)
