"""Outcomes are pure values: how a workflow says it ended, how they are stored, and what `unwrap()` raises."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from ironflow_py import ConfigurationError, MemoryStore, Workflow, WorkflowService
from ironflow_py.codec import WorkflowCodec, loads, make_converter
from ironflow_py.errors import (
    WaitTimedOut,
    WorkflowCancelled,
    WorkflowFailed,
    WorkflowOutcomeError,
    WorkflowTerminated,
    WorkflowTimedOut,
)
from ironflow_py.lifecycle import Cancelled, Completed, Failed, RunOutcome, Terminated, TimedOut
from tests.lifecycle_workflows import JobResult, JobState, JobWorkflow
from tests.workflows import Counter, CounterState

DEADLINE = datetime(2026, 5, 1, 9, 30, tzinfo=UTC)


def test_a_workflow_that_only_says_is_terminal_completes_with_none() -> None:
    wf = Counter()
    assert wf.outcome(CounterState()) is None
    assert wf.outcome(CounterState(finished=True)) == Completed(None)


def test_a_workflow_that_only_says_outcome_gets_is_terminal_from_it() -> None:
    wf = JobWorkflow()
    assert not wf.is_terminal(JobState())
    assert wf.is_terminal(wf.evolve(JobState(), wf.decide(DEADLINE, JobState(), _end("failed")).events[0]))


def test_a_workflow_that_overrides_neither_is_never_terminal() -> None:
    class Bare(Workflow[int, Any, Any, Any]):
        type = "bare"

    assert not Bare().is_terminal(0)
    assert Bare().outcome(0) is None


def _end(how: str) -> Any:
    from tests.lifecycle_workflows import EndJob

    return EndJob("j1", how, value=3)


def test_completed_unwraps_to_its_result() -> None:
    assert Completed(JobResult(4)).at("job", "j1").unwrap() == JobResult(4)


@pytest.mark.parametrize(
    ("outcome", "error", "says"),
    [
        (Failed("not_approved", "refused by grace"), WorkflowFailed, "failed: not_approved (refused by grace)"),
        (Cancelled("customer asked"), WorkflowCancelled, "cancelled: customer asked"),
        (TimedOut(DEADLINE), WorkflowTimedOut, "timed out at its deadline 2026-05-01T09:30:00+00:00"),
        (Terminated("stuck"), WorkflowTerminated, "terminated: stuck"),
    ],
)
def test_every_unsuccessful_outcome_unwraps_to_a_typed_error_naming_the_instance(
    outcome: RunOutcome, error: type[WorkflowOutcomeError], says: str
) -> None:
    with pytest.raises(error) as caught:
        outcome.at("greeting", "g-7").unwrap()
    assert str(caught.value) == f"workflow 'greeting' instance 'g-7': {says}"
    assert caught.value.workflow_type == "greeting" and caught.value.workflow_id == "g-7"
    assert caught.value.outcome == outcome


def test_labelling_an_outcome_with_its_instance_keeps_it_equal() -> None:
    assert Failed("x").at("a", "b") == Failed("x")
    assert repr(Failed("x").at("a", "b")) == "Failed(code='x', detail=None)"


def test_a_caller_giving_up_is_not_the_workflow_timing_out() -> None:
    assert not issubclass(WaitTimedOut, WorkflowTimedOut)
    assert not issubclass(WorkflowTimedOut, WaitTimedOut)


@pytest.mark.parametrize(
    "outcome",
    [
        Completed(JobResult(7)),
        Completed(None),
        Failed("boom", {"value": 1, "why": ["a", "b"]}),
        Failed("boom"),
        Cancelled("asked"),
        Cancelled(None),
        TimedOut(DEADLINE),
        Terminated("operator"),
    ],
)
def test_every_outcome_survives_its_stored_form(outcome: RunOutcome) -> None:
    wf = JobWorkflow()
    codec = WorkflowCodec(
        "job",
        inputs=wf.inputs,
        events=wf.events,
        effects=wf.effects,
        converter=make_converter(),
        result_type=JobResult,
    )
    back = codec.decode_outcome(loads(codec.encode_outcome(outcome, "j1")), "j1")
    assert back == outcome and type(back) is type(outcome)
    assert (back.workflow_type, back.workflow_id) == ("job", "j1")


@pytest.mark.parametrize("kind", ["inputs", "events", "effects"])
def test_a_workflow_may_not_declare_a_reserved_type_name(kind: str) -> None:
    class Sneaky(JobWorkflow):
        pass

    declared = dict(getattr(JobWorkflow, kind))
    declared["ironflow.terminated/1"] = next(iter(declared.values()))
    del declared[next(iter(getattr(JobWorkflow, kind)))]
    setattr(Sneaky, kind, declared)
    with pytest.raises(ConfigurationError, match="reserved"):
        WorkflowService(MemoryStore(), workflows=[Sneaky])


def test_then_outcome_checks_the_outcome_the_engine_would_store() -> None:
    from ironflow_py.testing import WorkflowSpec
    from tests.lifecycle_workflows import EndJob, JobStarted, Poke

    spec = WorkflowSpec(JobWorkflow)
    spec.given(JobStarted()).when(EndJob("j1", "failed", value=3)).then_outcome(Failed("boom", {"value": 3}))
    spec.given(JobStarted()).when(EndJob("j1", "completed", value=3)).then_outcome(Completed(JobResult(3)))
    spec.given(JobStarted()).when(Poke("j1")).then_outcome(None)
    with pytest.raises(AssertionError, match="outcomes differ"):
        spec.given(JobStarted()).when(EndJob("j1", "cancelled")).then_outcome(Completed(JobResult(0)))


def test_a_scenario_advanced_past_run_timeout_closes_timed_out() -> None:
    from datetime import timedelta

    from ironflow_py.testing import Scenario
    from tests.lifecycle_workflows import StartJob

    class Deadlined(JobWorkflow):
        run_timeout = timedelta(minutes=30)

    s = Scenario(Deadlined)
    s.send(StartJob("j1"))
    s.advance(timedelta(minutes=29))
    assert s.result("job", "j1") is None
    s.advance(timedelta(minutes=1))
    assert s.result("job", "j1") == TimedOut(s.clock.now())
    assert s.timers("job", "j1") == []
