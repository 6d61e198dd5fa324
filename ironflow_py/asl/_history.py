"""The execution history in the shape of Step Functions' GetExecutionHistory, for comparing with AWS.

Each recorded ASL event becomes one or more history events with AWS's type names (`ExecutionStarted`,
`TaskStateEntered`, `TaskScheduled`, `TaskSucceeded`, `MapIterationStarted`, ...) and details fields,
numbered from 1 with `previousEventId` pointing at the event before. Ids, timestamps and the order of
events of concurrent branches are ours, not AWS's.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from ironflow_py.asl._definition import StateMachine
from ironflow_py.asl._interpreter import iso
from ironflow_py.asl._model import (
    AslEvent,
    ExecutionAborted,
    ExecutionFailed,
    ExecutionStarted,
    ExecutionSucceeded,
    MapStarted,
    RetryScheduled,
    ScopeFailed,
    ScopeStarted,
    StateEntered,
    StateExited,
    StateFailed,
    TaskErrored,
    TaskScheduled,
    TaskSucceeded,
    WaitStarted,
    Woke,
)
from ironflow_py.asl._paths import dumps


def history_events(  # noqa: PLR0915 - one case per event type reads best as one match statement
    machine: StateMachine, events: Iterable[tuple[datetime, AslEvent]]
) -> list[dict[str, Any]]:
    """Translate an execution's recorded events into Step Functions history events.

    Args:
        machine: the execution's state machine (to name each state's type).
        events: (recorded_at, event) pairs in sequence order, e.g. from `service.history(type, id)`.

    Returns:
        A list of dicts with `id`, `previousEventId`, `timestamp` (ISO 8601 UTC), `type` and a details
        field named as in the Step Functions API (e.g. `taskScheduledEventDetails`).
    """
    out: list[dict[str, Any]] = []
    details: dict[str, Any]
    machines: dict[str, str] = {"": ""}
    names: dict[str, str] = {}
    indexes: dict[str, int] = {}
    parents: dict[str, str] = {}

    def add(at: datetime, kind: str, details_key: str | None = None, details: dict[str, Any] | None = None) -> None:
        entry: dict[str, Any] = {
            "id": len(out) + 1,
            "previousEventId": len(out),
            "timestamp": iso(at),
            "type": kind,
        }
        if details_key is not None:
            entry[details_key] = details or {}
        out.append(entry)

    def stype(scope: str, name: str) -> str:
        return machine.state(machines.get(scope, ""), name).type

    for at, event in events:
        match event:
            case ExecutionStarted(input=payload):
                add(at, "ExecutionStarted", "executionStartedEventDetails", {"input": dumps(payload)})
            case StateEntered(scope=scope, name=name, input=payload):
                names[scope] = name
                add(
                    at,
                    f"{stype(scope, name)}StateEntered",
                    "stateEnteredEventDetails",
                    {"name": name, "input": dumps(payload)},
                )
                if stype(scope, name) == "Parallel":
                    add(at, "ParallelStateStarted")
            case StateExited(scope=scope, name=name, output=output):
                kind = stype(scope, name)
                if kind == "Map":
                    add(at, "MapStateSucceeded")
                elif kind == "Parallel":
                    add(at, "ParallelStateSucceeded")
                add(at, f"{kind}StateExited", "stateExitedEventDetails", {"name": name, "output": dumps(output)})
                if event.next is None and machines.get(scope, "").endswith("/it"):
                    details = {"name": names.get(parents[scope], ""), "index": indexes[scope]}
                    add(at, "MapIterationSucceeded", "mapIterationSucceededEventDetails", details)
            case TaskScheduled(resource=resource, parameters=params, timeout_at=timeout_at):
                details = {"resource": resource, "parameters": dumps(params)}
                if timeout_at is not None:
                    details["timeoutInSeconds"] = int((timeout_at - at).total_seconds())
                add(at, "TaskScheduled", "taskScheduledEventDetails", details)
            case TaskSucceeded(output=output):
                add(at, "TaskSucceeded", "taskSucceededEventDetails", {"output": dumps(output)})
            case TaskErrored(error=error, cause=cause):
                kind = (
                    "TaskTimedOut" if error.startswith(("States.Timeout", "States.HeartbeatTimeout")) else "TaskFailed"
                )
                key = "taskTimedOutEventDetails" if kind == "TaskTimedOut" else "taskFailedEventDetails"
                add(at, kind, key, {"error": error, "cause": cause})
            case WaitStarted():
                pass
            case RetryScheduled() | Woke():
                pass
            case StateFailed(scope=scope, name=name, error=error, cause=cause):
                kind = stype(scope, name)
                if kind in ("Map", "Parallel"):
                    add(at, f"{kind}StateFailed")
            case MapStarted(items=items):
                add(at, "MapStateStarted", "mapStateStartedEventDetails", {"length": len(items)})
            case ScopeStarted(parent=parent, scope=scope, index=index, machine=path):
                machines[scope] = path
                indexes[scope] = index
                parents[scope] = parent
                if path.endswith("/it"):
                    add(
                        at,
                        "MapIterationStarted",
                        "mapIterationStartedEventDetails",
                        {"name": names.get(parent, ""), "index": index},
                    )
            case ScopeFailed(scope=scope, error=error, cause=cause):
                if machines.get(scope, "").endswith("/it"):
                    details = {"name": names.get(parents[scope], ""), "index": indexes[scope], "error": error}
                    add(at, "MapIterationFailed", "mapIterationFailedEventDetails", details)
            case ExecutionSucceeded(output=output):
                add(at, "ExecutionSucceeded", "executionSucceededEventDetails", {"output": dumps(output)})
            case ExecutionFailed(error=error, cause=cause):
                add(at, "ExecutionFailed", "executionFailedEventDetails", {"error": error, "cause": cause})
            case ExecutionAborted(error=error, cause=cause):
                add(
                    at, "ExecutionAborted", "executionAbortedEventDetails", {"error": error or "", "cause": cause or ""}
                )
    return out
