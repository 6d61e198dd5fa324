"""The class users subclass: a workflow is two pure functions over immutable attrs classes.

`evolve(state, event) -> state` folds history; `decide(now, state, input) -> Decision` chooses what
happens next. Both must be deterministic: time comes in as `now`, ids and randomness as inputs.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from ironflow_py.decision import Decision
from ironflow_py.lifecycle import CancelRequest, Completed, RunOutcome

if TYPE_CHECKING:
    from ironflow_py.diagram import StateMachine

S = TypeVar("S")
I = TypeVar("I")  # noqa: E741 - the conventional letter for "input" beside S, E, F
E = TypeVar("E")
F = TypeVar("F")


class Workflow(Generic[S, I, E, F]):
    """Subclass this and fill in the class attributes and methods below.

    `type` is the stable routing key stored with every row. `inputs`, `events` and `effects` map a
    stable stored name (include a version, e.g. ``"order.placed/1"``) to its attrs class, so that
    renaming a class or moving a module never breaks stored history.
    """

    # `builtins.type` below: the class attribute `type` shadows the builtin inside this class body.
    type: ClassVar[str]
    inputs: ClassVar[Mapping[str, builtins.type]]
    events: ClassVar[Mapping[str, builtins.type]]
    effects: ClassVar[Mapping[str, builtins.type]] = {}
    #: Save the state every N events so rebuilding folds only what came after (None: never).
    #: Override `should_snapshot` for another rule.
    snapshot_every: ClassVar[int | None] = None
    #: Bump when the state's shape changes: snapshots written under another version are ignored and replaced.
    state_version: ClassVar[int] = 1
    #: The state's type, for decoding snapshots; None means the class of `initial_state()`.
    state_type: ClassVar[Any] = None
    #: The type of `Completed.result`, so `result()` and `wait()` decode it; None leaves it as JSON data.
    result_type: ClassVar[Any] = None
    #: How long an instance may stay open, from its first write (None: no limit). When it passes the engine
    #: delivers `timeout_input(deadline)`, or closes the instance `TimedOut` if that is None.
    run_timeout: ClassVar[timedelta | None] = None

    def initial_state(self) -> S:
        raise NotImplementedError

    def evolve(self, state: S, event: E) -> S:
        raise NotImplementedError

    def decide(self, now: datetime, state: S, input: I) -> Decision[E, F]:
        raise NotImplementedError

    def workflow_id(self, input: I) -> str:
        """The business key of the instance this input is for."""
        raise NotImplementedError

    def outcome(self, state: S) -> RunOutcome | None:
        """How the instance ended, read from its state; None while it is still open.

        Override this or `is_terminal`, not both need be: by default a terminal state is `Completed(None)`.

        Args:
            state: the folded state.

        Returns:
            `Completed(result)`, `Failed(code, detail)`, `Cancelled(reason)`, `TimedOut(deadline)`, or None.
            (`Terminated` is the engine's alone.)
        """
        return Completed(None) if self.is_terminal(state) else None

    def is_terminal(self, state: S) -> bool:
        """True once the instance is finished; later inputs return `already_completed`.

        By default: `outcome(state) is not None` when `outcome` is overridden, else False.
        """
        if type(self).outcome is Workflow.outcome:
            return False  # neither is overridden: never terminal (and no mutual recursion)
        return self.outcome(state) is not None

    def cancel_input(self, request: CancelRequest) -> I | None:
        """The input a cancel request becomes, so cancelling is an ordinary decision (compensations are
        ordinary effects); None (the default) means the workflow cannot be cancelled (`NotCancellable`).

        Args:
            request: the reason and the caller's request id.

        Returns:
            One of this workflow's inputs, or None.
        """
        return None

    def timeout_input(self, deadline: datetime) -> I | None:
        """The input delivered when `run_timeout` passes; None (the default) closes the instance `TimedOut`.

        Args:
            deadline: when the run timeout fell due (UTC, the engine's clock).

        Returns:
            One of this workflow's inputs, or None.
        """
        return None

    def input_key(self, input: I) -> str | None:
        """An idempotency key: the same key on the same instance is applied once."""
        return None

    def dead_letter_input(self, effect: F, error: str) -> I | None:
        """The input this instance receives when `effect` is dead-lettered (`error` says why), so it can
        compensate instead of waiting forever; None (the default) delivers nothing."""
        return None

    def should_snapshot(self, state: S, seq: int, events_since_snapshot: int) -> bool:
        """Whether to save `state` (which includes events up to `seq`) in the deciding transaction."""
        every = self.snapshot_every
        return every is not None and events_since_snapshot >= every

    def uses_snapshots(self) -> bool:
        return self.snapshot_every is not None or type(self).should_snapshot is not Workflow.should_snapshot

    def state_name(self, state: S) -> str:
        """A short name for the state an instance is in, for diagrams and inspection.

        Default: the state's `status` attribute if it is a string, else the state's class name (which
        suits states written as a union of classes)."""
        status = getattr(state, "status", None)
        return status if isinstance(status, str) else type(state).__name__

    def describe(self) -> StateMachine | None:
        """The workflow's states and transitions, for `ironflow-py diagram`; None if not described."""
        return None

    def fold(self, state: S, events: Iterable[E]) -> S:
        """Apply `evolve` over `events`, starting from `state`."""
        evolve = self.evolve
        for event in events:
            state = evolve(state, event)
        return state


AnyWorkflow = Workflow[Any, Any, Any, Any]
