"""One behaviour, two stores: every test here runs against MemoryStore and PostgresStore."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import attrs
import pytest

from ironflow_py import (
    CodecError,
    DecideFailed,
    Decision,
    EncodeError,
    InstanceStatus,
    ManualClock,
    NotFound,
    OutcomeStatus,
    Workflow,
    WorkflowService,
)
from ironflow_py.store.base import Store
from tests.workflows import Add, Boom, Counter, CounterState, Finish, Notify, Schedule, TooLarge

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def service(store: Store, clock: ManualClock) -> WorkflowService:
    return WorkflowService(store, workflows=[Counter], clock=clock)


def test_accepted_input_appends_events_with_gap_free_sequences(service: WorkflowService) -> None:
    outcomes = [service.execute(Add("c1", n)) for n in (1, 2, 3)]
    assert [o.status for o in outcomes] == [OutcomeStatus.ACCEPTED] * 3
    assert [e.seq for o in outcomes for e in o.events] == [1, 2, 3]
    assert outcomes[-1].state == CounterState(total=6, adds=3)
    history = service.history("counter", "c1")
    assert [(e.seq, e.type_name, e.event.total) for e in history] == [
        (1, "counter.added/1", 1),
        (2, "counter.added/1", 3),
        (3, "counter.added/1", 6),
    ]
    positions = [e.position for e in history]
    assert positions == sorted(positions) and len(set(positions)) == 3
    assert [e.position for o in outcomes for e in o.events] == positions


def test_events_carry_the_injected_clock_time(service: WorkflowService, clock: ManualClock) -> None:
    service.execute(Add("c1"))
    clock.advance(timedelta(minutes=5))
    service.execute(Add("c1"))
    assert [e.recorded_at for e in service.history("counter", "c1")] == [T0, T0 + timedelta(minutes=5)]


def test_instances_are_independent(service: WorkflowService) -> None:
    service.execute(Add("a", 5))
    service.execute(Add("b", 7))
    assert service.state("counter", "a").total == 5
    assert service.state("counter", "b").total == 7
    assert [e.seq for e in service.history("counter", "b")] == [1]


def test_effects_are_enqueued_with_the_decision(service: WorkflowService, store: Store) -> None:
    outcome = service.execute(Add("c1", 4))
    effects = store.effects("counter", "c1")
    assert [e.id for e in effects] == list(outcome.effect_ids)
    assert [(e.effect_type, e.payload, e.status, e.attempts) for e in effects] == [
        ("counter.notify/1", {"counter_id": "c1", "total": 4, "note": None}, "pending", 0)
    ]


def test_rejection_appends_nothing_and_returns_the_reason(service: WorkflowService, store: Store) -> None:
    Counter.limit = 10
    try:
        service.execute(Add("c1", 8))
        outcome = service.execute(Add("c1", 5))
    finally:
        Counter.limit = 1_000_000
    assert outcome.status is OutcomeStatus.REJECTED
    assert outcome.reason == TooLarge(limit=10, asked=13)
    assert outcome.events == ()
    assert outcome.state.total == 8
    assert len(service.history("counter", "c1")) == 1
    assert len(store.effects("counter", "c1")) == 1


def test_terminal_instance_returns_already_completed_without_deciding(service: WorkflowService) -> None:
    service.execute(Add("c1", 2))
    finished = service.execute(Finish("c1"))
    assert finished.state.finished
    info = service.instance("counter", "c1")
    assert info is not None and info.status is InstanceStatus.COMPLETED
    # Boom would make decide raise: already_completed proves decide was not called.
    late = service.execute(Boom("c1"))
    assert late.status is OutcomeStatus.ALREADY_COMPLETED
    assert late.state.total == 2
    assert len(service.history("counter", "c1")) == 2


def test_input_key_is_applied_once_and_repeats_report_the_first_outcome(service: WorkflowService) -> None:
    first = service.execute(Add("c1", 3, key="k1"))
    again = service.execute(Add("c1", 3, key="k1"))
    other = service.execute(Add("c1", 3, key="k2"))
    assert first.status is OutcomeStatus.ACCEPTED
    assert again.status is OutcomeStatus.DUPLICATE and again.first_status is OutcomeStatus.ACCEPTED
    assert again.events == () and again.state.total == 3
    assert other.status is OutcomeStatus.ACCEPTED and other.state.total == 6


def test_rejected_keyed_input_is_remembered_and_creates_no_instance(service: WorkflowService) -> None:
    Counter.limit = 1
    try:
        rejected = service.execute(Add("c1", 5, key="big"))
        again = service.execute(Add("c1", 5, key="big"))
    finally:
        Counter.limit = 1_000_000
    assert rejected.status is OutcomeStatus.REJECTED
    assert again.status is OutcomeStatus.DUPLICATE and again.first_status is OutcomeStatus.REJECTED
    assert service.instance("counter", "c1") is None
    assert service.list_instances("counter") == []


def test_decide_that_raises_writes_nothing(service: WorkflowService, store: Store) -> None:
    service.execute(Add("c1"))
    with pytest.raises(DecideFailed) as info:
        service.execute(Boom("c1"))
    assert info.value.workflow_type == "counter" and info.value.workflow_id == "c1"
    assert "decide raised RuntimeError" in str(info.value)
    assert len(service.history("counter", "c1")) == 1
    assert service.execute(Add("c1")).events[0].seq == 2


def test_unserializable_effect_writes_nothing(service: WorkflowService, store: Store) -> None:
    with pytest.raises(EncodeError) as info:
        service.execute(Add("c1", 1, effect_note=object()))
    assert info.value.type_name == "counter.notify/1" and info.value.workflow_id == "c1"
    assert service.history("counter", "c1") == []
    assert store.effects("counter", "c1") == []
    assert service.execute(Add("c1")).events[0].seq == 1


def test_timers_are_replaced_and_cancelled_by_key(service: WorkflowService, store: Store) -> None:
    service.execute(Schedule("c1", "a", T0 + timedelta(hours=1)))
    service.execute(Schedule("c1", "b", T0 + timedelta(hours=2)))
    first_a = {t.key: t for t in store.timers("counter", "c1")}["a"]
    service.execute(Schedule("c1", "a", T0 + timedelta(hours=3)))  # replaces a
    timers = {t.key: t for t in store.timers("counter", "c1")}
    assert set(timers) == {"a", "b"}
    assert timers["a"].due_at == T0 + timedelta(hours=3)
    assert timers["a"].id != first_a.id, "a replaced timer gets a new id so a stale claim cannot fire it"
    assert timers["a"].input_type == "counter.tick/1" and timers["a"].payload == {"counter_id": "c1"}
    service.execute(Schedule("c1", "c", T0 + timedelta(hours=4), cancel=("b", "missing")))
    assert {t.key for t in store.timers("counter", "c1")} == {"a", "c"}
    # Cancelling and scheduling one key in one decision leaves the new timer.
    service.execute(Schedule("c1", "c", T0 + timedelta(hours=5), cancel=("c",)))
    assert {t.key: t.due_at for t in store.timers("counter", "c1")}["c"] == T0 + timedelta(hours=5)


def test_timer_input_must_belong_to_the_workflow(store: Store) -> None:
    service = WorkflowService(store, workflows=[_TimerToForeign])
    with pytest.raises(CodecError, match="not one of this workflow's inputs"):
        service.execute(_Go("x"))
    assert service.history("timer-to-foreign", "x") == []
    assert store.timers("timer-to-foreign", "x") == []


def test_state_of_unknown_instance_is_not_found(service: WorkflowService) -> None:
    with pytest.raises(NotFound):
        service.state("counter", "nope")
    assert service.history("counter", "nope") == []
    assert service.instance("counter", "nope") is None


def test_list_instances_filters_by_type_and_status_and_pages(service: WorkflowService) -> None:
    for cid in ("a", "b", "c", "d"):
        service.execute(Add(cid))
    service.execute(Finish("b"))
    running = service.list_instances("counter", InstanceStatus.RUNNING)
    assert [i.workflow_id for i in running] == ["a", "c", "d"]
    done = service.list_instances("counter", InstanceStatus.COMPLETED)
    assert [(i.workflow_id, i.last_seq) for i in done] == [("b", 2)]
    page1 = service.list_instances("counter", limit=2)
    page2 = service.list_instances("counter", limit=2, after=("counter", page1[-1].workflow_id))
    assert [i.workflow_id for i in [*page1, *page2]] == ["a", "b", "c", "d"]
    assert service.list_instances("other") == []


def test_effect_payload_round_trips(service: WorkflowService, store: Store) -> None:
    service.execute(Add("c1", 2, effect_note={"k": [1, "two", None]}))
    (row,) = store.effects("counter", "c1")
    reg = service.registration("counter")
    assert reg.codec.decode_effect(row.effect_type, row.payload, "c1") == Notify("c1", 2, {"k": [1, "two", None]})


# -- a workflow whose timer carries another workflow's input ------------------------------------------------


@attrs.frozen
class _Go:
    gid: str


@attrs.frozen
class _Went:
    pass


class _TimerToForeign(Workflow[int, _Go, _Went, object]):
    type = "timer-to-foreign"
    inputs = {"go/1": _Go}
    events = {"went/1": _Went}

    def initial_state(self) -> int:
        return 0

    def workflow_id(self, input: _Go) -> str:
        return input.gid

    def evolve(self, state: int, event: _Went) -> int:
        return state + 1

    def decide(self, now: datetime, state: int, input: _Go) -> Decision[_Went, object]:
        return Decision.accept(_Went()).with_timer("t", now, Add("elsewhere"))
