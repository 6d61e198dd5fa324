"""The values an ASL execution is made of: inputs, events, the task effect, and the folded state.

Every field that holds part of a payload is a JSON value (`Any`). Events carry every value a step
computed (effective task input, outputs, retry delays, timer due times, random draws inside outputs), so
folding them never evaluates a path or draws a number.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any, ClassVar

import attrs

# -- inputs (AslWorkflow.define makes a subclass of each per workflow type, so routing stays unambiguous)


@attrs.frozen
class StartExecution:
    """Start an execution of a state machine.

    Attributes:
        execution_id: the execution's name (the instance id), unique per state machine type.
        input: any JSON value; ``{}`` when omitted, as in Step Functions.
    """

    execution_id: str
    input: Any = attrs.field(factory=dict)


@attrs.frozen
class TaskResult:
    """A task's outcome, fed back by the task effect.

    Attributes:
        execution_id: the execution.
        token: the task token from TaskScheduled.
        output: the task result (any JSON value) when it succeeded.
        error: the ASL error name when it failed (then `output` is ignored).
        cause: the cause that comes with `error`.
    """

    execution_id: str
    token: str
    output: Any = None
    error: str | None = None
    cause: str | None = None


@attrs.frozen
class Wake:
    """A durable timer of the execution fired (a Wait ended, a retry is due, a task timed out).

    Attributes:
        execution_id: the execution.
        key: the timer key (``wait:<n>``, ``retry:<n>``, ``timeout:<token>``, ``heartbeat:<token>``).
    """

    execution_id: str
    key: str


@attrs.frozen
class TaskHeartbeat:
    """A running task is alive: restarts its HeartbeatSeconds clock (SendTaskHeartbeat in Step Functions).

    Attributes:
        execution_id: the execution.
        token: the task token.
    """

    execution_id: str
    token: str


@attrs.frozen
class StopExecution:
    """Abort the execution (StopExecution in Step Functions); its timers are cancelled.

    Attributes:
        execution_id: the execution.
        error: an error name to record, or None.
        cause: why, or None.
    """

    execution_id: str
    error: str | None = None
    cause: str | None = None


# -- the one effect


@attrs.frozen
class RunTask:
    """Run a Task state's resource with its effective input; the handler's result comes back as TaskResult.

    Attributes:
        execution_id: the execution.
        token: the task token the result must name.
        resource: the Task's Resource string.
        input: the effective input (after InputPath and Parameters).
        state_name: the Task state's name.
        attempt: the state's RetryCount.
    """

    #: the TaskResult class of the workflow type that emitted it (set on the per-type subclass)
    result_type: ClassVar[type[TaskResult]] = TaskResult

    execution_id: str
    token: str
    resource: str
    input: Any
    state_name: str
    attempt: int


# -- events


@attrs.frozen
class ExecutionStarted:
    execution_id: str
    input: Any
    started_at: datetime


@attrs.frozen
class StateEntered:
    scope: str
    name: str
    input: Any
    at: datetime


@attrs.frozen
class StateExited:
    """The state finished with `output`; `next` is the state entered next (None: its machine ended)."""

    scope: str
    name: str
    output: Any
    next: str | None


@attrs.frozen
class TaskScheduled:
    scope: str
    name: str
    token: str
    resource: str
    parameters: Any
    attempt: int
    timeout_at: datetime | None = None
    heartbeat_at: datetime | None = None


@attrs.frozen
class TaskSucceeded:
    scope: str
    token: str
    output: Any


@attrs.frozen
class TaskErrored:
    """The task failed, timed out (States.Timeout) or missed its heartbeat (States.HeartbeatTimeout)."""

    scope: str
    token: str
    error: str
    cause: str


@attrs.frozen
class WaitStarted:
    scope: str
    name: str
    key: str
    until: datetime


@attrs.frozen
class RetryScheduled:
    """Retrier number `retrier` applies: attempt `attempt` runs after `delay_seconds` (jitter included)."""

    scope: str
    name: str
    retrier: int
    attempt: int
    error: str
    cause: str
    delay_seconds: float
    key: str
    due_at: datetime


@attrs.frozen
class Woke:
    """The timer `key` the scope waited on fired."""

    scope: str
    key: str


@attrs.frozen
class StateFailed:
    """The state failed with `error` (no retrier applied); a catcher's StateExited or a failure follows."""

    scope: str
    name: str
    error: str
    cause: str


