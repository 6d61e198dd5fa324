"""The lock-free read a replica serves, on both stores: `Store.reading` folds to the state the locked read
and the next decision see; `min_lsn` is checked before any read; no replica, no WAL position. The real
standby is tests/reliability/test_read_replica.py."""

from __future__ import annotations

import asyncio
import logging

import pytest

from ironflow_py import MemoryStore, PostgresStore, StoreError, ValueRefused, WorkflowService
from ironflow_py.aio import AsyncWorkflowService
from ironflow_py.store.base import Store
from tests.contract.test_evolve_change import BuggyCounter, FixedCounter
from tests.snapshot_workflows import SnappyCounter
from tests.workflows import Add, CounterState


@pytest.mark.parametrize("cache", [0, 10], ids=["cold", "warm"])
def test_the_lock_free_read_folds_as_the_locked_read_and_the_next_decision(store: Store, cache: int) -> None:
    old = WorkflowService(store, workflows=[BuggyCounter], state_cache_size=cache)
    for _ in range(5):
        old.execute(Add("c1", 1))  # a snapshot at 3 written by the buggy evolve, two events after it
    service = WorkflowService(store, workflows=[FixedCounter], state_cache_size=cache)
    handler = service.registration("snappy").handler
    locked = handler.read("c1")
    unlocked = handler.read_unlocked(store, "c1")
    assert (unlocked.state, unlocked.seq) == (locked.state, locked.seq) == (CounterState(5, adds=8), 5)
    assert service.execute(Add("c1", 1)).state == CounterState(6, adds=9)
    assert handler.read_unlocked(store, "c1").state == CounterState(6, adds=9)
    assert handler.read_unlocked(store, "nobody").seq == 0


def test_reading_sees_one_view_of_the_instance(store: Store) -> None:
    service = WorkflowService(store, workflows=[SnappyCounter])
    for _ in range(4):
        service.execute(Add("c1", 1))
    with store.reading("snappy", "c1") as reader:
        loaded = reader.load(with_snapshot=True)
        assert loaded.snapshot is not None and loaded.snapshot.seq == 3
        assert [e.seq for e in loaded.events] == [4]
        assert [e.seq for e in reader.events_after(0)] == [1, 2, 3, 4]
        assert [e.seq for e in reader.load(after_seq=2).events] == [3, 4]


def test_a_bad_min_lsn_is_refused_naming_the_instance(store: Store) -> None:
    service = WorkflowService(store, workflows=[SnappyCounter])
    service.execute(Add("c1", 1))
    for bad in ("", "12", "0/3000148; SELECT 1", "G/1"):
        with pytest.raises(ValueRefused, match="min_lsn") as caught:
            service.state("snappy", "c1", min_lsn=bad)
        assert caught.value.workflow_id == "c1"
    assert service.state("snappy", "c1", min_lsn="0/0") == CounterState(1, adds=1)


def test_without_a_replica_there_is_no_wal_position_and_min_lsn_costs_nothing(store: Store) -> None:
    service = WorkflowService(store, workflows=[SnappyCounter])
    outcome = service.execute(Add("c1", 1))
    assert outcome.wal_position is None
    assert service.read_store is store and not service.reads_replica
    assert service.history("snappy", "c1", min_lsn="FFFFFFFF/FFFFFFFF")[0].seq == 1  # the primary has it all


def test_a_read_store_on_the_primary_itself_answers_every_min_lsn_at_once(store: Store, pg_url: str) -> None:
    """A second store on the same server (what a misconfigured replica URL gives): replay is not waited
    for on a server that is not in recovery, and `execute` reports rising WAL positions."""
    if isinstance(store, MemoryStore):
        reads: Store = MemoryStore()
        service = WorkflowService(store, workflows=[SnappyCounter], read_store=reads)
        assert service.execute(Add("c1", 1)).wal_position is None
        return
    assert isinstance(store, PostgresStore)
    with PostgresStore.connect(pg_url, schema=store.schema) as reads_pg:
        service = WorkflowService(store, workflows=[SnappyCounter], read_store=reads_pg, replica_timeout=0)
        first = service.execute(Add("c1", 1)).wal_position
        second = service.execute(Add("c1", 1)).wal_position
        assert first is not None and second is not None
        assert _lsn(second) > _lsn(first)
        assert service.state("snappy", "c1", min_lsn=second) == CounterState(2, adds=2)
        assert service.state("snappy", "c1", min_lsn="FFFFFFFF/FFFFFFFF") == CounterState(2, adds=2)


def _lsn(text: str) -> int:
    high, low = text.split("/")
    return (int(high, 16) << 32) | int(low, 16)


def test_the_async_service_passes_min_lsn_through(store: Store) -> None:
    service = WorkflowService(store, workflows=[SnappyCounter])
    service.execute(Add("c1", 1))
    aio = AsyncWorkflowService(service)

    async def reads() -> None:
        assert await aio.state("snappy", "c1", min_lsn="0/0") == CounterState(1, adds=1)
        assert [e.seq for e in await aio.history("snappy", "c1", min_lsn="0/0")] == [1]
        assert [r.workflow_id for r in await aio.list_instances("snappy", min_lsn="0/0")] == ["c1"]
        assert await aio.result("snappy", "c1", min_lsn="0/0") is None
        with pytest.raises(ValueRefused):
            await aio.state("snappy", "c1", min_lsn="not a position")

    asyncio.run(reads())


class _PositionLost(MemoryStore):
    """A primary that commits, then cannot be asked for its WAL position (the connection dropped after COMMIT)."""

    def wal_position(self) -> None:
        raise StoreError("OperationalError: the connection was lost")


def test_an_unreadable_wal_position_after_the_commit_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    """The input is applied by then: an exception would read as "nothing written" and invite a duplicate."""
    primary = _PositionLost()
    service = WorkflowService(primary, workflows=[SnappyCounter], read_store=MemoryStore())
    with caplog.at_level(logging.WARNING, logger="ironflow_py"):
        outcome = service.execute(Add("c1", 1))
    assert outcome.status.value == "accepted" and outcome.wal_position is None
    assert len(primary.events("snappy", "c1")) == 1
    assert any("wal_position_unavailable" in r.getMessage() for r in caplog.records)
