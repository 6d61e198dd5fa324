"""The class users subclass: a workflow is two pure functions over immutable attrs classes.

`evolve(state, event) -> state` folds history; `decide(now, state, input) -> Decision` chooses what
happens next. Both must be deterministic: time comes in as `now`, ids and randomness as inputs.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from ironflow_py.composition import ChildRef
from ironflow_py.decision import Decision
from ironflow_py.lifecycle import CancelRequest, Completed, RunOutcome
from ironflow_py.upcasting import UpcastFn

if TYPE_CHECKING:
    from ironflow_py.diagram import StateMachine

S = TypeVar("S")
I = TypeVar("I")  # noqa: E741 - the conventional letter for "input" beside S, E, F
E = TypeVar("E")
F = TypeVar("F")


class Workflow(Generic[S, I, E, F]):
    """A durable workflow: subclass it, declare its types and write `evolve` and `decide` as pure functions.

    The engine (`WorkflowService`) rebuilds an instance's state by folding its stored events with `evolve`
    from `initial_state()`, calls `decide(now, state, input)` under the instance's lock, and appends the
    events, effects and timers of the returned `Decision` in one transaction. `evolve`, `decide`,
    `workflow_id`, `input_key`, `is_terminal` and `outcome` must be deterministic and free of I/O: time
    comes in as `now`, ids and randomness as fields of inputs (design/decider.md).

    The generic parameters are the state, input, event and effect types: `Workflow[State, Input, Event,
    Effect]`, each usually a union of frozen attrs classes.

    Attributes:
        type: The stable routing key stored with every row (for example ``"order"``); never rename it.
        inputs: Stored name -> input class, for every input the workflow accepts. Include a version in
            the name (``"order.place/1"``) so renaming a class or moving a module never breaks history.
        events: Stored name -> event class, for every event `decide` may emit and `evolve` folds.
        effects: Stored name -> effect class, for every effect `decide` may ask for (default: none).
        upcasters: Old stored name -> `fn(data) -> (new_name, new_data)`, pure JSON -> JSON, for names
            the code no longer declares (``{"order.placed/1": fn}``). A stored value under an old name is
            upcast, step by step, until a declared name is reached, wherever it is decoded; nothing stored
            is rewritten unless you run ``ironflow-py events upgrade``. Wrap `fn` in `Upcast(fn, to=...)`
            to have its chain checked at registration (design/versioning.md).
        snapshot_every: Save the state every N events so rebuilding folds only what came after (None, the
            default: never). Override `should_snapshot` for another rule (design/snapshots.md).
        version: The code version of this class (default ``"1"``). Several classes may share one `type`
            with distinct versions: each instance records the version it started on and every later
            decision is made by that version's class, while new instances get the service's default
            (`WorkflowService(default_version={"order": "2"})`; design/versioning.md).
        state_version: Bump when the state a history folds to changes: a new state shape, or an `evolve`
            change that gives an existing history another state (a bug fix). Snapshots written under
            another version are ignored and replaced; a stale snapshot under the same version would be
            trusted (``ironflow-py snapshots verify`` finds them).
        state_type: The state's type, for decoding snapshots; None means the class of `initial_state()`.
        result_type: The type of `Completed.result`, so `WorkflowService.result()` and `wait()` decode it;
            None leaves it as JSON data.
        result_name: A stable stored name for `result_type` (``"order.result/1"``), kept in each stored
            outcome so that when the result's shape changes, an upcaster from the old name reads outcomes
            stored before (None: no name is stored; results are structured as `result_type` as they are).
        run_timeout: How long an instance may stay open, a `timedelta` from its first write, measured on the
            service's injected `Clock` (None: no limit). When it passes, the engine delivers
            `timeout_input(deadline)`, or closes the instance `TimedOut` if that returns None
            (design/lifecycle.md).
    """

    # `builtins.type` below: the class attribute `type` shadows the builtin inside this class body.
    type: ClassVar[str]
    inputs: ClassVar[Mapping[str, builtins.type]]
    events: ClassVar[Mapping[str, builtins.type]]
    effects: ClassVar[Mapping[str, builtins.type]] = {}
    upcasters: ClassVar[Mapping[str, UpcastFn]] = {}
    snapshot_every: ClassVar[int | None] = None
    version: ClassVar[str] = "1"
    state_version: ClassVar[int] = 1
    state_type: ClassVar[Any] = None
    result_type: ClassVar[Any] = None
    result_name: ClassVar[str | None] = None
    run_timeout: ClassVar[timedelta | None] = None

    def initial_state(self) -> S:
        """The state of an instance before its first event; every rebuild folds from here.

        Called for each rebuild (and by `WorkflowSpec`), so return a fresh immutable value, not shared
        mutable data.

        Returns:
            The initial state (an instance of your state type).
        """
        raise NotImplementedError

    def evolve(self, state: S, event: E) -> S:
        """Fold one event into the state: the only way the state changes, on write and on every rebuild.

        Must be pure and total over the events this workflow has ever emitted (old stored events are
        folded again years later), must not raise for a valid history, and must not look at the clock: use
        times carried in the event.

        Args:
            state: The state after all earlier events of this instance.
            event: The next event, decoded from its stored form (one of the classes in `events`).

        Returns:
            The new state; return `state` itself for an event that changes nothing.
        """
        raise NotImplementedError

    def decide(self, now: datetime, state: S, input: I) -> Decision[E, F]:
        """Choose what happens when `input` arrives: the events to append, effects to run, timers to keep.

        Called under the instance's lock with the state rebuilt from every committed event, so two inputs
        for one instance never decide concurrently. Must be pure: no I/O, no clock, no randomness; an
        exception it raises becomes `DecideFailed` and nothing is written.

        Args:
            now: The current time, timezone-aware UTC, from the service's injected `Clock` (the same value
                is stored as the events' `recorded_at`).
            state: The instance's current state (`initial_state()` for a new instance).
            input: The input to act on (one of the classes in `inputs`, a timer's input, or a cancel,
                timeout or dead-letter input this workflow returned).

        Returns:
            `Decision.accept(*events, effects=...)`, refined with `with_timer` / `cancel_timer`, or
            `Decision.reject(reason)` to append nothing and hand `reason` back to the caller.
        """
        raise NotImplementedError

    def workflow_id(self, input: I) -> str:
        """The business key of the instance an input is for (for example the order number).

        Args:
            input: An input of this workflow, as passed to `WorkflowService.execute`.

        Returns:
            A non-empty string; `InvalidWorkflowId` is raised for anything else, and an exception raised
            here becomes `DecideFailed` (nothing is written in either case).
        """
        raise NotImplementedError

    def outcome(self, state: S) -> RunOutcome | None:
        """How the instance ended, read from its state; None while it is still open.

        Override this or `is_terminal` (one is enough): by default a terminal state is `Completed(None)`.

        Args:
            state: The folded state.

        Returns:
            `Completed(result)`, `Failed(code, detail)`, `Cancelled(reason)`, `TimedOut(deadline)`, or None.
            (`Terminated` is the engine's alone.)
        """
        return Completed(None) if self.is_terminal(state) else None

    def is_terminal(self, state: S) -> bool:
        """Whether the instance is finished: later inputs return `already_completed` without `decide`.

        By default: `outcome(state) is not None` when `outcome` is overridden, else False.

        Args:
            state: The folded state.

        Returns:
            True once the instance accepts no more inputs.
        """
        if type(self).outcome is Workflow.outcome:
            return False  # neither is overridden: never terminal (and no mutual recursion)
        return self.outcome(state) is not None

    def cancel_input(self, request: CancelRequest) -> I | None:
        """The input a cancel request becomes, so cancelling is an ordinary decision.

        Compensations are then ordinary effects of that decision. None (the default) means the workflow
        cannot be cancelled: `cancel` raises `NotCancellable`.

        Args:
            request: The reason and the caller's request id.

        Returns:
            One of this workflow's inputs, or None.
        """
        return None

    def run_timeout_for(self, input: I) -> timedelta | None:
        """The run timeout of an instance that `input` creates (its first accepted input); default `run_timeout`.

        Args:
            input: the input whose decision is the instance's first write.

        Returns:
            How long the instance may stay open from that write (None: no limit).
        """
        return self.run_timeout

    def timeout_input(self, deadline: datetime) -> I | None:
        """The input delivered when `run_timeout` passes; None (the default) closes the instance `TimedOut`.

        Args:
            deadline: When the run timeout fell due (UTC, on the service's injected `Clock`).

        Returns:
            One of this workflow's inputs, or None.
        """
        return None

    def input_key(self, input: I) -> str | None:
        """An idempotency key for `input`: the same key on the same instance is applied once.

        A repeat returns `Outcome(status=duplicate, first_status=...)` and writes nothing.

        Args:
            input: The input about to be executed.

        Returns:
            The key (for example the caller's request id), or None (the default) for no deduplication.
        """
        return None

    def dead_letter_input(self, effect: F, error: str) -> I | None:
        """The input this instance receives when one of its effects is dead-lettered, so it can compensate.

        Called by the effect worker once the effect's `RetryPolicy` is exhausted or its handler raised
        `Permanent`; the input runs in the same transaction that marks the effect dead. None (the default)
        delivers nothing and the instance keeps waiting.

        Args:
            effect: The effect that failed for good, decoded.
            error: Why, as "ExceptionType: message" of the last attempt.

        Returns:
            One of this workflow's inputs, or None.
        """
        return None

    def child_closed_input(self, child: ChildRef, outcome: RunOutcome) -> I | None:
        """The input this instance receives when one of its children closes (pure; called by the effect worker).

        The child's closing transaction queues the notice; the worker delivers the input this returns to
        the parent exactly once (an input key derived from the notice), in the parent's own transaction.
        A parent that has closed meanwhile gets nothing (`already_completed`).

        Args:
            child: Which child (its workflow type and the id it was started with).
            outcome: How it ended: `Completed(result)` (`result` decoded with the child's `result_type`),
                `Failed`, `Cancelled`, `TimedOut` or `Terminated`.

        Returns:
            One of this workflow's inputs, or None (the default) to deliver nothing.
        """
        return None

    def should_snapshot(self, state: S, seq: int, events_since_snapshot: int) -> bool:
        """Whether to save `state` as a snapshot in the deciding transaction (design/snapshots.md).

        Args:
            state: The state after the decision's events.
            seq: The sequence of the last event folded into `state`.
            events_since_snapshot: Events appended since the latest usable snapshot (or since the start).

        Returns:
            True to write a snapshot; by default when `snapshot_every` is set and that many events passed.
        """
        every = self.snapshot_every
        return every is not None and events_since_snapshot >= every

    def uses_snapshots(self) -> bool:
        """Whether this workflow writes snapshots (`snapshot_every` set or `should_snapshot` overridden).

        Returns:
            True if rebuilding should look for a snapshot first.
        """
        return self.snapshot_every is not None or type(self).should_snapshot is not Workflow.should_snapshot

    def state_name(self, state: S) -> str:
        """A short name for the state an instance is in, for diagrams and inspection.

        Args:
            state: The folded state.

        Returns:
            The state's `status` attribute if it is a string, else the state's class name (which suits
            states written as a union of classes).
        """
        status = getattr(state, "status", None)
        return status if isinstance(status, str) else type(state).__name__

    def describe(self) -> StateMachine | None:
        """The workflow's states and transitions, for `ironflow-py diagram`.

        Returns:
            A `StateMachine`, or None (the default) if the workflow does not describe itself.
        """
        return None

    def fold(self, state: S, events: Iterable[E]) -> S:
        """Apply `evolve` over `events`, starting from `state`.

        Args:
            state: The state to start from (usually `initial_state()`).
            events: Decoded events in sequence order.

        Returns:
            The state after the last event.
        """
        evolve = self.evolve
        for event in events:
            state = evolve(state, event)
        return state


AnyWorkflow = Workflow[Any, Any, Any, Any]
