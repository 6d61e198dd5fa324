"""Where `now` comes from. The engine reads an injectable clock and passes the time to `decide`."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Where the engine reads the time: `WorkflowService`, the effect worker and timers take one.

    The value is passed to `decide` as `now`, stored as `recorded_at`, and compared with timer due times
    and effect leases. Inject `ManualClock` in tests to move time by hand.
    """

    def now(self) -> datetime:
        """The current time.

        Returns:
            A timezone-aware datetime.
        """
        ...


class SystemClock:
    """Wall-clock time in UTC."""

    def now(self) -> datetime:
        """The wall clock's current time.

        Returns:
            A timezone-aware datetime in UTC.
        """
        return datetime.now(UTC)


class ManualClock:
    """A clock that moves only when told to: for tests and the scenario runner; safe across threads.

    Args:
        start: The initial time, timezone-aware (default: 2026-01-01T00:00 UTC).

    Raises:
        ValueError: `start` is naive (no timezone).
    """

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, tzinfo=UTC)
        if self._now.tzinfo is None:
            raise ValueError("ManualClock needs a timezone-aware start")
        self._lock = threading.Lock()

    def now(self) -> datetime:
        """The time this clock was last set or advanced to.

        Returns:
            A timezone-aware datetime.
        """
        with self._lock:
            return self._now

    def advance(self, by: timedelta) -> datetime:
        """Move the clock forward.

        Args:
            by: How far, as a timedelta.

        Returns:
            The new time.
        """
        with self._lock:
            self._now += by
            return self._now

    def set(self, to: datetime) -> None:
        """Set the clock to `to` (backwards too).

        Args:
            to: The new time, timezone-aware.
        """
        with self._lock:
            self._now = to


def store_time(clock: Clock) -> datetime | None:
    """The time a store should judge due-ness and leases by, given the engine's clock.

    A `ManualClock` is test time that the database cannot know, so its time is passed explicitly. Every
    other clock (the system clock, or one of your own) yields None: the store's own clock decides, which on
    PostgreSQL is the database server's, so worker hosts whose clocks disagree still agree on when a lease
    ends and a row is due (design/operations.md, "One clock").

    Args:
        clock: The service's clock.

    Returns:
        The ManualClock's current time, or None for "the store's clock".
    """
    return clock.now() if isinstance(clock, ManualClock) else None
