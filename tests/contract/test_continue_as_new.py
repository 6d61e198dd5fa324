"""Continue-as-new on both stores: one decision ends a run and starts the next of the same id; later
decisions load nothing from earlier runs; waiters follow the chain (or stop at the run they asked for)."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest

from ironflow_py import ContinuedAsNew, DecideFailed, Decision, WorkflowService
from ironflow_py.lifecycle import Completed, RunContinued
from ironflow_py.store.base import Store
from tests.version_workflows import CloseLedger, CountingStore, Deposit, Deposited, Ledger, LedgerState


def test_the_continuing_decision_writes_its_events_the_marker_a_snapshot_and_starts_the_next_run(
    store: Store,
) -> None:
    service = WorkflowService(store, workflows=[Ledger])
    service.execute(Deposit("l1", 5))
    service.execute(Deposit("l1", 5))
    outcome = service.execute(Deposit("l1", 5))  # the third deposit continues the run
    assert [e.event for e in outcome.events] == [Deposited(5), RunContinued(1)]
    assert [e.seq for e in outcome.events] == [3, 4]
    info = store.instance("ledger", "l1")
    assert info is not None and info.status.value == "running"
    assert (info.run, info.run_start, info.last_seq) == (2, 5, 4)
    snap = store.latest_snapshot("ledger", "l1")
    assert snap is not None and snap.seq == 4 and snap.data["balance"] == 15
    history = service.history("ledger", "l1")
    assert [e.type_name for e in history][-1] == "ironflow.run_continued/1"
    # The state carries over: the next run starts from the snapshot, and the marker never reached evolve.
    assert service.state("ledger", "l1") == LedgerState(balance=15, deposits=3)


@pytest.mark.parametrize("cache", [0, 10_000], ids=["cold", "warm"])
def test_decisions_load_no_event_from_an_earlier_run(store: Store, cache: int) -> None:
    """Ten runs of three deposits: after the first run, every load starts at its run's start (rows counted
    in what the store returned), and the state equals the fold of the whole history."""
    counting = CountingStore(store)
    service = WorkflowService(counting, workflows=[Ledger], state_cache_size=cache)
    for _ in range(30):
        counting.loads.clear()
        before = store.instance("ledger", "l1")
        service.execute(Deposit("l1", 2))
        if before is None:
            continue
        (loaded,) = counting.loads
        assert loaded.run_start == before.run_start
        assert all(e.seq >= before.run_start for e in loaded.events)
        # Rows loaded: at most the run's own events (cold), or the last one that proves the cache (warm).
        assert len(loaded.events) <= before.last_seq - before.run_start + 1
        if before.run > 1 and cache == 0:
            assert loaded.snapshot is not None and loaded.snapshot.seq >= before.run_start - 1
    assert counting.replays == []
    info = store.instance("ledger", "l1")
    assert info is not None and (info.run, info.last_seq) == (11, 40)
    assert service.state("ledger", "l1") == LedgerState(balance=60, deposits=30)
    rows = store.events("ledger", "l1")
    assert sum(e.type_name == "ironflow.run_continued/1" for e in rows) == 10


def test_a_state_version_change_refolds_the_whole_chain_while_its_history_is_kept(store: Store) -> None:
    service = WorkflowService(store, workflows=[Ledger], state_cache_size=0)
    for _ in range(7):
        service.execute(Deposit("l1", 1))

    class LedgerV2State(Ledger):
        state_version = 2

    again = WorkflowService(store, workflows=[LedgerV2State], state_cache_size=0)
    assert again.execute(Deposit("l1", 1)).state == LedgerState(balance=8, deposits=8)


def test_a_decision_that_closes_cannot_also_continue(store: Store) -> None:
    class Both(Ledger):
        def decide(self, now: Any, state: LedgerState, input: Any) -> Decision[Any, Any]:
            return super().decide(now, state, input).continue_as_new()

    service = WorkflowService(store, workflows=[Both])
    service.execute(Deposit("l1", 1))
    with pytest.raises(DecideFailed, match="both closes the instance and continues it"):
        service.execute(CloseLedger("l1"))
    info = store.instance("ledger", "l1")
    assert info is not None and (info.last_seq, info.run) == (2, 2)


def test_wait_follows_the_runs_to_the_final_outcome_or_stops_at_the_run_asked_for(store: Store) -> None:
    service = WorkflowService(store, workflows=[Ledger])
    service.execute(Deposit("l1", 1))
    got: dict[str, object] = {}

    def follow() -> None:
        got["follow"] = service.wait("ledger", "l1", timeout=30, poll_interval=0.05)

    def first_run() -> None:
        got["first"] = service.wait("ledger", "l1", timeout=30, follow_runs=False, run=1, poll_interval=0.05)

    threads = [threading.Thread(target=follow), threading.Thread(target=first_run)]
    for t in threads:
        t.start()
    for _ in range(2):  # run 1 ends at the third deposit
        service.execute(Deposit("l1", 1))
    threads[1].join(30)
    assert got["first"] == ContinuedAsNew(1, 2)
    for _ in range(3):  # run 2 ends at the sixth
        service.execute(Deposit("l1", 1))
    assert "follow" not in got  # still waiting: the id lives on in run 3
    service.execute(CloseLedger("l1"))
    threads[0].join(30)
    assert got["follow"] == Completed(6)
    assert service.wait("ledger", "l1", follow_runs=False, run=2, timeout=5) == ContinuedAsNew(2, 3)
    assert service.wait("ledger", "l1", follow_runs=False, timeout=5) == Completed(6)


def test_continue_as_new_is_refused_on_a_rejection() -> None:
    with pytest.raises(ValueError, match="rejected"):
        Decision.reject("no").continue_as_new()


def test_earlier_runs_are_pruned_after_their_retention_up_to_the_marker(store: Store) -> None:
    """Events before the newest run marker older than `previous_runs` go; decisions are unaffected."""
    from datetime import UTC, datetime, timedelta

    from ironflow_py import ManualClock, RetentionPolicy

    # A fresh id: the pruner only tries instance locks, and other schemas on a shared server share their keys.
    lid = f"l-{uuid.uuid4().hex}"

    clock = ManualClock(datetime(2030, 1, 1, tzinfo=UTC))
    service = WorkflowService(store, workflows=[Ledger], clock=clock)
    for _ in range(3):  # run 1: seqs 1-3, marker at 4
        service.execute(Deposit(lid, 1))
    clock.advance(timedelta(days=40))
    for _ in range(4):  # run 2: seqs 5-7, marker at 8; run 3 starts at 9
        service.execute(Deposit(lid, 1))
    policy = RetentionPolicy(previous_runs=timedelta(days=30))
    assert store.pruner(["never-ran"]).prune_all(policy, clock.now()).runs == 0  # a projection holds it back
    pruner = store.pruner()
    report = pruner.prune_all(policy, clock.now())
    assert (report.runs, report.events) == (1, 3)  # seqs 1-3: the run-1 marker (4) stays
    assert [e.seq for e in store.events("ledger", lid)][:2] == [4, 5]
    assert pruner.prune_all(policy, clock.now()).runs == 0  # nothing more is due
    clock.advance(timedelta(days=40))
    assert pruner.prune_all(policy, clock.now()).events == 4  # seqs 4-7, up to the run-2 marker
    cold = WorkflowService(store, workflows=[Ledger], state_cache_size=0)
    assert cold.execute(Deposit(lid, 1)).state == LedgerState(balance=8, deposits=8)
    assert cold.state("ledger", lid) == LedgerState(balance=8, deposits=8)


def test_the_async_wait_stops_at_a_continued_run_too(store: Store) -> None:
    import asyncio

    from ironflow_py.aio import AsyncWorkflowService

    service = WorkflowService(store, workflows=[Ledger])
    for _ in range(3):
        service.execute(Deposit("l1", 1))
    waiter = AsyncWorkflowService(service)
    got = asyncio.run(waiter.wait("ledger", "l1", follow_runs=False, run=1, timeout=5))
    assert got == ContinuedAsNew(1, 2)


def test_the_lock_free_read_of_a_replica_loads_only_the_current_run_and_picks_the_version(store: Store) -> None:
    """`Store.reading` (a replica's state read) applies the run start and the recorded version as the
    locked load does."""
    from tests.version_workflows import OrderV1, OrderV2, Place

    service = WorkflowService(store, workflows=[Ledger], state_cache_size=0)
    for _ in range(7):  # runs 1 and 2 end at seqs 4 and 8; run 3 starts at 9
        service.execute(Deposit("l1", 1))
    with store.reading("ledger", "l1") as reader:
        loaded = reader.load()
        assert (loaded.run, loaded.run_start) == (3, 9)
        assert loaded.snapshot is not None and loaded.snapshot.seq == 8
        assert [e.seq for e in loaded.events] == [9]
    handler = service.registration("ledger").handler
    assert handler.read_unlocked(store, "l1").state == LedgerState(balance=7, deposits=7)
    WorkflowService(store, workflows=[OrderV1]).execute(Place("o1", 10))
    both = WorkflowService(store, workflows=[OrderV1, OrderV2])
    assert both.registration("vorder").handler.read_unlocked(store, "o1").state.folded_by == "1"
