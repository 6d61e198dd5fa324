"""Shared helpers for the ASL tests: run a definition in memory with scripted task results."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from ironflow_py.asl import (
    AslWorkflow,
    ExecutionResult,
    StateMachine,
    TaskContext,
    TaskFailed,
    TaskRegistry,
    execution_result,
)
from ironflow_py.testing import Scenario

LAMBDA = "arn:aws:lambda:us-east-1:123456789012:function:f"

#: A scripted task outcome: {"Return": value} or {"Throw": {"Error": ..., "Cause": ...}}.
Script = Mapping[str, Sequence[Mapping[str, Any]]]


def scripted_tasks(script: Script, resources: Sequence[str] = (LAMBDA,)) -> TaskRegistry:
    """Task handlers answering by (state name, attempt): the attempt-th response of the state's list
    (the last one repeats), as Step Functions' mocked responses do by RetryCount."""
    tasks = TaskRegistry()

    def handler(payload: Any, ctx: TaskContext) -> Any:
        responses = script.get(ctx.state_name)
        if not responses:
            return payload  # an echo by default
        response = responses[min(ctx.attempt, len(responses) - 1)]
        if "Throw" in response:
            raise TaskFailed(response["Throw"]["Error"], response["Throw"].get("Cause", ""))
        return response["Return"]

    for resource in resources:
        tasks.register(resource, handler)
    return tasks


def run(
    definition: Mapping[str, Any] | str,
    input: Any = None,
    script: Script | None = None,
    *,
    resources: Sequence[str] = (LAMBDA,),
    advance: timedelta = timedelta(hours=1),
    steps: int = 50,
) -> tuple[ExecutionResult, Scenario, type[AslWorkflow]]:
    """Run one execution to its end (moving the clock to fire timers); returns its result and scenario."""
    machine = StateMachine.parse(definition)
    wf = AslWorkflow.define("machine", machine)
    scenario = Scenario(wf, effects=scripted_tasks(script or {}, resources).effects())
    scenario.send(wf.StartExecution("exec-1", {} if input is None else input))
    for _ in range(steps):
        result = execution_result(scenario.state("machine", "exec-1"))
        if result.status != "running":
            return result, scenario, wf
        scenario.advance(advance)
    return execution_result(scenario.state("machine", "exec-1")), scenario, wf


def machine(states: Mapping[str, Any], start: str | None = None) -> dict[str, Any]:
    """A definition from its states, starting at the first one unless `start` is given."""
    return {"StartAt": start or next(iter(states)), "States": dict(states)}
