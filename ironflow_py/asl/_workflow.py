"""`AslWorkflow.define`: a state machine as a `Workflow`; `TaskRegistry`: the handlers its Task states run.

Each defined workflow type gets its own subclasses of the input classes (and of the task effect), because
the service routes an input by its class: two state machines in one app must not share `StartExecution`.
The stored type names are the same for every machine (``asl.start_execution/1``, ...): a type table
belongs to one workflow type, so that is unambiguous and stable.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, ClassVar, TypeVar

import attrs

from ironflow_py.asl import _model
from ironflow_py.asl._definition import StateMachine
from ironflow_py.asl._errors import DATA_LIMIT_EXCEEDED, RUNTIME, TaskFailed
from ironflow_py.asl._interpreter import Run, Types, evolve
from ironflow_py.asl._model import (
    EVENTS,
    AslEvent,
    ExecutionState,
    RunTask,
    StartExecution,
    StopExecution,
    TaskHeartbeat,
    TaskResult,
    Wake,
)
from ironflow_py.asl._paths import PAYLOAD_LIMIT_BYTES, dumps
from ironflow_py.decision import Decision
from ironflow_py.effects._registry import EffectContext, EffectRegistry, RetryPolicy
from ironflow_py.errors import ConfigurationError, LeaseLost, Permanent
from ironflow_py.lifecycle import Cancelled, CancelRequest, Completed, Failed, RunOutcome
from ironflow_py.workflow import Workflow

AslInput = StartExecution | TaskResult | Wake | TaskHeartbeat | StopExecution
T = TypeVar("T")


@attrs.frozen
class ExecutionResult:
    """Where an execution stands, as a plain value.

    Attributes:
        status: ``running``, ``succeeded``, ``failed`` or ``aborted``.
        output: the execution output (any JSON value) once it succeeded.
        error: the ASL error name once it failed or was aborted.
        cause: the cause that came with the error.
    """

    status: str
    output: Any = None
    error: str | None = None
    cause: str | None = None


def execution_result(state: ExecutionState) -> ExecutionResult:
    """The status, output or error of an execution, from its folded state.

    Args:
        state: the state of an AslWorkflow instance (`service.state(type, execution_id)`).

    Returns:
        An `ExecutionResult`; ``running`` until the execution ends.
    """
    if state.status in ("new", "running"):
        return ExecutionResult("running")
    return ExecutionResult(state.status, state.output, state.error, state.cause)


def _per_type(base: type[T], owner: str) -> type[T]:
    # A plain subclass of a frozen attrs class is still a frozen attrs class with the same fields.
    return type(base.__name__, (base,), {"__module__": __name__, "__qualname__": f"{owner}.{base.__name__}"})


class AslWorkflow(Workflow[ExecutionState, AslInput, AslEvent, RunTask]):
    """A Workflow that runs one Amazon States Language state machine; build one with `define`.

    The instance id is the execution id. Inputs are the per-type classes `StartExecution`, `TaskResult`,
    `Wake`, `TaskHeartbeat` and `StopExecution` set on the defined class (e.g. ``Checkout.StartExecution``).

    Raises:
        ConfigurationError: instantiating `AslWorkflow` itself rather than a class made by `define`.
    """

    machine: ClassVar[StateMachine]
    StartExecution: ClassVar[type[StartExecution]]
    TaskResult: ClassVar[type[TaskResult]]
    Wake: ClassVar[type[Wake]]
    TaskHeartbeat: ClassVar[type[TaskHeartbeat]]
    StopExecution: ClassVar[type[StopExecution]]
    RunTask: ClassVar[type[RunTask]]
    state_type = ExecutionState

    @classmethod
    def define(cls, workflow_type: str, machine: StateMachine | Mapping[str, Any] | str) -> type[AslWorkflow]:
        """A Workflow subclass that runs `machine` under the stable type name `workflow_type`.

        Args:
            workflow_type: the workflow type stored with every row (e.g. ``"checkout"``).
            machine: a parsed `StateMachine`, or a definition to parse.

        Returns:
            The subclass; register it with `App(workflows=[...])` or `WorkflowService`.

        Raises:
            AslValidationError: `machine` is a definition that does not validate.
            ConfigurationError: `workflow_type` is empty.
        """
        if not isinstance(workflow_type, str) or not workflow_type.strip():
            raise ConfigurationError("AslWorkflow.define needs a non-empty workflow type")
        parsed = machine if isinstance(machine, StateMachine) else StateMachine.parse(machine)
        name = "".join(part.capitalize() for part in workflow_type.replace("-", "_").split("_")) or "Asl"
        start = _per_type(StartExecution, name)
        result = _per_type(TaskResult, name)
        wake = _per_type(Wake, name)
        heartbeat = _per_type(TaskHeartbeat, name)
        stop = _per_type(StopExecution, name)
        run_task = _per_type(RunTask, name)
        run_task.result_type = result
        timeout = parsed.definition.get("TimeoutSeconds")
        namespace: dict[str, Any] = {
            # The machine's own TimeoutSeconds: the engine closes the execution TimedOut when it passes.
            "run_timeout": timedelta(seconds=timeout) if isinstance(timeout, int) and timeout > 0 else None,
            "__module__": __name__,
            "__qualname__": name,
            "type": workflow_type,
            "machine": parsed,
            "inputs": {
                "asl.start_execution/1": start,
                "asl.task_result/1": result,
                "asl.wake/1": wake,
                "asl.task_heartbeat/1": heartbeat,
                "asl.stop_execution/1": stop,
            },
            "events": EVENTS,
            "effects": {"asl.run_task/1": run_task},
            "StartExecution": start,
            "TaskResult": result,
            "Wake": wake,
            "TaskHeartbeat": heartbeat,
            "StopExecution": stop,
            "RunTask": run_task,
        }
        return type(name, (cls,), namespace)

    def __init__(self) -> None:
        if not hasattr(type(self), "machine"):
            raise ConfigurationError("use AslWorkflow.define(type, machine) to make an ASL workflow")
        self._types = Types(self.type, type(self).Wake, type(self).RunTask)

    def initial_state(self) -> ExecutionState:
        """An execution that has not started.

        Returns:
            The empty `ExecutionState`.
        """
        return ExecutionState()

    def workflow_id(self, input: AslInput) -> str:
        """The instance an input is for: its execution id.

        Args:
            input: any of the workflow's inputs.

        Returns:
            `input.execution_id`.
        """
        return input.execution_id

    def input_key(self, input: AslInput) -> str | None:
        """StartExecution is keyed, so a repeat is a duplicate (as an execution name is in Step Functions).

        Args:
            input: any of the workflow's inputs.

        Returns:
            ``"start"`` for StartExecution, else None.
        """
        return "start" if isinstance(input, StartExecution) else None

    def outcome(self, state: ExecutionState) -> RunOutcome | None:
        """How the execution ended, read from its state.

        `Completed(output)`, `Failed(error, cause)`, or `Cancelled(cause)` after StopExecution; None while it
        runs. (A machine-level TimeoutSeconds closes it `TimedOut`.)

        Args:
            state: the folded execution state.

        Returns:
            The outcome, or None while the execution runs.
        """
        if state.status == "succeeded":
            return Completed(state.output)
        if state.status == "failed":
            return Failed(state.error or "", state.cause)
        if state.status == "aborted":
            return Cancelled(state.cause or state.error)
        return None

    def cancel_input(self, request: CancelRequest) -> AslInput | None:
        """A cancel request stops the execution (Step Functions' StopExecution), cancelling its timers.

        Args:
            request: the instance and the reason.

        Returns:
            The StopExecution input for the instance.
        """
        return type(self).StopExecution(request.workflow_id, "States.Aborted", request.reason)

    def evolve(self, state: ExecutionState, event: AslEvent) -> ExecutionState:
        """Fold one recorded event (never evaluates a path or draws a number).

        Args:
            state: the state before `event`.
            event: a recorded ASL event.

        Returns:
            The state after it.
        """
        return evolve(self.machine, state, event)

    def decide(self, now: datetime, state: ExecutionState, input: AslInput) -> Decision[AslEvent, _model.RunTask]:
        """Apply one input, then run every automatic state until the machine waits for the outside.

        Args:
            now: the decision time (timezone-aware, the service's clock).
            state: the folded execution state.
            input: StartExecution, TaskResult, Wake, TaskHeartbeat or StopExecution.

        Returns:
            The events, task effects and timers of the whole step; a rejection for an input that no longer
            applies (a result for an unknown token, a timer nothing waits for, a second start).
        """
        run = Run(self.machine, self._types, now, state)
        if isinstance(input, StartExecution):
            if state.status != "new":
                return Decision.reject(f"execution {input.execution_id!r} has already started")
            try:
                size = len(dumps(input.input).encode())
            except (TypeError, ValueError) as exc:
                return Decision.reject(f"the execution input is not JSON: {exc}")
            if size > PAYLOAD_LIMIT_BYTES:
                return Decision.reject(f"{DATA_LIMIT_EXCEEDED}: the execution input has {size} bytes")
            run.start(input)
        elif state.status == "new":
            return Decision.reject("the execution has not started")
        elif isinstance(input, TaskResult):
            if not run.task_result(input):
                return Decision.reject(f"no task is waiting for token {input.token!r}")
        elif isinstance(input, Wake):
            if not run.wake(input):
                return Decision.reject(f"nothing waits for timer {input.key!r}")
        elif isinstance(input, TaskHeartbeat):
            if not run.heartbeat(input):
                return Decision.reject(f"no task with a heartbeat is waiting for token {input.token!r}")
        else:
            run.stop(input)
        return run.decision()

    def dead_letter_input(self, effect: _model.RunTask, error: str) -> AslInput | None:
        """Nothing: a dead task effect leaves the execution waiting (see the comment).

        Args:
            effect: the dead RunTask effect.
            error: why it died.

        Returns:
            None.
        """
        # A dead task effect means the worker could not run it at all (no handler for the resource): the
        # execution keeps waiting (or times out by TimeoutSeconds) so an operator can fix the deployment
        # and retry the dead letter.
        return None

    def state_name(self, state: ExecutionState) -> str:
        """The current top-level state's name while running, else the execution status.

        Args:
            state: the folded execution state.

        Returns:
            A short name for diagrams and inspection.
        """
        root = state.frames.get("")
        if state.status == "running" and root is not None:
            return root.state
        return state.status


# -- tasks -------------------------------------------------------------------------------------------------


@attrs.frozen
class TaskContext:
    """What a task handler knows about the task it runs.

    Attributes:
        execution_id: the execution (instance id).
        workflow_type: the state machine's workflow type.
        state_name: the Task state's name.
        resource: the Task's Resource string.
        token: the task token (unique in the execution).
        attempt: the state's RetryCount: 0 first, then 1, 2, ... per Retry.
        idempotency_key: the same on every delivery of this task attempt; pass it downstream.
        effect: the underlying `EffectContext` (for `heartbeat()` on the effect's lease).
    """

    execution_id: str
    workflow_type: str
    state_name: str
    resource: str
    token: str
    attempt: int
    idempotency_key: str
    effect: EffectContext = attrs.field(repr=False)


TaskHandler = Callable[[Any, TaskContext], Any]

#: How the runtime re-delivers a task effect. The handler never raises (outcomes become TaskResults), so an
#: attempt ends unsettled only when its worker died, its lease expired, or the feedback transaction failed
#: (an outage); the runtime dead-letters a row whose claims exceed max_attempts, so this must be generous.
DELIVERY_POLICY = RetryPolicy(max_attempts=50, base_delay=1.0, factor=2.0, max_delay=60.0)
H = TypeVar("H", bound=TaskHandler)


class TaskRegistry:
    """Maps Task `Resource` strings to handlers; `effects()` turns it into an `EffectRegistry`.

    A handler takes (the task's effective input, a `TaskContext`) and returns the task result (any JSON
    value). Raising `TaskFailed(error, cause)` fails the task with that error; any other exception fails it
    with the exception's class name as the error and its message as the cause (as Lambda does).
    """

    def __init__(self) -> None:
        self._handlers: dict[str, TaskHandler] = {}

    def register(self, resource: str, handler: TaskHandler) -> None:
        """Run `handler` for Task states whose Resource is exactly `resource`.

        Args:
            resource: the Resource string (an ARN or any string).
            handler: a sync callable (effective input, TaskContext) -> task result.

        Raises:
            ConfigurationError: the resource already has a handler, or the handler is not a sync callable.
        """
        if resource in self._handlers:
            raise ConfigurationError(f"resource {resource!r} already has a handler")
        if not callable(handler) or inspect.iscoroutinefunction(handler):
            raise ConfigurationError(f"the handler for {resource!r} must be a plain (sync) callable")
        self._handlers[resource] = handler

    def resource(self, resource: str) -> Callable[[H], H]:
        """Decorator form of `register`.

        Args:
            resource: the Resource string.

        Returns:
            A decorator that registers the function and returns it unchanged.
        """

        def decorate(fn: H) -> H:
            self.register(resource, fn)
            return fn

        return decorate

    def effects(self, registry: EffectRegistry | None = None) -> EffectRegistry:
        """An EffectRegistry (new, or `registry`) whose RunTask handler calls these task handlers.

        Every handler outcome, exceptions included, goes back to the execution as a TaskResult, where the
        state's Retry rules decide: the runtime never retries a task failure. Its policy (`DELIVERY_POLICY`)
        only re-delivers a task whose worker died or whose result could not be committed (at-least-once
        delivery, the same attempt and idempotency key). A task whose resource has no handler is
        dead-lettered at once.

        Args:
            registry: an existing registry to add the handler to; None makes a new one.

        Returns:
            The registry.
        """
        target = registry if registry is not None else EffectRegistry()
        target.register(RunTask, self.run, policy=DELIVERY_POLICY)
        return target

    def run(self, effect: _model.RunTask, ctx: EffectContext) -> _model.TaskResult:
        """Call the handler for `effect.resource` and turn its outcome into the execution's TaskResult input.

        Args:
            effect: the RunTask effect (its class names the TaskResult class to return).
            ctx: the effect attempt's context.

        Returns:
            The TaskResult with the handler's output, or its error and cause.

        Raises:
            Permanent: no handler is registered for the resource.
        """
        handler = self._handlers.get(effect.resource)
        if handler is None:
            raise Permanent(f"no task handler for resource {effect.resource!r}")
        result = type(effect).result_type
        task_ctx = TaskContext(
            effect.execution_id,
            ctx.workflow_type,
            effect.state_name,
            effect.resource,
            effect.token,
            effect.attempt,
            ctx.idempotency_key,
            ctx,
        )
        try:
            output = handler(effect.input, task_ctx)
        except TaskFailed as exc:
            return result(effect.execution_id, effect.token, error=exc.error, cause=exc.cause)
        except LeaseLost:
            raise  # from a heartbeat: this attempt no longer owns the effect, its result must not count
        except Exception as exc:
            return result(effect.execution_id, effect.token, error=type(exc).__name__, cause=str(exc))
        try:
            size = len(dumps(output).encode())
        except (TypeError, ValueError) as exc:
            return result(effect.execution_id, effect.token, error=RUNTIME, cause=f"the task result is not JSON: {exc}")
        if size > PAYLOAD_LIMIT_BYTES:
            return result(
                effect.execution_id,
                effect.token,
                error=DATA_LIMIT_EXCEEDED,
                cause=f"the task result has {size} bytes, more than {PAYLOAD_LIMIT_BYTES}",
            )
        return result(effect.execution_id, effect.token, output=output)
