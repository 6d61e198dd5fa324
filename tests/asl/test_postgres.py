"""ASL executions end to end on PostgreSQL with the real EffectRuntime (a ManualClock drives timers).

The two examples of the Workflows library's README: a Wait of 10 s then Succeed, and a "Hello World"
Task. Each is started, stopped at its wait, picked up by a fresh service and runtime (empty caches: only
the database carries it) and resumed.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ironflow_py import (
    Cancelled,
    Completed,
    Failed,
    ManualClock,
    OutcomeStatus,
    PostgresStore,
    TimedOut,
    WorkflowFailed,
    WorkflowService,
)
from ironflow_py.asl import AslWorkflow, StateMachine, TaskRegistry, execution_result, history_events
from ironflow_py.effects import EffectRuntime

T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)

WAIT_THEN_SUCCEED = {
    "Comment": "A wait of 10 seconds, then success",
    "StartAt": "Wait ten",
    "States": {
        "Wait ten": {"Type": "Wait", "Seconds": 10, "Next": "Done"},
        "Done": {"Type": "Succeed"},
    },
}

HELLO_WORLD = {
    "Comment": "A Hello World example of the Amazon States Language using a Task state",
    "StartAt": "HelloWorld",
    "States": {
        "HelloWorld": {
            "Type": "Task",
            "Resource": "arn:aws:lambda:us-east-1:123456789012:function:HelloWorld",
            "Next": "Pause",
        },
        "Pause": {"Type": "Wait", "Seconds": 10, "Next": "Greeted"},
        "Greeted": {"Type": "Pass", "Parameters": {"message.$": "States.Format('{}!', $.greeting)"}, "End": True},
    },
}


def hello_tasks() -> TaskRegistry:
    tasks = TaskRegistry()

    @tasks.resource("arn:aws:lambda:us-east-1:123456789012:function:HelloWorld")
    def hello(payload: Any, ctx: Any) -> Any:
        return {"greeting": f"Hello, {payload['name']}"}

    return tasks


def fresh(store: PostgresStore, wf: type[AslWorkflow], tasks: TaskRegistry, clock: ManualClock) -> EffectRuntime:
    service = WorkflowService(store, workflows=[wf], clock=clock)
    return EffectRuntime(service, tasks.effects(), handle_signals=False, listen=False, rng=random.Random(0))


def drain(rt: EffectRuntime) -> int:
    total = 0
    while (n := rt.run_once()) > 0:
        total += n
    return total


def test_wait_ten_seconds_then_succeed_survives_a_restart(pg_store: PostgresStore) -> None:
    wf = AslWorkflow.define("wait-then-succeed", WAIT_THEN_SUCCEED)
    clock = ManualClock(T0)
    first = fresh(pg_store, wf, TaskRegistry(), clock)
    outcome = first.service.execute(wf.StartExecution("exec-1", {"hello": "world"}))
    assert outcome.status is OutcomeStatus.ACCEPTED
    clock.advance(timedelta(seconds=9))
    assert drain(first) == 0  # stopped at the wait: nothing is due
    [timer] = pg_store.timers("wait-then-succeed", "exec-1")
    assert timer.due_at == T0 + timedelta(seconds=10)
    second = fresh(pg_store, wf, TaskRegistry(), clock)  # a new process would see exactly this
    clock.advance(timedelta(seconds=1))
    assert drain(second) == 1
    result = execution_result(second.service.state("wait-then-succeed", "exec-1"))
    assert (result.status, result.output) == ("succeeded", {"hello": "world"})


def test_hello_world_task_runs_as_an_effect_and_resumes_after_a_restart(pg_store: PostgresStore) -> None:
    wf = AslWorkflow.define("hello-world", StateMachine.parse(HELLO_WORLD))
    clock = ManualClock(T0)
    first = fresh(pg_store, wf, hello_tasks(), clock)
    first.service.execute(wf.StartExecution("exec-1", {"name": "World"}))
    assert drain(first) == 1  # the HelloWorld task; its result moves the machine into the wait
    assert execution_result(first.service.state("hello-world", "exec-1")).status == "running"
    [effect] = pg_store.effects("hello-world", "exec-1")
    assert effect.status == "done" and effect.attempts == 1
    second = fresh(pg_store, wf, hello_tasks(), clock)
    clock.advance(timedelta(seconds=10))
    assert drain(second) == 1
    service = second.service
    result = execution_result(service.state("hello-world", "exec-1"))
    assert (result.status, result.output) == ("succeeded", {"message": "Hello, World!"})
    history = [(e.recorded_at, e.event) for e in service.history("hello-world", "exec-1")]
    assert [h["type"] for h in history_events(wf.machine, history)] == [
        "ExecutionStarted",
        "TaskStateEntered",
        "TaskScheduled",
        "TaskSucceeded",
        "TaskStateExited",
        "WaitStateEntered",
        "WaitStateExited",
        "PassStateEntered",
        "PassStateExited",
        "ExecutionSucceeded",
    ]
    # StartExecution is keyed: a repeat (even with another input) is a duplicate, as a name is in Step Functions.
    assert service.execute(wf.StartExecution("exec-1", {"name": "again"})).status is OutcomeStatus.DUPLICATE


def test_a_failing_task_with_retry_and_catch_on_postgres(pg_store: PostgresStore) -> None:
    definition = {
        "StartAt": "Charge",
        "States": {
            "Charge": {
                "Type": "Task",
                "Resource": "arn:charge",
                "Retry": [{"ErrorEquals": ["Busy"], "IntervalSeconds": 2, "MaxAttempts": 1}],
                "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Failed"}],
                "End": True,
            },
            "Failed": {"Type": "Pass", "End": True},
        },
    }
    wf = AslWorkflow.define("charge", definition)
    tasks = TaskRegistry()

    @tasks.resource("arn:charge")
    def charge(payload: Any, ctx: Any) -> Any:
        raise RuntimeError("busy" if ctx.attempt == 0 else "down")

    clock = ManualClock(T0)
    rt = fresh(pg_store, wf, tasks, clock)
    rt.service.execute(wf.StartExecution("e", {"order": 1}))
    drain(rt)
    # RuntimeError is not "Busy": no retry, straight to the catcher, and the effect ran exactly once.
    result = execution_result(rt.service.state("charge", "e"))
    assert result.output == {"order": 1, "error": {"Error": "RuntimeError", "Cause": "busy"}}
    assert [(e.status, e.attempts) for e in pg_store.effects("charge", "e")] == [("done", 1)]


def test_wait_returns_completed_output_or_failed_error_and_cause(pg_store: PostgresStore) -> None:
    definition = {
        "StartAt": "Check",
        "States": {
            "Check": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.ok", "BooleanEquals": True, "Next": "Yes"}],
                "Default": "No",
            },
            "Yes": {"Type": "Pass", "Result": {"fine": True}, "End": True},
            "No": {"Type": "Fail", "Error": "Checkout.Refused", "Cause": "not ok"},
        },
    }
    wf = AslWorkflow.define("checkout", definition)
    service = WorkflowService(pg_store, workflows=[wf])
    service.execute(wf.StartExecution("exec-1", {"ok": True}))
    service.execute(wf.StartExecution("exec-2", {"ok": False}))
    assert service.wait("checkout", "exec-1", timeout=30) == Completed({"fine": True})
    failed = service.wait("checkout", "exec-2", timeout=30)
    assert failed == Failed("Checkout.Refused", "not ok")
    with pytest.raises(WorkflowFailed):
        failed.unwrap()


def test_cancel_stops_the_execution_and_machine_timeout_seconds_times_it_out(pg_store: PostgresStore) -> None:
    definition = {"TimeoutSeconds": 60, "StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 3600, "End": True}}}
    wf = AslWorkflow.define("slow", definition)
    clock = ManualClock(T0)
    rt = fresh(pg_store, wf, TaskRegistry(), clock)
    service = rt.service
    service.execute(wf.StartExecution("stopped", {}))
    service.cancel("slow", "stopped", "no longer needed")
    assert service.wait("slow", "stopped", timeout=30) == Cancelled("no longer needed")
    assert pg_store.timers("slow", "stopped") == []  # the Wait's timer went with it
    service.execute(wf.StartExecution("late", {}))
    clock.advance(timedelta(seconds=60))
    drain(rt)
    assert isinstance(service.wait("slow", "late", timeout=30), TimedOut)
