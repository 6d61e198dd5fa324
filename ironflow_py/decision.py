"""What `decide` returns: plain data saying which events to append, effects to run and timers to keep."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Generic, Never, TypeVar

import attrs

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
    """

    events: tuple[E_co, ...] = ()
    effects: tuple[F_co, ...] = ()
    timers: tuple[Timer[Any], ...] = ()
    cancel_timers: tuple[str, ...] = ()
    rejection: object | None = None

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
        return Decision((*self.events, *events), self.effects, self.timers, self.cancel_timers)

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
        return Decision(self.events, (*self.effects, *effects), self.timers, self.cancel_timers)

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
