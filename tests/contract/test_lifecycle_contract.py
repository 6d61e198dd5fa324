"""The lifecycle on both stores: every way to close, terminate, cancel, pause, and the run timeout."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ironflow_py import (
    DecideFailed,
    InstanceClosed,
    InstanceStatus,
    ManualClock,
    NotCancellable,
    NotFound,
    OutcomeStatus,
    WorkflowService,
)
from ironflow_py.lifecycle import (
    RUN_TIMEOUT_TIMER,
    Cancelled,
    Completed,
    Failed,
    InstanceTerminated,
    RunOutcome,
    RunTimedOut,
    Terminated,
    TimedOut,
)
from ironflow_py.store.base import Store
from tests.lifecycle_workflows import EndJob, JobDeadline, JobEnded, JobResult, JobStarted, JobWorkflow, StartJob
from tests.workflows import Add, Counter

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def service(store: Store, clock: ManualClock) -> WorkflowService:
    return WorkflowService(store, workflows=[JobWorkflow, Counter], clock=clock)


def _until(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.005)


def _close(service: WorkflowService, how: str) -> None:
    if how == "terminated":
        assert service.terminate("job", "j1", "operator").accepted
    else:
        assert service.execute(EndJob("j1", how, value=5)).accepted


EXPECTED: dict[str, RunOutcome] = {
    "completed": Completed(JobResult(5)),
    "failed": Failed("boom", {"value": 5}),
    "cancelled": Cancelled(None),
    "timed_out": TimedOut(T0),
    "terminated": Terminated("operator"),
}


@pytest.mark.parametrize("how", list(EXPECTED))
def test_every_terminal_status_is_stored_with_its_outcome_and_wakes_waiters(service: WorkflowService, how: str) -> None:
    service.execute(StartJob("j1"))
    got: list[Any] = []
    waiter = threading.Thread(target=lambda: got.append(service.wait("job", "j1", timeout=60, poll_interval=60)))
    waiter.start()
    _until(lambda: service.store.closed_waiters().count() == 1)
    _close(service, how)
    waiter.join(10)
    assert not waiter.is_alive(), f"a close to {how} did not wake the waiter"
    assert got == [EXPECTED[how]]
    info = service.instance("job", "j1")
    assert info is not None and info.status is InstanceStatus(how) and info.closed_at == T0
    assert service.result("job", "j1") == EXPECTED[how]
    assert [i.workflow_id for i in service.list_instances("job", InstanceStatus(how))] == ["j1"]
    assert service.list_instances("job", InstanceStatus.RUNNING) == []


def test_a_closed_instance_refuses_inputs_whatever_its_status(service: WorkflowService) -> None:
    for n, how in enumerate(EXPECTED):
        service.execute(StartJob(f"j{n}"))
        if how == "terminated":
            service.terminate("job", f"j{n}")
        else:
            service.execute(EndJob(f"j{n}", how))
        assert service.execute(EndJob(f"j{n}", "completed")).status is OutcomeStatus.ALREADY_COMPLETED


def test_completed_result_is_decoded_with_result_type(service: WorkflowService) -> None:
    service.execute(StartJob("j1"))
    outcome = service.execute_and_wait(EndJob("j1", "completed", value=9), timeout=10)
    assert outcome.unwrap() == JobResult(9)
    assert isinstance(outcome.unwrap(), JobResult)


def test_an_outcome_that_is_not_an_outcome_value_fails_the_decision_and_writes_nothing(
    service: WorkflowService,
) -> None:
    class Odd(JobWorkflow):
        type = "odd"

        def outcome(self, state: Any) -> Any:
            return "done" if state.ended else None

    odd = WorkflowService(service.store, workflows=[Odd])
    odd.execute(StartJob("o1"))
    with pytest.raises(DecideFailed, match="outcome returned 'done'"):
        odd.execute(EndJob("o1", "completed"))
    assert len(odd.history("odd", "o1")) == 1


# -- terminate ----------------------------------------------------------------------------------------------


def test_terminate_appends_one_lifecycle_event_drops_timers_and_cancels_pending_effects(
    service: WorkflowService, clock: ManualClock
) -> None:
    service.execute(StartJob("j1", timer_in=60, work=2))
    assert len(service.store.timers("job", "j1")) == 1
    outcome = service.terminate("job", "j1", "stuck", request_id="r1")
    assert outcome.accepted
    history = service.history("job", "j1")
    assert [e.event for e in history] == [JobStarted(), InstanceTerminated("stuck", "r1")]
    assert [e.type_name for e in history][-1] == "ironflow.terminated/1"
    assert service.store.timers("job", "j1") == []
    assert {e.status for e in service.store.effects("job", "j1")} == {"cancelled"}
    # evolve never saw the lifecycle event: the state is the one before it.
    assert service.state("job", "j1").started and service.state("job", "j1").ended is None
    assert service.result("job", "j1") == Terminated("stuck")


def test_terminate_twice_with_one_request_id_is_a_duplicate_and_with_another_already_completed(
    service: WorkflowService,
) -> None:
    service.execute(StartJob("j1"))
    assert service.terminate("job", "j1", "x", request_id="r1").accepted
    repeat = service.terminate("job", "j1", "x", request_id="r1")
    assert repeat.status is OutcomeStatus.DUPLICATE and repeat.first_status is OutcomeStatus.ACCEPTED
    assert service.terminate("job", "j1", "x", request_id="r2").status is OutcomeStatus.ALREADY_COMPLETED
    assert len([e for e in service.history("job", "j1") if isinstance(e.event, InstanceTerminated)]) == 1


def test_terminate_of_an_unknown_instance_is_not_found(service: WorkflowService) -> None:
    with pytest.raises(NotFound, match="'job' has no instance 'ghost'"):
        service.terminate("job", "ghost")


# -- cancel -------------------------------------------------------------------------------------------------


def test_cancel_runs_cancel_input_through_the_decider(service: WorkflowService) -> None:
    service.execute(StartJob("j1"))
    outcome = service.cancel("job", "j1", "customer asked", request_id="c1")
    assert outcome.accepted and [e.event for e in outcome.events] == [JobEnded("cancelled", reason="customer asked")]
    assert service.result("job", "j1") == Cancelled("customer asked")


def test_cancel_twice_with_one_request_id_is_a_duplicate(service: WorkflowService) -> None:
    service.execute(StartJob("j1"))
    assert service.cancel("job", "j1", "x", request_id="c1").accepted
    repeat = service.cancel("job", "j1", "x", request_id="c1")
    assert repeat.status is OutcomeStatus.DUPLICATE and repeat.first_status is OutcomeStatus.ACCEPTED


def test_cancel_of_a_closed_instance_is_already_completed(service: WorkflowService) -> None:
    service.execute(StartJob("j1"))
    service.execute(EndJob("j1", "completed"))
    assert service.cancel("job", "j1", "late").status is OutcomeStatus.ALREADY_COMPLETED
    assert service.result("job", "j1") == Completed(JobResult(0))


def test_a_workflow_without_cancel_input_is_not_cancellable_and_nothing_is_written(service: WorkflowService) -> None:
    service.execute(Add("c1"))
    with pytest.raises(NotCancellable, match="'counter' instance 'c1'"):
        service.cancel("counter", "c1", "please", request_id="c1")
    assert len(service.history("counter", "c1")) == 1


def test_cancel_of_an_unknown_instance_is_not_found_and_creates_nothing(service: WorkflowService) -> None:
    with pytest.raises(NotFound):
        service.cancel("job", "ghost", "x")
    assert service.instance("job", "ghost") is None


# -- pause --------------------------------------------------------------------------------------------------


def test_pause_and_resume_are_idempotent_by_request_id(service: WorkflowService) -> None:
    service.execute(StartJob("j1"))
    assert service.pause("job", "j1", request_id="p1") is OutcomeStatus.ACCEPTED
    info = service.instance("job", "j1")
    assert info is not None and info.paused_at == T0
    assert service.pause("job", "j1", request_id="p1") is OutcomeStatus.DUPLICATE
    assert service.resume("job", "j1", request_id="r1") is OutcomeStatus.ACCEPTED
    assert service.resume("job", "j1", request_id="r1") is OutcomeStatus.DUPLICATE
    info = service.instance("job", "j1")
    assert info is not None and info.paused_at is None


def test_pausing_a_closed_instance_is_refused(service: WorkflowService) -> None:
    service.execute(StartJob("j1"))
    service.execute(EndJob("j1", "failed"))
    with pytest.raises(InstanceClosed, match="'job' instance 'j1': cannot pause: it is failed"):
        service.pause("job", "j1")
    with pytest.raises(NotFound):
        service.pause("job", "ghost")


def test_a_paused_instance_still_accepts_inputs(service: WorkflowService) -> None:
    service.execute(StartJob("j1"))
    service.pause("job", "j1")
    assert service.execute(EndJob("j1", "completed")).accepted


# -- run timeout --------------------------------------------------------------------------------------------


class Deadlined(JobWorkflow):
    type = "deadlined"
    run_timeout = timedelta(hours=1)


class DeadlinedWithInput(Deadlined):
    type = "deadlined-input"

    def timeout_input(self, deadline: datetime) -> Any:
        return JobDeadline("?", deadline)


def test_the_run_deadline_is_scheduled_at_the_first_write_and_goes_when_the_instance_closes(
    store: Store, clock: ManualClock
) -> None:
    service = WorkflowService(store, workflows=[Deadlined], clock=clock)
    service.execute(StartJob("d1", timer_in=60))
    timers = {t.key: t.due_at for t in store.timers("deadlined", "d1")}
    assert timers == {"poke": T0 + timedelta(seconds=60), RUN_TIMEOUT_TIMER: T0 + timedelta(hours=1)}
    service.execute(EndJob("d1", "completed"))
    assert RUN_TIMEOUT_TIMER not in {t.key for t in store.timers("deadlined", "d1")}


def test_the_run_timeout_closes_the_instance_timed_out_with_a_lifecycle_event(store: Store, clock: ManualClock) -> None:
    service = WorkflowService(store, workflows=[Deadlined], clock=clock)
    service.execute(StartJob("d1"))
    (timer,) = store.timers("deadlined", "d1")
    outcome = service.fire_timer("deadlined", "d1", timer.input_type, timer.payload)
    assert outcome.accepted
    deadline = T0 + timedelta(hours=1)
    assert service.result("deadlined", "d1") == TimedOut(deadline)
    assert service.history("deadlined", "d1")[-1].event == RunTimedOut(deadline)
    assert service.execute(EndJob("d1", "completed")).status is OutcomeStatus.ALREADY_COMPLETED


def test_the_run_timeout_delivers_timeout_input_when_the_workflow_has_one(store: Store, clock: ManualClock) -> None:
    service = WorkflowService(store, workflows=[DeadlinedWithInput], clock=clock)
    service.execute(StartJob("d1"))
    (timer,) = store.timers("deadlined-input", "d1")
    service.fire_timer("deadlined-input", "d1", timer.input_type, timer.payload)
    deadline = T0 + timedelta(hours=1)
    assert service.history("deadlined-input", "d1")[-1].event == JobEnded("timed_out", at=deadline)
    assert service.result("deadlined-input", "d1") == TimedOut(deadline)
