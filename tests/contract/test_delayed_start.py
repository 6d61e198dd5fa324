"""Delayed start (`execute(..., not_before=/delay=)`) on both stores: one reserved timer on the target
instance, shown as scheduled, one timer per input key, run no earlier than due, with its input key."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import attrs
import pytest

from ironflow_py import (
    Cancelled,
    Decision,
    EffectRegistry,
    InvalidDelay,
    ManualClock,
    NotCancellable,
    NotFound,
    OutcomeStatus,
    Terminated,
    Workflow,
    WorkflowService,
)
from ironflow_py.effects._attempt import DEFAULT_TIMER_POLICY, Attempts
from ironflow_py.inspection import instance_report, shown_status
from ironflow_py.lifecycle import DELAYED_START_INPUT, InstanceTerminated, StartCancelled
from ironflow_py.store.base import Store

T0 = datetime(2031, 3, 1, 12, 0, tzinfo=UTC)


@attrs.frozen
class Add:
    account: str
    cents: int
    key: str | None = None


@attrs.frozen
class Added:
    cents: int


class Ledger(Workflow[tuple[int, ...], Add, Added, object]):
    type = "ledger"
    inputs = {"ledger.add/1": Add}
    events = {"ledger.added/1": Added}

    def initial_state(self) -> tuple[int, ...]:
        return ()

    def workflow_id(self, input: Add) -> str:
        return input.account

    def input_key(self, input: Add) -> str | None:
        return input.key

    def evolve(self, state: tuple[int, ...], event: Added) -> tuple[int, ...]:
        return (*state, event.cents)

    def decide(self, now: datetime, state: tuple[int, ...], input: Add) -> Decision[Added, object]:
        return Decision.accept(Added(input.cents))


class Runner:
    """Fires what is due at the ManualClock's time, through the engine's own attempt code (both stores)."""

    def __init__(self, store: Store) -> None:
        self.clock = ManualClock(T0)
        self.service = WorkflowService(store, workflows=[Ledger], clock=self.clock, state_cache_size=0)
        self.outbox = store.outbox("w1")
        self.attempts = Attempts(
            self.service,
            EffectRegistry(),
            self.outbox,
            self.clock,
            random.Random(1).random,
            timedelta(minutes=5),
            DEFAULT_TIMER_POLICY,
            self.service._log,
        )

    def run_due(self) -> int:
        claims = self.outbox.claim_timers(self.clock.now(), timedelta(minutes=5), 100)
        for claim in claims:
            self.attempts.fire_timer(claim)
        return len(claims)

    def added(self, account: str) -> tuple[int, ...]:
        return tuple(e.event.cents for e in self.service.history("ledger", account))


@pytest.fixture
def run(store: Store) -> Runner:
    return Runner(store)


def test_a_delayed_start_runs_no_earlier_than_due_and_shows_as_scheduled_before(run: Runner) -> None:
    outcome = run.service.execute(Add("a", 5), not_before=T0 + timedelta(seconds=30))
    assert outcome.status is OutcomeStatus.SCHEDULED
    assert outcome.events == ()
    [timer] = run.service.store.timers("ledger", "a")
    assert timer.input_type == DELAYED_START_INPUT and timer.due_at == T0 + timedelta(seconds=30)
    report = instance_report(run.service, "ledger", "a")
    assert report.scheduled
    assert report.diagnosis(run.clock.now()).startswith("in state 'tuple'; scheduled: ledger.add/1 starts at")
    info = run.service.instance("ledger", "a")
    assert info is not None and shown_status(run.service.store, info) == "scheduled"

    run.clock.advance(timedelta(seconds=29, microseconds=999_999))
    assert run.run_due() == 0
    assert run.added("a") == ()
    run.clock.advance(timedelta(microseconds=1))
    assert run.run_due() == 1
    assert run.added("a") == (5,)
    assert run.service.store.timers("ledger", "a") == []
    info = run.service.instance("ledger", "a")
    assert info is not None and shown_status(run.service.store, info) == "running"
    assert not instance_report(run.service, "ledger", "a").scheduled


def test_two_calls_with_one_input_key_make_one_timer_and_one_run(run: Runner) -> None:
    first = run.service.execute(Add("b", 7), input_key="k1", delay=timedelta(seconds=10))
    again = run.service.execute(Add("b", 7), input_key="k1", delay=timedelta(seconds=99))
    assert first.status is OutcomeStatus.SCHEDULED
    assert again.status is OutcomeStatus.DUPLICATE and again.first_status is OutcomeStatus.ACCEPTED
    [timer] = run.service.store.timers("ledger", "b")
    assert timer.due_at == T0 + timedelta(seconds=10)  # the first call's time: the repeat changed nothing
    run.clock.advance(timedelta(seconds=10))
    assert run.run_due() == 1
    # The delayed input ran with its key: the same input executed now with that key is a duplicate.
    assert run.service.execute(Add("b", 7), input_key="k1").status is OutcomeStatus.DUPLICATE
    assert run.added("b") == (7,)


def test_the_workflows_own_input_key_also_dedupes_the_timer(run: Runner) -> None:
    run.service.execute(Add("c", 1, key="own"), delay=timedelta(seconds=5))
    assert run.service.execute(Add("c", 1, key="own"), delay=timedelta(seconds=5)).status is OutcomeStatus.DUPLICATE
    assert len(run.service.store.timers("ledger", "c")) == 1


def test_unkeyed_delayed_starts_each_make_their_own_timer(run: Runner) -> None:
    run.service.execute(Add("d", 1), delay=timedelta(seconds=5))
    run.service.execute(Add("d", 2), delay=timedelta(seconds=6))
    assert len(run.service.store.timers("ledger", "d")) == 2
    run.clock.advance(timedelta(seconds=6))
    assert run.run_due() == 2
    assert sorted(run.added("d")) == [1, 2]


def test_a_delayed_input_on_a_running_instance_waits_its_turn(run: Runner) -> None:
    run.service.execute(Add("e", 1))
    assert run.service.execute(Add("e", 2), delay=timedelta(minutes=1)).status is OutcomeStatus.SCHEDULED
    report = instance_report(run.service, "ledger", "e")
    assert not report.scheduled  # it has run: the delayed input is one more pending thing
    assert "delayed input ledger.add/1 due" in report.diagnosis(run.clock.now())
    run.clock.advance(timedelta(minutes=1))
    run.run_due()
    assert run.added("e") == (1, 2)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"not_before": datetime(2031, 3, 1, 12, 0)}, "timezone-aware"),  # naive on purpose
        ({"delay": timedelta(seconds=-1)}, "negative"),
        ({"delay": timedelta(seconds=1), "not_before": T0}, "not both"),
    ],
)
def test_an_unusable_time_is_refused_before_any_write(run: Runner, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidDelay, match=message) as info:
        run.service.execute(Add("f", 1), **kwargs)  # type: ignore[arg-type]
    assert "'ledger'" in str(info.value) and "'f'" in str(info.value)
    assert run.service.instance("ledger", "f") is None
    assert run.service.store.timers("ledger", "f") == []


def test_a_long_input_key_still_makes_one_timer(run: Runner) -> None:
    key = "k" * 500  # the reserved prefix would not fit: the timer key is hashed
    run.service.execute(Add("g", 1), input_key=key, delay=timedelta(seconds=1))
    run.service.execute(Add("g", 1), input_key=key, delay=timedelta(seconds=1))
    [timer] = run.service.store.timers("ledger", "g")
    assert timer.key.startswith("ironflow.start/sha256:")
    run.clock.advance(timedelta(seconds=1))
    run.run_due()
    assert run.added("g") == (1,)


def test_terminate_closes_an_instance_that_only_waits_for_its_delayed_start(run: Runner) -> None:
    run.service.execute(Add("t", 1), delay=timedelta(seconds=30))
    outcome = run.service.terminate("ledger", "t", "not needed", request_id="r1")
    assert outcome.status is OutcomeStatus.ACCEPTED
    assert run.service.terminate("ledger", "t", "again", request_id="r1").status is OutcomeStatus.DUPLICATE
    assert run.service.store.timers("ledger", "t") == []  # the delayed start went with it
    assert run.service.result("ledger", "t") == Terminated("not needed")
    run.clock.advance(timedelta(minutes=1))
    assert run.run_due() == 0
    assert [e.event for e in run.service.history("ledger", "t")] == [InstanceTerminated("not needed", "r1")]


def test_cancel_closes_an_unstarted_instance_cancelled_without_running_workflow_code(run: Runner) -> None:
    # Ledger has no cancel_input: a started ledger is not cancellable, an unstarted one is simply dropped.
    run.service.execute(Add("u", 1), delay=timedelta(seconds=30))
    run.service.execute(Add("u", 2), input_key="k", delay=timedelta(seconds=40))
    outcome = run.service.cancel("ledger", "u", "changed my mind", request_id="c1")
    assert outcome.status is OutcomeStatus.ACCEPTED
    assert run.service.cancel("ledger", "u", "again", request_id="c1").status is OutcomeStatus.DUPLICATE
    assert run.service.cancel("ledger", "u", "late").status is OutcomeStatus.ALREADY_COMPLETED
    assert run.service.store.timers("ledger", "u") == []
    assert run.service.result("ledger", "u") == Cancelled("changed my mind")
    info = run.service.instance("ledger", "u")
    assert info is not None and shown_status(run.service.store, info) == "cancelled"
    run.clock.advance(timedelta(minutes=1))
    assert run.run_due() == 0
    assert [type(e.event) for e in run.service.history("ledger", "u")] == [StartCancelled]
    # Once started, the same workflow is cancelled only through cancel_input, which it lacks.
    run.service.execute(Add("v", 1))
    with pytest.raises(NotCancellable):
        run.service.cancel("ledger", "v", "no")


def test_cancel_unstarted_leaves_an_instance_that_started_meanwhile_to_cancel_input(run: Runner) -> None:
    # The service saw no events before it took the lock; under the lock the instance has one: nothing is
    # written and the cancel goes the usual way.
    run.service.execute(Add("w", 1))
    handler = run.service.registration("ledger").handler
    assert handler.cancel_unstarted("w", "late", run.clock.now(), None) is None
    assert run.added("w") == (1,) and run.service.result("ledger", "w") is None


def test_terminate_and_cancel_of_an_unknown_instance_are_not_found(run: Runner) -> None:
    with pytest.raises(NotFound):
        run.service.terminate("ledger", "nobody", "x")
    with pytest.raises(NotFound):
        run.service.cancel("ledger", "nobody", "x")
