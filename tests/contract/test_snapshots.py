"""Snapshots on both stores: written every N events, used on a cold start, never trusted when stale."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ironflow_py import MemoryStore, WorkflowService
from ironflow_py.codec import loads
from ironflow_py.store.base import Loaded, LoadedEvent, Store
from ironflow_py.testing import WorkflowSpec
from tests.snapshot_workflows import SnappyCounter, plant_snapshot
from tests.workflows import Add, Added, CounterEvent, CounterState, Schedule

T0 = datetime(2030, 1, 1, tzinfo=UTC)


def cold(store: Store) -> WorkflowService:
    """A service with no state cache: every decision rebuilds from the store, like a fresh process."""
    return WorkflowService(store, workflows=[SnappyCounter], state_cache_size=0)


def test_snapshot_is_written_every_n_events_in_the_deciding_transaction(store: Store) -> None:
    service = cold(store)
    for _ in range(2):
        service.execute(Add("c1", 5))
    assert store.latest_snapshot("snappy", "c1") is None
    service.execute(Add("c1", 5))
    snap = store.latest_snapshot("snappy", "c1")
    assert snap is not None and (snap.seq, snap.state_version) == (3, 1)
    assert snap.data == {"total": 15, "finished": False, "adds": 3}
    for _ in range(4):
        service.execute(Add("c1", 1))
    snap = store.latest_snapshot("snappy", "c1")
    assert snap is not None and snap.seq == 6 and snap.data["total"] == 18


def test_a_warm_service_snapshots_every_n_events_too(store: Store) -> None:
    """With the state cache on, a snapshot at the cached sequence must not force a full replay (which
    rewrote the snapshot on every later decision)."""
    service = WorkflowService(store, workflows=[SnappyCounter])
    for _ in range(8):
        service.execute(Add("c1", 1))
    snap = store.latest_snapshot("snappy", "c1")
    assert snap is not None and (snap.seq, snap.data["total"]) == (6, 6)
    assert service.execute(Add("c1", 1)).state == CounterState(total=9, adds=9)
    assert service.state("snappy", "c1") == CounterState(total=9, adds=9)


def test_a_state_cached_before_any_event_is_not_mistaken_for_a_stale_one(store: Store) -> None:
    """A first decision that appends nothing leaves a cached state at sequence 0; the next decision must not
    read that as a vanished history (a full replay that also forced a snapshot after one event)."""
    service = WorkflowService(store, workflows=[SnappyCounter])
    service.execute(Schedule("c1", "later", T0))  # accepted, no events
    service.execute(Add("c1", 1))
    assert store.latest_snapshot("snappy", "c1") is None
    for _ in range(2):
        service.execute(Add("c1", 1))
    snap = store.latest_snapshot("snappy", "c1")
    assert snap is not None and snap.seq == 3


def test_cold_rebuild_uses_the_snapshot_and_folds_only_the_tail(store: Store) -> None:
    service = cold(store)
    for _ in range(4):
        service.execute(Add("c1", 1))
    # A planted snapshot with a different count proves the engine starts from it rather than replaying.
    plant_snapshot(store, "c1", 3, 1, {"total": 3, "finished": False, "adds": 50})
    outcome = service.execute(Add("c1", 1))
    assert outcome.state == CounterState(total=5, adds=52)


@pytest.mark.parametrize(
    ("version", "data"),
    [(2, {"total": 100, "finished": False, "adds": 3}), (1, {"total": "not a number", "adds": None})],
    ids=["other-version", "undecodable"],
)
def test_stale_or_broken_snapshot_is_ignored_and_replaced(store: Store, version: int, data: object) -> None:
    service = cold(store)
    for _ in range(4):
        service.execute(Add("c1", 1))
    plant_snapshot(store, "c1", 3, version, data)
    outcome = service.execute(Add("c1", 1))
    assert outcome.state == CounterState(total=5, adds=5), "full replay, the snapshot was not trusted"
    snap = store.latest_snapshot("snappy", "c1")
    assert snap is not None and (snap.seq, snap.state_version) == (5, 1)
    assert snap.data == {"total": 5, "finished": False, "adds": 5}


@settings(max_examples=40, deadline=None)
@given(amounts=st.lists(st.integers(-1000, 1000), min_size=1, max_size=30), every=st.integers(1, 7))
def test_engine_state_from_snapshot_plus_tail_equals_full_fold(amounts: list[int], every: int) -> None:
    """The engine's rebuild from the stored snapshot and only the events after it gives the full fold.
    The rebuild is given no earlier event, so a snapshot it ignored would fail the test."""

    class Every(SnappyCounter):
        snapshot_every = every

    store = MemoryStore()
    for amount in amounts:
        WorkflowService(store, workflows=[Every], state_cache_size=0).execute(Add("c1", amount))
    full = Every().fold(CounterState(), [Added(a, sum(amounts[: i + 1])) for i, a in enumerate(amounts)])
    snap = store.latest_snapshot("snappy", "c1")
    assert (snap is None) == (len(amounts) < every)
    if snap is not None:
        assert snap.seq == len(amounts) - len(amounts) % every
        tail = [LoadedEvent(e.seq, e.type_name, e.data) for e in store.events("snappy", "c1") if e.seq > snap.seq]
        decider = cold(store).registration("snappy").decider
        origin = decider.origin("c1", Loaded(tail, None, snap))
        assert origin.events is not None, f"the engine ignored a valid snapshot: {origin.snapshot_problem}"
        rebuilt = decider.rebuild("c1", origin, origin.events)
        assert (rebuilt.state, rebuilt.seq) == (full, len(amounts))
    assert cold(store).execute(Add("c1", 0)).state == Every().evolve(full, Added(0, full.total))


def test_a_decision_without_events_replaces_an_ignored_snapshot(store: Store) -> None:
    """A snapshot of another state version is not only skipped but rewritten by the next decision, even
    one that appends no event, so later cold starts stop replaying the whole history."""
    service = cold(store)
    for _ in range(4):
        service.execute(Add("c1", 1))
    plant_snapshot(store, "c1", 3, 2, {"total": 100, "finished": False, "adds": 3})
    service.execute(Schedule("c1", "later", T0))  # accepted, no events
    snap = store.latest_snapshot("snappy", "c1")
    assert snap is not None and (snap.seq, snap.state_version) == (4, 1)
    assert snap.data == {"total": 4, "finished": False, "adds": 4}


@given(amounts=st.lists(st.integers(-(2**31), 2**31), max_size=40), split=st.integers(0, 40))
def test_snapshot_codec_plus_tail_equals_full_fold(amounts: list[int], split: int) -> None:
    wf = SnappyCounter()
    codec = WorkflowSpec(wf).codec
    codec.state_type = CounterState
    events = [Added(a, sum(amounts[: i + 1])) for i, a in enumerate(amounts)]
    k = min(split, len(events))
    head = wf.fold(wf.initial_state(), events[:k])
    restored = codec.decode_state(loads(codec.encode_state(head, "c1")), "c1", k)
    assert wf.fold(restored, events[k:]) == wf.fold(wf.initial_state(), events)


class Counting(SnappyCounter):
    """SnappyCounter that counts its `evolve` calls (one instance per test example)."""

    def __init__(self) -> None:
        self.evolved = 0

    @classmethod
    def every(cls, n: int) -> Counting:
        """An instance of a subclass that snapshots every `n` events (the workflow's own rule, not a copy)."""
        return type(f"Counting{n}", (cls,), {"snapshot_every": n})()  # type: ignore[no-any-return]

    def evolve(self, state: CounterState, event: CounterEvent) -> CounterState:
        self.evolved += 1
        return super().evolve(state, event)


_examples = itertools.count()

#: One decision: ("add", instance) appends one event, ("schedule", instance) appends none, ("restart", _) starts
#: a new service (an empty state cache, as in a fresh process).
Op = tuple[str, int]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    ops=st.lists(
        st.tuples(st.sampled_from(["add", "add", "add", "schedule", "restart"]), st.integers(0, 2)), max_size=40
    ),
    every=st.integers(1, 6),
    cache=st.booleans(),
)
def test_evolve_calls_and_snapshot_writes_are_what_the_rules_say(
    store: Store, ops: list[Op], every: int, cache: bool
) -> None:
    """Through the engine, on both stores, with the cache on and off: a decision folds only what it has not
    seen (a warm cache: nothing; a cold start: the events after the newest snapshot) plus its own events, and
    a snapshot is written exactly when `snapshot_every` events have passed since the last one."""
    workflow = Counting.every(every)
    example = next(_examples)
    ids = [f"p{example}-{i}" for i in range(3)]

    def service() -> WorkflowService:
        return WorkflowService(store, workflows=[workflow], state_cache_size=10_000 if cache else 0)

    current = service()
    # The model: per instance, its last seq, the newest snapshot's seq, and whether this service has it cached.
    last = dict.fromkeys(ids, 0)
    snap = dict.fromkeys(ids, 0)
    warm: set[str] = set()
    expected_evolve = expected_writes = writes = 0
    for op, which in ops:
        wid = ids[which]
        if op == "restart":
            current, warm = service(), set()
            continue
        before = store.latest_snapshot("snappy", wid)
        if op == "add":
            current.execute(Add(wid, 1))
        else:
            current.execute(Schedule(wid, "t", T0))
        appended = 1 if op == "add" else 0
        expected_evolve += (0 if wid in warm else last[wid] - snap[wid]) + appended
        last[wid] += appended
        if appended and last[wid] - snap[wid] >= every:
            snap[wid] = last[wid]
            expected_writes += 1
        if cache:
            warm.add(wid)
        after = store.latest_snapshot("snappy", wid)
        writes += (after.seq if after else 0) != (before.seq if before else 0)
        assert (after.seq if after else 0) == snap[wid]
    assert (workflow.evolved, writes) == (expected_evolve, expected_writes)
