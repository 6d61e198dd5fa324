"""What `decide` returns: plain data saying which events to append, effects to run and timers to keep."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Generic, Never, TypeVar

import attrs

from ironflow_py.composition import DEADLINE_POLICIES, PARENT_CLOSE_POLICIES

# Covariant: a Decision[OrderPlaced, Never] is a Decision[OrderEvent, OrderEffect]. The builders take
# fresh type variables and return the widened union, so `decide` needs no annotations inside.
E_co = TypeVar("E_co", covariant=True)
F_co = TypeVar("F_co", covariant=True)
E2 = TypeVar("E2")
F2 = TypeVar("F2")
In = TypeVar("In")


@attrs.frozen
class Timer(Generic[In]):
    """A durable timer: at `at` or later the engine executes `input` on the instance that scheduled it.

    Build one with `Decision.with_timer`. A timer is unique per (instance, key): scheduling a key again
    replaces its timer (design/timers.md).

    Attributes:
        key: The timer's name within its instance (for example ``"payment-reminder"``).
        at: When it falls due, timezone-aware, compared with the effect worker's injected `Clock`.
        input: The input to execute when it fires (one of the workflow's `inputs` classes).
    """

    key: str
    at: datetime
    input: In


@attrs.frozen
class Message:
    """A message to another instance: its `input`, delivered exactly once through the outbox.

    Build one with `Decision.send` (routed by the input's class, like `WorkflowService.execute`) or
    `Decision.send_to` (a given instance). The effect worker applies it to the target with an input key
    derived from the outbox row, in the target's own transaction (design/composition.md).

    Attributes:
        input: The input to deliver (one of the target workflow's `inputs` classes).
        workflow_type: The target's workflow type (None: the workflow that declares the input's class).
        workflow_id: The target instance (None: the target's `workflow_id(input)`).
    """

    input: object
    workflow_type: str | None = None
    workflow_id: str | None = None


@attrs.frozen
class ChildStart:
    """A child instance to start: `input` is delivered to it as its first input, and it records its parent.

    Build one with `Decision.start_child`. Starting the same child id again is idempotent; an id that
    already belongs to another instance is refused with `ChildConflict` (design/composition.md).

    Attributes:
        input: The child's first input (one of its workflow's `inputs` classes; it picks the workflow).
        id: The child's instance id (None: the child workflow's `workflow_id(input)`).
        on_parent_close: What happens to the child if the parent closes first: ``"request_cancel"`` (the
            default, through the child's `cancel_input`), ``"terminate"`` or ``"abandon"``.
        deadline: ``"inherit"`` (the default): the child's run deadline is the earlier of its own
            `run_timeout` and its parent's run deadline; ``"own"``: its own `run_timeout` only.
    """

    input: object
    id: str | None = None
    on_parent_close: str = "request_cancel"
    deadline: str = "inherit"


@attrs.frozen
class Decision(Generic[E_co, F_co]):
    """What `decide` returns: accept (events, effects, timers, timer cancellations) or reject with a reason.

    A rejected decision appends nothing; the reason (any serializable value, typically an attrs class
    or a string) goes back to the caller. Build one with `Decision.accept(...)` or `Decision.reject(...)`
    and refine it with the `with_*` / `cancel_timer` builders, each of which returns a new value.

    Attributes:
        events: Events to append, in order; each gets the next sequence of the instance.
        effects: Effects to run after commit, each once per attempt by the effect worker (the outbox).
        timers: Timers to schedule or replace, by key; for one key the last listed wins.
        cancel_timers: Keys of timers to delete; a key also scheduled in this decision is scheduled.
        rejection: Why the input was refused; None for an accepted decision.
        messages: Inputs to deliver to other instances after commit, exactly once each (`send`, `send_to`).
        children: Child instances to start after commit (`start_child`).
        continue_run: End the instance's current run with this decision and start the next run of the same
            id (`continue_as_new`).
    """

    events: tuple[E_co, ...] = ()
    effects: tuple[F_co, ...] = ()
    timers: tuple[Timer[Any], ...] = ()
    cancel_timers: tuple[str, ...] = ()
    rejection: object | None = None
    messages: tuple[Message, ...] = ()
    children: tuple[ChildStart, ...] = ()
    continue_run: bool = False

    @property
    def rejected(self) -> bool:
        """True if this decision rejects the input (it carries a `rejection`)."""
        return self.rejection is not None

    @staticmethod
    def accept(*events: E2, effects: Iterable[F2] = ()) -> Decision[E2, F2]:
        """Accept the input: append `events` and run `effects`, all in one transaction or not at all.

        `Decision.accept()` with no events accepts and changes nothing (useful with timers only).

        Args:
            *events: Events to append in this order (instances of the workflow's `events` classes).
            effects: Effects to enqueue in the outbox, in this order (instances of its `effects` classes).

        Returns:
            A new accepted decision.
        """
        return Decision(events=tuple(events), effects=tuple(effects))

    @staticmethod
    def reject(reason: object) -> Decision[Never, Never]:
        """Reject the input: nothing is appended and `reason` goes back to the caller in the `Outcome`.

        A keyed input (`input_key`) records the rejection, so a repeat returns `duplicate`.

        Args:
            reason: Why, any serializable value (typically an attrs class or a string); not None.

        Returns:
            A new rejected decision.

        Raises:
            ValueError: `reason` is None.
        """
        if reason is None:
            raise ValueError("a rejection needs a reason")
        return Decision(rejection=reason)

    def _accepted(self) -> None:
        if self.rejected:
            raise ValueError("a rejected decision carries no events, effects or timers")

    def with_event(self, *events: E2) -> Decision[E_co | E2, F_co]:
        """Append more events after the ones already in this decision.

        Args:
            *events: Events to add, in order.

        Returns:
            A new decision; this one is unchanged.

        Raises:
            ValueError: This decision is a rejection.
        """
        self._accepted()
        return attrs.evolve(self, events=(*self.events, *events))  # type: ignore[arg-type]

    def with_effect(self, *effects: F2) -> Decision[E_co, F_co | F2]:
        """Add effects to run after commit, after the ones already in this decision.

        Each effect becomes one outbox row whose id is its idempotency key; the effect worker runs its
        handler at least once (design/effects.md).

        Args:
            *effects: Effects to add, in order (instances of the workflow's `effects` classes).

        Returns:
            A new decision; this one is unchanged.

        Raises:
            ValueError: This decision is a rejection.
        """
        self._accepted()
        return attrs.evolve(self, effects=(*self.effects, *effects))  # type: ignore[arg-type]

    def with_timer(self, key: str, at: datetime, input: object) -> Decision[E_co, F_co]:
        """Schedule `input` to be executed on this instance at `at`; a timer with the same key is replaced.

        Args:
            key: The timer's name within the instance; the last timer listed for a key wins.
            at: When it falls due, timezone-aware; the effect worker fires it once its injected `Clock`
                reaches `at` (at least once: a timer input should be safe to receive twice).
            input: The input to execute then, one of the workflow's `inputs` classes.

        Returns:
            A new decision; this one is unchanged.

        Raises:
            ValueError: This decision is a rejection, or `at` is naive (no timezone).
        """
        self._accepted()
        if at.tzinfo is None:
            raise ValueError(f"timer {key!r}: `at` must be timezone-aware")
        return attrs.evolve(self, timers=(*self.timers, Timer(key, at, input)))

    def cancel_timer(self, *keys: str) -> Decision[E_co, F_co]:
        """Delete this instance's timers with these keys when the decision commits.

        A key with no timer is ignored; a key also scheduled in the same decision is scheduled (the
        timer rule, design/decider.md).

        Args:
            *keys: Timer keys to cancel.

        Returns:
            A new decision; this one is unchanged.

        Raises:
            ValueError: This decision is a rejection.
        """
        self._accepted()
        return attrs.evolve(self, cancel_timers=self.cancel_timers + keys)

    def send(self, input: object) -> Decision[E_co, F_co]:
        """Deliver `input` to the instance it routes to, as `WorkflowService.execute(input)` would, after commit.

        The message is queued in the outbox in this decision's transaction and applied to its target by the
        effect worker in the target's own transaction, with an input key derived from the outbox row, so
        it arrives exactly once and never locks two instances at once (design/composition.md).

        Args:
            input: An input of a registered workflow; its class picks the workflow, its `workflow_id`
                the instance.

        Returns:
            A new decision; this one is unchanged.

        Raises:
            ValueError: This decision is a rejection.
        """
        self._accepted()
        return attrs.evolve(self, messages=(*self.messages, Message(input)))

    def send_to(self, workflow_type: str, workflow_id: str, input: object) -> Decision[E_co, F_co]:
        """Deliver `input` to a given instance after commit (see `send`).

        Args:
            workflow_type: The target's workflow type.
            workflow_id: The target instance's id.
            input: One of the target workflow's inputs.

        Returns:
            A new decision; this one is unchanged.

        Raises:
            ValueError: This decision is a rejection.
        """
        self._accepted()
        return attrs.evolve(self, messages=(*self.messages, Message(input, workflow_type, workflow_id)))

    def start_child(
        self,
        input: object,
        *,
        id: str | None = None,
        on_parent_close: str = "request_cancel",
        deadline: str = "inherit",
    ) -> Decision[E_co, F_co]:
        """Start a child instance after commit: `input` is its first input and it records this instance as parent.

        When the child closes, this workflow's `child_closed_input(ref, outcome)` gives the input the parent
        receives, exactly once. When this instance closes first, each open child gets `on_parent_close`.

        Args:
            input: The child's first input; its class picks the child's workflow.
            id: The child's instance id (None: the child workflow's `workflow_id(input)`). Starting the
                same id again is idempotent; an id that belongs to another instance is refused
                (`ChildConflict`, the start row is dead-lettered and `dead_letter_input` is told).
            on_parent_close: ``"request_cancel"`` (default), ``"terminate"`` or ``"abandon"``.
            deadline: ``"inherit"`` (default: the earlier of the child's `run_timeout` and this instance's
                run deadline) or ``"own"``.

        Returns:
            A new decision; this one is unchanged.

        Raises:
            ValueError: This decision is a rejection, or a policy is not one of the values above.
        """
        self._accepted()
        if on_parent_close not in PARENT_CLOSE_POLICIES:
            raise ValueError(f"on_parent_close must be one of {PARENT_CLOSE_POLICIES}, not {on_parent_close!r}")
        if deadline not in DEADLINE_POLICIES:
            raise ValueError(f"deadline must be one of {DEADLINE_POLICIES}, not {deadline!r}")
        child = ChildStart(input, id, on_parent_close, deadline)
        return attrs.evolve(self, children=(*self.children, child))

    def continue_as_new(self) -> Decision[E_co, F_co]:
        """End the instance's current run with this decision and start the next run of the same id.

        In the decision's one statement the engine writes its events, effects and timers, the reserved
        marker ``ironflow.run_continued/1`` (never passed to `evolve`), a snapshot of the state after the
        events at the marker's sequence, and moves the instance to its next run. Later decisions start
        from that snapshot and load no event from before the run start, so a long-lived id's history stays
        bounded; the earlier runs' events can be pruned. Timers, pending effects and the version carry over
        (design/versioning.md, "Continue-as-new").

        Returns:
            A new decision; this one is unchanged.

        Raises:
            ValueError: This decision is a rejection.
        """
        self._accepted()
        return attrs.evolve(self, continue_run=True)