@attrs.frozen
class MapStarted:
    scope: str
    name: str
    items: list[Any]


@attrs.frozen
class ScopeStarted:
    """A Parallel branch or Map iteration started as scope `scope`, running the machine at `machine`."""

    parent: str
    scope: str
    index: int
    machine: str
    start_at: str
    input: Any


@attrs.frozen
class ScopeFailed:
    scope: str
    error: str
    cause: str


@attrs.frozen
class ExecutionSucceeded:
    output: Any


@attrs.frozen
class ExecutionFailed:
    error: str
    cause: str


@attrs.frozen
class ExecutionAborted:
    error: str | None
    cause: str | None


AslEvent = (
    ExecutionStarted
    | StateEntered
    | StateExited
    | TaskScheduled
    | TaskSucceeded
    | TaskErrored
    | WaitStarted
    | RetryScheduled
    | Woke
    | StateFailed
    | MapStarted
    | ScopeStarted
    | ScopeFailed
    | ExecutionSucceeded
    | ExecutionFailed
    | ExecutionAborted
)

EVENTS: Mapping[str, type] = MappingProxyType(
    {
        "asl.execution_started/1": ExecutionStarted,
        "asl.state_entered/1": StateEntered,
        "asl.state_exited/1": StateExited,
        "asl.task_scheduled/1": TaskScheduled,
        "asl.task_succeeded/1": TaskSucceeded,
        "asl.task_errored/1": TaskErrored,
        "asl.wait_started/1": WaitStarted,
        "asl.retry_scheduled/1": RetryScheduled,
        "asl.woke/1": Woke,
        "asl.state_failed/1": StateFailed,
        "asl.map_started/1": MapStarted,
        "asl.scope_started/1": ScopeStarted,
        "asl.scope_failed/1": ScopeFailed,
        "asl.execution_succeeded/1": ExecutionSucceeded,
        "asl.execution_failed/1": ExecutionFailed,
        "asl.execution_aborted/1": ExecutionAborted,
    }
)

# -- state


@attrs.frozen
class Frame:
    """One running machine: the top-level one (scope "") or a Parallel branch / Map iteration.

    `status` is one of: ``entering`` (about to enter `state` with `input`), ``running`` (inside a step),
    ``task`` / ``wait`` / ``retry`` (waiting for `pending`: a task token or timer key), ``children``
    (a Parallel or Map waits for its branches or iterations), ``succeeded``, ``failed``.
    """

    scope: str
    parent: str | None
    index: int
    machine: str
    state: str
    input: Any
    status: str = "entering"
    entered_at: datetime | None = None
    pending: str | None = None
    retries: tuple[int, ...] = ()
    children: tuple[str, ...] = ()
    items: tuple[Any, ...] | None = None
    output: Any = None
    error: str | None = None
    cause: str | None = None


@attrs.frozen
class ExecutionState:
    """The folded state of one execution.

    Attributes:
        execution_id: the execution.
        status: ``new``, ``running``, ``succeeded``, ``failed`` or ``aborted``.
        input: the execution input.
        started_at: when it started (UTC).
        output: the output once it succeeded.
        error: the error name once it failed or was aborted.
        cause: the cause that came with it.
        frames: the running machines (top level and every branch or iteration) by scope.
        count: how many events have been folded (the source of unique tokens and timer keys).
    """

    execution_id: str = ""
    status: str = "new"
    input: Any = None
    started_at: datetime | None = None
    output: Any = None
    error: str | None = None
    cause: str | None = None
    #: running machines by scope, in creation order
    frames: Mapping[str, Frame] = attrs.field(factory=dict)
    #: events folded so far: the source of unique tokens, timer keys and scope names
    count: int = 0
