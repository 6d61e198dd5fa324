"""Amazon States Language workflows: an ASL state machine run as a durable ironflow workflow.

`StateMachine.parse` validates a definition; `AslWorkflow.define` makes it a `Workflow` whose `decide`
interprets the machine and whose `evolve` folds the recorded steps; `TaskRegistry` maps Task resources to
handlers run as effects. Needs the `asl` extra (jsonpath-ng). See design/asl.md.
"""

from ironflow_py.asl._definition import StateDef, StateMachine
from ironflow_py.asl._errors import AslValidationError, TaskFailed
from ironflow_py.asl._history import history_events
from ironflow_py.asl._model import (
    ExecutionState,
    RunTask,
    StartExecution,
    StopExecution,
    TaskHeartbeat,
    TaskResult,
    Wake,
)
from ironflow_py.asl._workflow import (
    AslWorkflow,
    ExecutionResult,
    TaskContext,
    TaskRegistry,
    execution_result,
)

__all__ = [
    "AslValidationError",
    "AslWorkflow",
    "ExecutionResult",
    "ExecutionState",
    "RunTask",
    "StartExecution",
    "StateDef",
    "StateMachine",
    "StopExecution",
    "TaskContext",
    "TaskFailed",
    "TaskHeartbeat",
    "TaskRegistry",
    "TaskResult",
    "Wake",
    "execution_result",
    "history_events",
]
