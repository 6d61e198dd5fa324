"""Parent and child workflows for the composition tests: fan-out, fan-in with `Join`, races, cascades."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import attrs

from ironflow_py import Cancelled, Completed, Decision, Failed, Workflow
from ironflow_py.composition import ChildRef, Join
from ironflow_py.lifecycle import CancelRequest, RunOutcome

# -- the child: waits for Finish (or a cancel), then completes with its value ---------------------------------


@attrs.frozen
class StartTask:
    task_id: str
    value: int


@attrs.frozen
class FinishTask:
    task_id: str


@attrs.frozen
class CancelTask:
    task_id: str
    reason: str


@attrs.frozen
class TaskStarted:
    value: int


@attrs.frozen
class TaskFinished:
    result: int


@attrs.frozen
class TaskCancelled:
    reason: str


@attrs.frozen
class TaskState:
    status: str = "new"
    value: int = 0
    result: int | None = None
    reason: str | None = None


class Task(Workflow[TaskState, Any, Any, Any]):
    type = "task"
    inputs = {"task.start/1": StartTask, "task.finish/1": FinishTask, "task.cancel/1": CancelTask}
    events = {"task.started/1": TaskStarted, "task.finished/1": TaskFinished, "task.cancelled/1": TaskCancelled}
    result_type = int
    state_type = TaskState

    def initial_state(self) -> TaskState:
        return TaskState()

    def workflow_id(self, input: Any) -> str:
        return str(input.task_id)

    def evolve(self, state: TaskState, event: Any) -> TaskState:
        match event:
            case TaskStarted(value):
                return TaskState("running", value)
            case TaskFinished(result):
                return attrs.evolve(state, status="finished", result=result)
            case TaskCancelled(reason):
                return attrs.evolve(state, status="cancelled", reason=reason)
        return state

    def outcome(self, state: TaskState) -> RunOutcome | None:
        if state.status == "finished":
            return Completed(state.result)
        if state.status == "cancelled":
            return Cancelled(state.reason)
        return None

    def cancel_input(self, request: CancelRequest) -> Any:
        return CancelTask(request.workflow_id, request.reason)

    def decide(self, now: datetime, state: TaskState, input: Any) -> Decision[Any, Any]:
        match input:
            case StartTask(_, value) if value < 0:
                return Decision.reject("a negative value")  # a first input a child rejects: it never starts
            case StartTask(_, value):
                return Decision.accept(TaskStarted(value)) if state.status == "new" else Decision.reject("started")
            case FinishTask():
                return Decision.accept(TaskFinished(state.value * 10))
            case CancelTask(_, reason):
                return Decision.accept(TaskCancelled(reason))
        return Decision.reject("unknown input")


# -- the parent: starts one task per value, joins them all (or races them) -------------------------------------


@attrs.frozen
class FanOut:
    job_id: str
    values: tuple[int, ...]
    race: bool = False
    policy: str = "request_cancel"


@attrs.frozen
class ChildDone:
    job_id: str
    key: str
    ok: bool
    result: int | None
    error: str | None = None


@attrs.frozen
class Ping:
    job_id: str
    note: str


@attrs.frozen
class FannedOut:
    keys: tuple[str, ...]
    race: bool


@attrs.frozen
class Collected:
    key: str
    ok: bool
    result: int | None
    error: str | None


@attrs.frozen
class Pinged:
    note: str


@attrs.frozen
class JobState:
    status: str = "new"
    join: Join[int] = attrs.field(factory=Join)
    pings: tuple[str, ...] = ()


def task_key(job_id: str, i: int) -> str:
    return f"{job_id}-t{i}"


class Job(Workflow[JobState, Any, Any, Any]):
    type = "job"
    inputs = {"job.fan_out/1": FanOut, "job.child_done/1": ChildDone, "job.ping/1": Ping}
    events = {"job.fanned_out/1": FannedOut, "job.collected/1": Collected, "job.pinged/1": Pinged}
    state_type = JobState
    result_type = list[int | None]

    def initial_state(self) -> JobState:
        return JobState()

    def workflow_id(self, input: Any) -> str:
        return str(input.job_id)

    def evolve(self, state: JobState, event: Any) -> JobState:
        match event:
            case FannedOut(keys, race):
                join: Join[int] = Join.race(keys) if race else Join.of(keys)
                return JobState("waiting", join, state.pings)
            case Collected(key, ok, result, error):
                join = state.join.resolve(key, result) if ok and result is not None else state.join.fail(key, error)
                return attrs.evolve(state, join=join, status="done" if join.done else state.status)
            case Pinged(note):
                return attrs.evolve(state, pings=(*state.pings, note))
        return state

    def outcome(self, state: JobState) -> RunOutcome | None:
        if state.status != "done":
            return None
        if state.join.need == 1:
            first = state.join.first
            assert first is not None
            return Completed([first.value])
        return Completed(list(state.join.results))

    def child_closed_input(self, child: ChildRef, outcome: RunOutcome) -> Any:
        job_id = child.workflow_id.rsplit("-t", 1)[0]
        if isinstance(outcome, Completed):
            return ChildDone(job_id, child.workflow_id, True, outcome.result)
        if isinstance(outcome, Failed):
            return ChildDone(job_id, child.workflow_id, False, None, f"{outcome.code}: {outcome.detail}")
        return ChildDone(job_id, child.workflow_id, False, None, outcome.status.value)

    def decide(self, now: datetime, state: JobState, input: Any) -> Decision[Any, Any]:
        match input:
            case FanOut(job_id, values, race, policy):
                if state.status != "new":
                    return Decision.reject("already fanned out")
                keys = tuple(task_key(job_id, i) for i in range(len(values)))
                decision: Decision[Any, Any] = Decision.accept(FannedOut(keys, race))
                for key, value in zip(keys, values, strict=True):
                    decision = decision.start_child(StartTask(key, value), id=key, on_parent_close=policy)
                return decision
            case ChildDone(_, key, ok, result, error):
                return Decision.accept(Collected(key, ok, result, error))
            case Ping(_, note):
                return Decision.accept(Pinged(note))
        return Decision.reject("unknown input")


@attrs.frozen
class Relay:
    relay_id: str
    job_id: str
    note: str


@attrs.frozen
class Relayed:
    note: str


class Relayer(Workflow[int, Relay, Relayed, Any]):
    """Sends a Ping to a job, once with `send` (routed by class) and once with `send_to`."""

    type = "relayer"
    inputs = {"relayer.relay/1": Relay}
    events = {"relayer.relayed/1": Relayed}

    def initial_state(self) -> int:
        return 0

    def workflow_id(self, input: Relay) -> str:
        return input.relay_id

    def evolve(self, state: int, event: Relayed) -> int:
        return state + 1

    def decide(self, now: datetime, state: int, input: Relay) -> Decision[Any, Any]:
        return (
            Decision.accept(Relayed(input.note))
            .send(Ping(input.job_id, input.note))
            .send_to("job", input.job_id, Ping("ignored-for-routing", input.note + "!"))
        )


@attrs.frozen
class Grow:
    tree_id: str
    depth: int
    timeout_s: int | None = None


@attrs.frozen
class Prune:
    tree_id: str
    reason: str


@attrs.frozen
class Grown:
    depth: int


@attrs.frozen
class Pruned:
    reason: str


class Tree(Workflow[str, Any, Any, Any]):
    """A chain for cascades: a tree of depth d starts a tree of depth d - 1 as `<id>/1`, a leaf task at depth 1."""

    type = "tree"
    inputs = {"tree.grow/1": Grow, "tree.prune/1": Prune}
    events = {"tree.grown/1": Grown, "tree.pruned/1": Pruned}

    def initial_state(self) -> str:
        return "new"

    def workflow_id(self, input: Any) -> str:
        return str(input.tree_id)

    def evolve(self, state: str, event: Any) -> str:
        return f"pruned:{event.reason}" if isinstance(event, Pruned) else "grown"

    def outcome(self, state: str) -> RunOutcome | None:
        return Cancelled(state.split(":", 1)[1]) if state.startswith("pruned:") else None

    def cancel_input(self, request: CancelRequest) -> Any:
        return Prune(request.workflow_id, request.reason)

    def run_timeout_for(self, input: Any) -> timedelta | None:
        return timedelta(seconds=input.timeout_s) if isinstance(input, Grow) and input.timeout_s else None

    def decide(self, now: datetime, state: str, input: Any) -> Decision[Any, Any]:
        match input:
            case Grow(tree_id, depth, _):
                decision: Decision[Any, Any] = Decision.accept(Grown(depth))
                if depth > 1:
                    return decision.start_child(Grow(f"{tree_id}/1", depth - 1), id=f"{tree_id}/1")
                return decision.start_child(StartTask(f"{tree_id}/leaf", 1), id=f"{tree_id}/leaf")
            case Prune(_, reason):
                return Decision.accept(Pruned(reason))
        return Decision.reject("unknown input")


# -- a child with no cancel_input, under the default request_cancel policy ---------------------------------------


@attrs.frozen
class Hold:
    hold_id: str


@attrs.frozen
class Held:
    pass


class Holder(Workflow[bool, Hold, Held, Any]):
    """Starts on Hold and then waits for nothing: it has no `cancel_input`, so only terminate closes it."""

    type = "holder"
    inputs = {"holder.hold/1": Hold}
    events = {"holder.held/1": Held}

    def initial_state(self) -> bool:
        return False

    def workflow_id(self, input: Hold) -> str:
        return input.hold_id

    def evolve(self, state: bool, event: Held) -> bool:
        return True

    def decide(self, now: datetime, state: bool, input: Hold) -> Decision[Held, Any]:
        return Decision.accept(Held())


@attrs.frozen
class Keep:
    keeper_id: str


@attrs.frozen
class Kept:
    pass


class Keeper(Workflow[bool, Keep, Kept, Any]):
    """Starts one `Holder` child (default policy: request_cancel); closed by terminate in the tests."""

    type = "keeper"
    inputs = {"keeper.keep/1": Keep}
    events = {"keeper.kept/1": Kept}

    def initial_state(self) -> bool:
        return False

    def workflow_id(self, input: Keep) -> str:
        return input.keeper_id

    def evolve(self, state: bool, event: Kept) -> bool:
        return True

    def decide(self, now: datetime, state: bool, input: Keep) -> Decision[Kept, Any]:
        return Decision.accept(Kept()).start_child(Hold(f"{input.keeper_id}/h"))
