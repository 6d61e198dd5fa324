"""The interpreter: `evolve` folds recorded steps; `decide` runs every automatic state until the machine waits.

`decide` works on a copy of the state and applies each event it emits through `evolve` before taking the
next step, so what it decides and what a refold rebuilds cannot disagree. All path evaluation, intrinsic
calls and random draws happen here, in `decide`; their results are in the events.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any

import attrs

from ironflow_py.asl import _choice, _intrinsics, _paths
from ironflow_py.asl._definition import StateDef, StateMachine
from ironflow_py.asl._errors import (
    ALL,
    HEARTBEAT_TIMEOUT,
    NO_CHOICE_MATCHED,
    RUNTIME,
    TASK_FAILED,
    TERMINAL,
    TIMEOUT,
    StateError,
)
from ironflow_py.asl._model import (
    AslEvent,
    ExecutionAborted,
    ExecutionFailed,
    ExecutionStarted,
    ExecutionState,
    ExecutionSucceeded,
    Frame,
    MapStarted,
    RetryScheduled,
    RunTask,
    ScopeFailed,
    ScopeStarted,
    StartExecution,
    StateEntered,
    StateExited,
    StateFailed,
    StopExecution,
    TaskErrored,
    TaskHeartbeat,
    TaskResult,
    TaskScheduled,
    TaskSucceeded,
    WaitStarted,
    Wake,
    Woke,
)
from ironflow_py.decision import Decision, Timer


def iso(at: datetime | None) -> str | None:
    """A timestamp as Step Functions writes it: UTC, milliseconds, a trailing Z."""
    if at is None:
        return None
    at = at.astimezone(UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


# -- evolve -----------------------------------------------------------------------------------------------


def _set(state: ExecutionState, frame: Frame) -> ExecutionState:
    frames = dict(state.frames)
    frames[frame.scope] = frame
    return attrs.evolve(state, frames=MappingProxyType(frames))


def _drop_descendants(state: ExecutionState, scope: str) -> ExecutionState:
    prefix = scope + "/"
    if not any(s.startswith(prefix) for s in state.frames):
        return state
    frames = {s: f for s, f in state.frames.items() if not s.startswith(prefix)}
    return attrs.evolve(state, frames=MappingProxyType(frames))


def evolve(machine: StateMachine, state: ExecutionState, event: AslEvent) -> ExecutionState:
    """Fold one event into the execution state (pure; reads only the machine's structure).

    Args:
        machine: the parsed state machine (for the StartAt of the top-level machine).
        state: the state before `event`.
        event: a recorded ASL event.

    Returns:
        The state after `event`.
    """
    state = attrs.evolve(state, count=state.count + 1)
    frames = state.frames
    match event:
        case ExecutionStarted(execution_id=eid, input=payload, started_at=at):
            root = Frame("", None, 0, "", machine.start_at, payload)
            return attrs.evolve(
                state,
                execution_id=eid,
                status="running",
                input=payload,
                started_at=at,
                frames=MappingProxyType({"": root}),
            )
        case StateEntered(scope=scope, name=name, input=payload, at=at):
            f = frames[scope]
            return _set(
                state,
                attrs.evolve(f, state=name, input=payload, entered_at=at, status="running", pending=None, retries=()),
            )
        case StateExited(scope=scope, output=output, next=nxt):
            state = _drop_descendants(state, scope)
            f = state.frames[scope]
            if nxt is None:
                f = attrs.evolve(f, status="succeeded", output=output, children=(), items=None, pending=None)
            else:
                f = attrs.evolve(f, status="entering", state=nxt, input=output, children=(), items=None, pending=None)
            return _set(state, f)
        case TaskScheduled(scope=scope, token=token):
            return _set(state, attrs.evolve(frames[scope], status="task", pending=token))
        case TaskSucceeded(scope=scope) | TaskErrored(scope=scope) | Woke(scope=scope):
            return _set(state, attrs.evolve(frames[scope], status="running", pending=None))
        case WaitStarted(scope=scope, key=key):
            return _set(state, attrs.evolve(frames[scope], status="wait", pending=key))
        case RetryScheduled(scope=scope, retrier=index, key=key):
            state = _drop_descendants(state, scope)
            f = state.frames[scope]
            retries = list(f.retries) + [0] * max(0, index + 1 - len(f.retries))
            retries[index] += 1
            return _set(
                state,
                attrs.evolve(f, status="retry", pending=key, retries=tuple(retries), children=(), items=None),
            )
        case StateFailed(scope=scope):
            state = _drop_descendants(state, scope)
            f = state.frames[scope]
            return _set(state, attrs.evolve(f, status="running", pending=None, children=(), items=None))
        case MapStarted(scope=scope, items=items):
            return _set(state, attrs.evolve(frames[scope], status="children", items=tuple(items), children=()))
        case ScopeStarted(parent=parent, scope=scope, index=index, machine=path, start_at=start, input=payload):
            p = frames[parent]
            state = _set(state, attrs.evolve(p, status="children", children=(*p.children, scope)))
            return _set(state, Frame(scope, parent, index, path, start, payload))
        case ScopeFailed(scope=scope, error=error, cause=cause):
            f = frames[scope]
            return _set(state, attrs.evolve(f, status="failed", error=error, cause=cause, pending=None))
        case ExecutionSucceeded(output=output):
            return attrs.evolve(state, status="succeeded", output=output, frames=MappingProxyType({}))
        case ExecutionFailed(error=error, cause=cause):
            return attrs.evolve(state, status="failed", error=error, cause=cause, frames=MappingProxyType({}))
        case ExecutionAborted(error=error, cause=cause):
            return attrs.evolve(state, status="aborted", error=error, cause=cause, frames=MappingProxyType({}))
    raise TypeError(f"not an ASL event: {event!r}")


# -- decide -----------------------------------------------------------------------------------------------


@attrs.frozen
class Types:
    """The per-workflow-type classes `decide` builds values of (see `AslWorkflow.define`)."""

    workflow_type: str
    wake: type[Wake]
    run_task: type[RunTask]


def matches(names: list[str], error: str) -> bool:
    """Whether a retrier's or catcher's ErrorEquals covers `error` (ASL wildcard rules; see _errors.TERMINAL)."""
    if error in names:
        return True
    if error in TERMINAL:
        return False
    if ALL in names:
        return True
    return TASK_FAILED in names and error != TIMEOUT


def retry_delay(retrier: Mapping[str, Any], attempt: int, unit: float) -> float:
    """Seconds before retry `attempt` (1-based): IntervalSeconds * BackoffRate^(attempt-1), capped by
    MaxDelaySeconds; with JitterStrategy FULL a uniform share of it (`unit` in [0, 1)).

    Spec: https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html#error-handling-retrying-after-an-error
    """
    interval = retrier.get("IntervalSeconds", 1)
    rate = retrier.get("BackoffRate", 2.0)
    try:
        delay = float(interval * rate ** (attempt - 1))
    except OverflowError:
        delay = float("inf")
    cap = retrier.get("MaxDelaySeconds")
    if cap is not None:
        delay = min(delay, float(cap))
    if delay == float("inf"):
        delay = 366 * 86400.0  # a retrier without a cap whose backoff overflowed: a year, then it fires
    if retrier.get("JitterStrategy", "NONE") == "FULL":
        delay *= unit
    return delay


class Run:
    """One `decide` call: a working state, the events, effects and timers emitted so far."""

    def __init__(self, machine: StateMachine, types: Types, now: datetime, state: ExecutionState) -> None:
        self.machine = machine
        self.types = types
        self.now = now
        self.state = state
        self.events: list[AslEvent] = []
        self.effects: list[RunTask] = []
        self.timers: list[Timer[Any]] = []
        self.cancels: list[str] = []
        self.draws = _intrinsics.Draws(f"{state.execution_id}|{state.count}")

    # -- plumbing

    def emit(self, event: AslEvent) -> None:
        if isinstance(event, StateExited | StateFailed | RetryScheduled):
            # The state's branches and iterations end with it: their timers must not fire later.
            prefix = event.scope + "/"
            for f in self.state.frames.values():
                if f.scope.startswith(prefix) and f.pending is not None:
                    self.cancels += [f.pending, f"timeout:{f.pending}", f"heartbeat:{f.pending}"]
        self.state = evolve(self.machine, self.state, event)
        self.events.append(event)

    def decision(self) -> Decision[AslEvent, RunTask]:
        d: Decision[AslEvent, RunTask] = Decision.accept(*self.events, effects=self.effects)
        # A timer scheduled and cancelled within this one decision (a branch that started waiting and was
        # abandoned in the same step) is simply never written; the store would upsert it otherwise.
        cancelled = set(self.cancels)
        for timer in self.timers:
            if timer.key not in cancelled:
                d = d.with_timer(timer.key, timer.at, timer.input)
        scheduled = {t.key for t in self.timers}
        keys = tuple(dict.fromkeys(k for k in self.cancels if k not in scheduled))
        return d.cancel_timer(*keys) if keys else d

    def timer(self, key: str, at: datetime) -> None:
        self.timers.append(Timer(key, at, self.types.wake(self.state.execution_id, key)))

    def frame(self, scope: str) -> Frame:
        return self.state.frames[scope]

    def sdef(self, f: Frame) -> StateDef:
        return self.machine.state(f.machine, f.state)

    def context(self, f: Frame, **extra: Any) -> dict[str, Any]:
        ctx: dict[str, Any] = {
            "Execution": {
                "Id": f"arn:ironflow:states:::execution:{self.types.workflow_type}:{self.state.execution_id}",
                "Input": self.state.input,
                "Name": self.state.execution_id,
                "StartTime": iso(self.state.started_at),
            },
            "State": {"Name": f.state, "EnteredTime": iso(f.entered_at), "RetryCount": sum(f.retries)},
            "StateMachine": {
                "Id": f"arn:ironflow:states:::stateMachine:{self.types.workflow_type}",
                "Name": self.types.workflow_type,
            },
        }
        ctx.update(extra)
        return ctx

    def intrinsic(self) -> Callable[[str, Any, Any], Any]:
        draws = self.draws
        return lambda text, data, context: _intrinsics.evaluate(text, data, context, draws)

    def render(self, template: Any, data: Any, context: Any) -> Any:
        return _paths.render(template, data, context, self.intrinsic())

    def effective_input(self, f: Frame, s: StateDef) -> Any:
        return _paths.input_path(s.get("InputPath", "$"), f.input, self.context(f))

    # -- inputs

    def start(self, input: StartExecution) -> None:
        self.emit(ExecutionStarted(input.execution_id, _paths.freeze(input.input), self.now))
        self.settle()

    def task_result(self, input: TaskResult) -> bool:
        f = self._waiting_on(input.token, "task")
        if f is None:
            return False
        self.cancels += [f"timeout:{input.token}", f"heartbeat:{input.token}"]
        if input.error is not None:
            self.emit(TaskErrored(f.scope, input.token, input.error, input.cause or ""))
            self.fail_state(self.frame(f.scope), input.error, input.cause or "")
        else:
            self.emit(TaskSucceeded(f.scope, input.token, _paths.freeze(input.output)))
            self.guard(self.frame(f.scope), lambda fr: self.finish_task(fr, input.output))
        self.settle()
        return True

    def wake(self, input: Wake) -> bool:
        kind, _, token = input.key.partition(":")
        if kind in ("timeout", "heartbeat"):
            f = self._waiting_on(token, "task")
            if f is None:
                return False
            other = "heartbeat" if kind == "timeout" else "timeout"
            self.cancels.append(f"{other}:{token}")
            error = TIMEOUT if kind == "timeout" else HEARTBEAT_TIMEOUT
            cause = "the task did not finish within TimeoutSeconds" if kind == "timeout" else "no heartbeat in time"
            self.emit(TaskErrored(f.scope, token, error, cause))
            self.fail_state(self.frame(f.scope), error, cause)
        else:
            f = self._waiting_on(input.key, "wait") or self._waiting_on(input.key, "retry")
            if f is None:
                return False
            self.emit(Woke(f.scope, input.key))
            fr = self.frame(f.scope)
            if f.status == "wait":
                self.guard(fr, lambda x: self.exit(x, self.output(x, self.effective_input(x, self.sdef(x)))))
            else:
                self.guard(fr, self.act)
        self.settle()
        return True

    def heartbeat(self, input: TaskHeartbeat) -> bool:
        f = self._waiting_on(input.token, "task")
        if f is None:
            return False
        seconds = self._seconds(f, self.sdef(f), "HeartbeatSeconds")
        if seconds is None:
            return False
        self.timer(f"heartbeat:{input.token}", self.now + timedelta(seconds=seconds))
        return True

    def stop(self, input: StopExecution) -> None:
        for f in self.state.frames.values():
            if f.pending is not None:
                self.cancels += [f.pending, f"timeout:{f.pending}", f"heartbeat:{f.pending}"]
        self.emit(ExecutionAborted(input.error, input.cause))

    def _waiting_on(self, key: str, status: str) -> Frame | None:
        for f in self.state.frames.values():
            if f.pending == key and f.status == status:
                return f
        return None

    # -- the loop

    def settle(self) -> None:
        """Run automatic steps until every running machine waits for the outside, or the execution ends."""
        progress = True
        while progress and self.state.status == "running":
            progress = False
            for scope in list(self.state.frames):
                f = self.state.frames.get(scope)
                if f is None or self.state.status != "running":
                    continue
                if f.status == "entering":
                    self.enter(f)
                    progress = True
                elif f.status == "children" and self.collect(f):
                    progress = True
                elif f.scope == "" and f.status == "succeeded":
                    self.emit(ExecutionSucceeded(f.output))
                elif f.scope == "" and f.status == "failed":
                    self.emit(ExecutionFailed(f.error or "", f.cause or ""))

    def guard(self, f: Frame, step: Callable[[Frame], None]) -> None:
        """Run `step`; a StateError it raises fails the state (Retry and Catch apply)."""
        try:
            step(f)
        except StateError as exc:
            self.fail_state(self.frame(f.scope), exc.error, exc.cause)

    def enter(self, f: Frame) -> None:
        self.emit(StateEntered(f.scope, f.state, f.input, self.now))
        self.guard(self.frame(f.scope), self.act)

    def act(self, f: Frame) -> None:
        """Do what the current state does, from its raw input (also how a retry runs it again)."""
        s = self.sdef(f)
        handler = getattr(self, "_" + s.type.lower())
        handler(f, s)

    def exit(self, f: Frame, output: Any, nxt: str | None = None, *, terminal: bool = False) -> None:
        s = self.sdef(f)
        _paths.check_size(output, f"output of state '{f.state}'")
        self.emit(StateExited(f.scope, f.state, _paths.freeze(output), None if terminal else (nxt or s.next)))

    def output(self, f: Frame, value: Any) -> Any:
        return _paths.output_path(self.sdef(f).get("OutputPath", "$"), value, self.context(f))

    def combine(self, f: Frame, s: StateDef, result: Any) -> Any:
        """ResultSelector, ResultPath and OutputPath applied to a state's result."""
        if "ResultSelector" in s.fields:
            result = self.render(s.get("ResultSelector"), result, self.context(f))
        combined = _paths.result_path(s.get("ResultPath", "$"), f.input, result)
        return self.output(f, combined)

    # -- states

    def _pass(self, f: Frame, s: StateDef) -> None:
        if "Result" in s.fields:
            result = s.get("Result")
        else:
            result = self.effective_input(f, s)
            if "Parameters" in s.fields:
                result = self.render(s.get("Parameters"), result, self.context(f))
        self.exit(f, self.output(f, _paths.result_path(s.get("ResultPath", "$"), f.input, result)))

    def _succeed(self, f: Frame, s: StateDef) -> None:
        self.exit(f, self.output(f, self.effective_input(f, s)), terminal=True)

    def _fail(self, f: Frame, s: StateDef) -> None:
        error = self._fail_field(f, s, "Error")
        cause = self._fail_field(f, s, "Cause")
        self.emit(StateFailed(f.scope, f.state, error, cause))
        self.fail_scope(f.scope, error, cause)

    def _fail_field(self, f: Frame, s: StateDef, key: str) -> str:
        if key in s.fields:
            return str(s.get(key))
        path = s.get(key + "Path")
        if path is None:
            return ""
        value = _paths.evaluate(path, f.input, self.context(f), self.intrinsic())
        if not isinstance(value, str):
            raise StateError(RUNTIME, f"The {key}Path '{path}' must point to a string, got {_paths.dumps(value)}")
        return value

    def _choice(self, f: Frame, s: StateDef) -> None:
        data = self.effective_input(f, s)
        ctx = self.context(f)
        for rule in s.get("Choices"):
            if _choice.evaluate(rule, data, ctx):
                self.exit(f, self.output(f, data), rule["Next"])
                return
        default = s.get("Default")
        if default is None:
            raise StateError(NO_CHOICE_MATCHED, f"No Matches! for state '{f.state}'")
        self.exit(f, self.output(f, data), default)

    def _wait(self, f: Frame, s: StateDef) -> None:
        data = self.effective_input(f, s)
        until = self._wait_until(f, s, data)
        if until <= self.now:
            self.exit(f, self.output(f, data))
            return
        key = f"wait:{self.state.count}"
        self.emit(WaitStarted(f.scope, f.state, key, until))
        self.timer(key, until)

    def _wait_until(self, f: Frame, s: StateDef, data: Any) -> datetime:
        if "Seconds" in s.fields:
            return self.now + timedelta(seconds=s.get("Seconds"))
        if "Timestamp" in s.fields:
            at = _choice.parse_timestamp(s.get("Timestamp"))
            assert at is not None  # validated at parse time
            return at
        if "SecondsPath" in s.fields:
            value = _paths.select(s.get("SecondsPath"), data, self.context(f))
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise StateError(RUNTIME, f"The SecondsPath parameter does not reference a valid value: {value!r}")
            return self.now + timedelta(seconds=value)
        value = _paths.select(s.get("TimestampPath"), data, self.context(f))
        at = _choice.parse_timestamp(value)
        if at is None:
            raise StateError(RUNTIME, f"The TimestampPath parameter does not reference a valid timestamp: {value!r}")
        return at

    def _seconds(self, f: Frame, s: StateDef, key: str) -> float | None:
        if key in s.fields:
            return float(s.get(key))
        path = s.get(key + "Path")
        if path is None:
            return None
        value = _paths.select(path, self.effective_input(f, s), self.context(f))
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise StateError(RUNTIME, f"The {key}Path parameter does not reference a positive integer: {value!r}")
        return float(value)

    def _task(self, f: Frame, s: StateDef) -> None:
        token = f"t{self.state.count}"
        data = self.effective_input(f, s)
        if "Parameters" in s.fields:
            data = self.render(s.get("Parameters"), data, self.context(f, Task={"Token": token}))
        _paths.check_size(data, f"input of state '{f.state}'")
        timeout = self._seconds(f, s, "TimeoutSeconds")
        heartbeat = self._seconds(f, s, "HeartbeatSeconds")
        timeout_at = self.now + timedelta(seconds=timeout) if timeout else None
        heartbeat_at = self.now + timedelta(seconds=heartbeat) if heartbeat else None
        attempt = sum(f.retries)
        resource = s.get("Resource")
        data = _paths.freeze(data)
        self.emit(TaskScheduled(f.scope, f.state, token, resource, data, attempt, timeout_at, heartbeat_at))
        self.effects.append(self.types.run_task(self.state.execution_id, token, resource, data, f.state, attempt))
        if timeout_at is not None:
            self.timer(f"timeout:{token}", timeout_at)
        if heartbeat_at is not None:
            self.timer(f"heartbeat:{token}", heartbeat_at)

    def finish_task(self, f: Frame, result: Any) -> None:
        _paths.check_size(result, f"result of state '{f.state}'")
        self.exit(f, self.combine(f, self.sdef(f), result))

    def _parallel(self, f: Frame, s: StateDef) -> None:
        data = self.effective_input(f, s)
        if "Parameters" in s.fields:
            data = self.render(s.get("Parameters"), data, self.context(f))
        for i in range(len(s.get("Branches"))):
            path = f"{f.machine}/{f.state}/{i}"
            self.emit(
                ScopeStarted(
                    f.scope,
                    f"{f.scope}/{self.state.count}",
                    i,
                    path,
                    self.machine.machine(path).start_at,
                    _paths.freeze(data),
                )
            )

    def _map(self, f: Frame, s: StateDef) -> None:
        data = self.effective_input(f, s)
        items = _paths.select(s.get("ItemsPath", "$"), data, self.context(f))
        if not isinstance(items, list):
            raise StateError(
                RUNTIME, f"Map state '{f.state}': ItemsPath must select an array, got {_paths.dumps(items)}"
            )
        self.emit(MapStarted(f.scope, f.state, _paths.freeze(items)))

    def collect(self, f: Frame) -> bool:
        """A Parallel or Map whose children moved: start more iterations, fail, or finish. True if it acted."""
        s = self.sdef(f)
        children = [self.state.frames[c] for c in f.children]
        failed = next((c for c in children if c.status == "failed"), None)
        if failed is not None:
            self.fail_state(f, failed.error or "", failed.cause or "")
            return True
        acted = False
        if s.type == "Map":
            assert f.items is not None
            limit = s.get("MaxConcurrency", 0) or len(f.items)
            running = sum(1 for c in children if c.status != "succeeded")
            started = len(children)
            while started < len(f.items) and running < limit:
                if not self._start_item(f, s, started):
                    return True
                started += 1
                running += 1
                acted = True
            if acted or started < len(f.items):
                return acted  # new iterations run first; collect again once they have moved
        if all(c.status == "succeeded" for c in children):
            results = [c.output for c in self._outputs(f.scope)]
            self.guard(self.frame(f.scope), lambda fr: self.exit(fr, self.combine(fr, s, results)))
            return True
        return acted

    def _outputs(self, scope: str) -> list[Frame]:
        f = self.state.frames[scope]
        ordered = sorted((self.state.frames[c] for c in f.children), key=lambda c: c.index)
        return ordered

    def _start_item(self, f: Frame, s: StateDef, index: int) -> bool:
        assert f.items is not None
        item = f.items[index]
        selector = s.get("ItemSelector", s.get("Parameters"))
        try:
            if selector is not None:
                ctx = self.context(f, Map={"Item": {"Index": index, "Value": item}})
                item = self.render(selector, self.effective_input(f, s), ctx)
        except StateError as exc:
            self.fail_state(f, exc.error, exc.cause)
            return False
        path = f"{f.machine}/{f.state}/it"
        self.emit(
            ScopeStarted(
                f.scope,
                f"{f.scope}/{self.state.count}",
                index,
                path,
                self.machine.machine(path).start_at,
                _paths.freeze(item),
            )
        )
        return True

    # -- errors

    def fail_state(self, f: Frame, error: str, cause: str) -> None:
        """State `f` failed: the first matching retrier applies if it has attempts left, else a catcher, else
        the failure ends its machine."""
        s = self.sdef(f)
        for index, retrier in enumerate(s.get("Retry") or ()):
            if not matches(retrier["ErrorEquals"], error):
                continue
            done = f.retries[index] if index < len(f.retries) else 0
            if done < retrier.get("MaxAttempts", 3):
                attempt = done + 1
                unit = self.draws.unit() if retrier.get("JitterStrategy") == "FULL" else 0.0
                delay = retry_delay(retrier, attempt, unit)
                key = f"retry:{self.state.count}"
                due = self.now + timedelta(seconds=delay)
                self.emit(RetryScheduled(f.scope, f.state, index, attempt, error, cause, delay, key, due))
                self.timer(key, due)
                return
            break
        self.emit(StateFailed(f.scope, f.state, error, cause))
        f = self.frame(f.scope)
        for catcher in s.get("Catch") or ():
            if matches(catcher["ErrorEquals"], error):
                try:
                    output = _paths.result_path(
                        catcher.get("ResultPath", "$"), f.input, {"Error": error, "Cause": cause}
                    )
                    _paths.check_size(output, f"output of state '{f.state}'")
                except StateError as exc:
                    self.fail_scope(f.scope, exc.error, exc.cause)
                    return
                self.emit(StateExited(f.scope, f.state, _paths.freeze(output), catcher["Next"]))
                return
        self.fail_scope(f.scope, error, cause)

    def fail_scope(self, scope: str, error: str, cause: str) -> None:
        if scope == "":
            self.emit(ExecutionFailed(error, cause))
        else:
            self.emit(ScopeFailed(scope, error, cause))
