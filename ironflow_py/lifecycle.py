"""How an instance ends: outcome values, the errors `unwrap()` raises, cancel requests, reserved names.

Pure values. A workflow says how it ended through `Workflow.outcome(state)`, which returns one of
`Completed`, `Failed`, `Cancelled` or `TimedOut` (None while it is still open); the engine alone makes
`Terminated`. The engine stores the outcome with the closing events and hands it back through
`WorkflowService.result` and `wait`; `unwrap()` turns it into the result or a typed error. See
design/lifecycle.md.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any, ClassVar, NoReturn, TypeVar, cast

import attrs

from ironflow_py.errors import (
    WorkflowCancelled,
    WorkflowFailed,
    WorkflowOutcomeError,
    WorkflowTerminated,
    WorkflowTimedOut,
)
from ironflow_py.records import InstanceStatus

#: Event type names the engine writes itself; `evolve` never sees them and workflows may not declare them.
RESERVED_PREFIX = "ironflow."
TERMINATED_EVENT = "ironflow.terminated/1"
TIMED_OUT_EVENT = "ironflow.timed_out/1"
#: The marker that ends a run continued as new (`Decision.continue_as_new`), and the record of a version move.
RUN_CONTINUED_EVENT = "ironflow.run_continued/1"
VERSION_MIGRATED_EVENT = "ironflow.version_migrated/1"
START_CANCELLED_EVENT = "ironflow.start_cancelled/1"
#: The timer key (and input type name) of the run-timeout deadline a workflow with `run_timeout` gets.
RUN_TIMEOUT_TIMER = "ironflow.run_timeout"
RUN_TIMEOUT_INPUT = "ironflow.run_timeout/1"
#: The input type name of a delayed start's timer (`execute(..., not_before=)`); its timer keys start with
#: `DELAYED_START_PREFIX`. The payload carries the input's own stored name, data and input key.
DELAYED_START_INPUT = "ironflow.delayed_start/1"
DELAYED_START_PREFIX = "ironflow.start/"


_C = TypeVar("_C", bound="_Closed")


def _where() -> Any:
    # Which instance an outcome belongs to: filled in by the engine when it reads the outcome back, left out
    # of equality and repr so that `Failed("not_approved")` written in a test equals the stored one.
    return attrs.field(default=None, eq=False, repr=False, kw_only=True)


class _Closed:
    """Shared behaviour of the outcome classes (not a public base: match on the concrete classes)."""

    status: ClassVar[InstanceStatus]
    workflow_type: str | None
    workflow_id: str | None

    def at(self: _C, workflow_type: str, workflow_id: str) -> _C:
        """This outcome, labelled with the instance it belongs to.

        Args:
            workflow_type: the instance's workflow type.
            workflow_id: the instance's id.

        Returns:
            An equal outcome whose `unwrap()` errors name the instance.
        """
        labelled = attrs.evolve(cast(Any, self), workflow_type=workflow_type, workflow_id=workflow_id)
        return cast(_C, labelled)

    def _raise(self, cls: type[WorkflowOutcomeError], message: str) -> NoReturn:
        raise cls(message, outcome=self, workflow_type=self.workflow_type or "?", workflow_id=self.workflow_id)


@attrs.frozen
class Completed(_Closed):
    """The instance finished successfully; `result` is what it produced (decoded with `result_type`).

    Attributes:
        result: What the instance produced, JSON-serializable (decoded with the workflow's `result_type`).
        workflow_type: The instance's workflow type, set when the engine reads the outcome back (not
            compared).
        workflow_id: The instance's id, set likewise (not compared).
    """

    status: ClassVar[InstanceStatus] = InstanceStatus.COMPLETED
    result: Any = None
    workflow_type: str | None = _where()
    workflow_id: str | None = _where()

    def unwrap(self) -> Any:
        """The result.

        Returns:
            `result`, as decoded with the workflow's `result_type` (raw JSON data when it has none).
        """
        return self.result


@attrs.frozen
class Failed(_Closed):
    """The instance ended unsuccessfully: `code` is a stable machine-readable reason, `detail` anything JSON.

    Attributes:
        code: A stable machine-readable reason (for example ``"payment_declined"``).
        detail: Anything JSON-serializable that explains it.
        workflow_type: The instance's workflow type, set when the engine reads the outcome back (not
            compared).
        workflow_id: The instance's id, set likewise (not compared).
    """

    status: ClassVar[InstanceStatus] = InstanceStatus.FAILED
    code: str
    detail: Any = None
    workflow_type: str | None = _where()
    workflow_id: str | None = _where()

    def unwrap(self) -> NoReturn:
        """Raise the failure.

        Raises:
            WorkflowFailed: always; it names the instance and carries this outcome as `.outcome`.
        """
        suffix = "" if self.detail is None else f" ({self.detail})"
        self._raise(WorkflowFailed, f"failed: {self.code}{suffix}")


@attrs.frozen
class Cancelled(_Closed):
    """The instance was cancelled (by a cancel request, or by its own logic, e.g. a saga that refunded).

    Attributes:
        reason: Why, if known.
        workflow_type: The instance's workflow type, set when the engine reads the outcome back (not
            compared).
        workflow_id: The instance's id, set likewise (not compared).
    """

    status: ClassVar[InstanceStatus] = InstanceStatus.CANCELLED
    reason: str | None = None
    workflow_type: str | None = _where()
    workflow_id: str | None = _where()

    def unwrap(self) -> NoReturn:
        """Raise the cancellation.

        Raises:
            WorkflowCancelled: always; it names the instance and carries this outcome as `.outcome`.
        """
        self._raise(WorkflowCancelled, "cancelled" + ("" if self.reason is None else f": {self.reason}"))


@attrs.frozen
class TimedOut(_Closed):
    """The instance ran past its own deadline (`run_timeout`, or a deadline its logic enforces).

    Never confused with `WaitTimedOut`, which is a caller giving up waiting on an instance still running.

    Attributes:
        deadline: When the deadline fell due (UTC, the service's injected `Clock`).
        workflow_type: The instance's workflow type, set when the engine reads the outcome back (not
            compared).
        workflow_id: The instance's id, set likewise (not compared).
    """

    status: ClassVar[InstanceStatus] = InstanceStatus.TIMED_OUT
    deadline: datetime
    workflow_type: str | None = _where()
    workflow_id: str | None = _where()

    def unwrap(self) -> NoReturn:
        """Raise the timeout.

        Raises:
            WorkflowTimedOut: always; it names the instance and carries this outcome as `.outcome`.
        """
        self._raise(WorkflowTimedOut, f"timed out at its deadline {self.deadline.isoformat()}")


@attrs.frozen
class Terminated(_Closed):
    """An operator stopped the instance; no workflow code ran. Only the engine makes this outcome.

    Attributes:
        reason: Why, as the operator gave it.
        workflow_type: The instance's workflow type, set when the engine reads the outcome back (not
            compared).
        workflow_id: The instance's id, set likewise (not compared).
    """

    status: ClassVar[InstanceStatus] = InstanceStatus.TERMINATED
    reason: str | None = None
    workflow_type: str | None = _where()
    workflow_id: str | None = _where()

    def unwrap(self) -> NoReturn:
        """Raise the termination.

        Raises:
            WorkflowTerminated: always; it names the instance and carries this outcome as `.outcome`.
        """
        self._raise(WorkflowTerminated, "terminated" + ("" if self.reason is None else f": {self.reason}"))


RunOutcome = Completed | Failed | Cancelled | TimedOut | Terminated
"""How a closed instance ended."""

#: What `Workflow.outcome` may return (Terminated is the engine's alone).
WORKFLOW_OUTCOMES: tuple[type, ...] = (Completed, Failed, Cancelled, TimedOut)


@attrs.frozen
class CancelRequest:
    """A request to cancel instance `workflow_id`, as `Workflow.cancel_input` receives it.

    `request_id` makes the request idempotent: the engine derives the input key from it, so a repeat is
    a `duplicate`.

    Attributes:
        workflow_id: The instance to cancel.
        reason: Why, as the caller gave it.
        request_id: The caller's id for this request (None: not deduplicated).
    """

    workflow_id: str
    reason: str
    request_id: str | None = None


@attrs.frozen
class InstanceTerminated:
    """The lifecycle event `terminate` appends (`ironflow.terminated/1`): in the history, never in `evolve`."""

    reason: str | None = None
    request_id: str | None = None

    def outcome(self) -> RunOutcome:
        """The outcome this event closes the instance with."""
        return Terminated(self.reason)


@attrs.frozen
class RunTimedOut:
    """The lifecycle event of a run timeout that closed the instance (`ironflow.timed_out/1`); never in `evolve`."""

    deadline: datetime

    def outcome(self) -> RunOutcome:
        """The outcome this event closes the instance with."""
        return TimedOut(self.deadline)


@attrs.frozen
class RunContinued:
    """The marker that ends run `run` of an instance continued as new (`ironflow.run_continued/1`).

    The last event of that run; the next run starts at the following sequence. Never passed to `evolve`.

    Attributes:
        run: The number of the run it ends (1 for an instance's first run).
    """

    run: int


@attrs.frozen
class VersionMigrated:
    """The record of `WorkflowService.migrate_version` (`ironflow.version_migrated/1`); never in `evolve`.

    Attributes:
        from_version: The version the instance ran before.
        to_version: The version it runs from this event on.
    """

    from_version: str
    to_version: str


@attrs.frozen
class ContinuedAsNew:
    """How one run of an instance ended when its decision continued it as new: the id lives on in `next_run`.

    Not a close: the instance keeps running. `WorkflowService.wait(..., follow_runs=False)` returns it;
    with `follow_runs=True` (the default) `wait` follows the chain to the final run's outcome.

    Attributes:
        run: The run that ended (1 for the first).
        next_run: The run the instance is in now.
        workflow_type: The instance's workflow type, set when the engine reads it (not compared).
        workflow_id: The instance's id, set likewise (not compared).
    """

    run: int
    next_run: int
    workflow_type: str | None = _where()
    workflow_id: str | None = _where()


@attrs.frozen
class StartCancelled:
    """The lifecycle event of a cancel that reached an instance before it started (`ironflow.start_cancelled/1`).

    An instance that only waits for a delayed start (status `scheduled`) has run no workflow code, so
    `WorkflowService.cancel` closes it `cancelled` without calling `cancel_input`: its delayed starts are
    dropped. Never in `evolve`.
    """

    reason: str
    request_id: str | None = None

    def outcome(self) -> RunOutcome:
        """The outcome this event closes the instance with."""
        return Cancelled(self.reason)


#: The reserved events that close an instance.
ClosingEvent = InstanceTerminated | RunTimedOut | StartCancelled
LifecycleEvent = ClosingEvent | RunContinued | VersionMigrated
#: The reserved event classes that close the instance; like the run markers, none reaches `evolve`.
LIFECYCLE_CLASSES: tuple[type[ClosingEvent], ...] = (InstanceTerminated, RunTimedOut, StartCancelled)
#: The reserved event names and their classes (the codec decodes these for every workflow).
LIFECYCLE_EVENTS: dict[str, type] = {
    TERMINATED_EVENT: InstanceTerminated,
    TIMED_OUT_EVENT: RunTimedOut,
    RUN_CONTINUED_EVENT: RunContinued,
    VERSION_MIGRATED_EVENT: VersionMigrated,
    START_CANCELLED_EVENT: StartCancelled,
}


def input_key_for(action: str, request_id: str | None) -> str | None:
    """The input key an operator request is recorded under, so a repeat of it is a `duplicate`.

    Args:
        action: `cancel`, `terminate`, `pause` or `resume`.
        request_id: the caller's request id; None means the request is not deduplicated.

    Returns:
        `ironflow.<action>/<request_id>`, or None.
    """
    return None if request_id is None else f"{RESERVED_PREFIX}{action}/{request_id}"


def delayed_start_timer(token: str, limit: int = 512) -> str:
    """The timer key of a delayed start: `ironflow.start/<token>`, hashed when that would not fit `limit`.

    Args:
        token: the input key of the delayed input, or a fresh id the caller made for an unkeyed one.
        limit: the longest key, in bytes of UTF-8 (the store's key limit).

    Returns:
        The key; the same token always gives the same key, so two calls with one input key share one timer.
    """
    key = DELAYED_START_PREFIX + token
    if len(key.encode("utf-8", "surrogatepass")) <= limit:
        return key
    return DELAYED_START_PREFIX + "sha256:" + hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()
