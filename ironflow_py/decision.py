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
    """A durable timer: at `at` or later the engine executes `input` on the same instance; unique per key."""

    key: str
    at: datetime
    input: In


@attrs.frozen
class Decision(Generic[E_co, F_co]):
    """Accept (events, effects, timers to schedule, timer keys to cancel) or reject with a reason.

    A rejected decision appends nothing; the reason (any serializable value, typically an attrs class
    or a string) goes back to the caller. Build one with `Decision.accept(...)` or `Decision.reject(...)`
    and refine it with the `with_*` / `cancel_timer` builders, each of which returns a new value.
    """

    events: tuple[E_co, ...] = ()
    effects: tuple[F_co, ...] = ()
    timers: tuple[Timer[Any], ...] = ()
    cancel_timers: tuple[str, ...] = ()
    rejection: object | None = None

    @property
    def rejected(self) -> bool:
        return self.rejection is not None

    @staticmethod
    def accept(*events: E2, effects: Iterable[F2] = ()) -> Decision[E2, F2]:
        return Decision(events=tuple(events), effects=tuple(effects))

    @staticmethod
    def reject(reason: object) -> Decision[Never, Never]:
        if reason is None:
            raise ValueError("a rejection needs a reason")
        return Decision(rejection=reason)

    def _accepted(self) -> None:
        if self.rejected:
            raise ValueError("a rejected decision carries no events, effects or timers")

    def with_event(self, *events: E2) -> Decision[E_co | E2, F_co]:
        self._accepted()
        return Decision((*self.events, *events), self.effects, self.timers, self.cancel_timers)

    def with_effect(self, *effects: F2) -> Decision[E_co, F_co | F2]:
        self._accepted()
        return Decision(self.events, (*self.effects, *effects), self.timers, self.cancel_timers)

    def with_timer(self, key: str, at: datetime, input: object) -> Decision[E_co, F_co]:
        """Schedule `input` at `at`; a timer with the same key on this instance is replaced."""
        self._accepted()
        if at.tzinfo is None:
            raise ValueError(f"timer {key!r}: `at` must be timezone-aware")
        return attrs.evolve(self, timers=(*self.timers, Timer(key, at, input)))

    def cancel_timer(self, *keys: str) -> Decision[E_co, F_co]:
        self._accepted()
        return attrs.evolve(self, cancel_timers=self.cancel_timers + keys)
