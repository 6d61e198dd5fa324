"""Client-side deadlines: a statement that gets no answer within its bound has its connection cut.

TCP keepalives and `tcp_user_timeout` notice a dead peer, but not one that acknowledges every packet and
never answers: a frozen proxy or pooler, a half-dead load balancer. A statement sent there waits forever.
So every connection the store uses is a `GuardedConnection`: each wait for the server (one statement's
round trip, a fetch, a COMMIT) is registered with the store's `Watchdog`, one thread that wakes a few times
per bound and shuts down the socket of a wait that outlived its deadline. The blocked call then fails at
once with `StalledStatement` (a psycopg `OperationalError`, so it is handled like a lost connection: the
transaction is gone, the pool discards the connection) and the store raises `StoreStalled`.

Shutting the socket down (not closing it) is what wakes a thread blocked in `poll`; the descriptor stays
owned by libpq, which closes it when psycopg does. See design/reliability.md ("Stalls").
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from typing import Any, TypeVar

import psycopg
from psycopg.abc import PQGen

RV = TypeVar("RV")

#: Longest and shortest pause of the watchdog thread between two looks (seconds, monotonic clock).
LONGEST_TICK = 0.5
SHORTEST_TICK = 0.01


class StalledStatement(psycopg.OperationalError):
    """The server did not answer within the bound; the watchdog cut the connection."""


class _Watch:
    __slots__ = ("bound", "deadline", "fd", "fired")

    def __init__(self, fd: int, deadline: float, bound: float) -> None:
        self.fd = fd
        self.deadline = deadline
        self.bound = bound
        self.fired = False


class Watchdog:
    """One thread per store that cuts connections whose wait for the server passed its deadline.

    The thread starts with the first watched wait and looks every eighth of the shortest bound it has seen
    (between 10 ms and 0.5 s), so a stall is cut at most that much after its deadline; registering a wait
    costs a lock and a set insertion, never a wake-up.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._watches: set[_Watch] = set()
        self._tick = LONGEST_TICK
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: How many waits were cut since the store opened, and when the last was (monotonic seconds).
        self.cuts = 0
        self.last_cut: float | None = None

    def watch(self, fd: int, bound: float, deadline: float | None = None) -> _Watch:
        """Watch one wait on socket `fd`: cut it `bound` seconds from now, or at `deadline` if sooner.

        Args:
            fd: The connection's socket.
            bound: Seconds the wait may last (monotonic clock).
            deadline: An earlier end (monotonic seconds), for a call bounded as a whole.

        Returns:
            The handle to pass to `done`.
        """
        now = time.monotonic()
        end = now + bound
        if deadline is not None and deadline < end:
            end = deadline
        entry = _Watch(fd, end, end - now)
        with self._lock:
            self._watches.add(entry)
            if bound / 8 < self._tick:
                self._tick = max(SHORTEST_TICK, bound / 8)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="ironflow-watchdog", daemon=True)
                self._thread.start()
        return entry

    def done(self, entry: _Watch) -> bool:
        """Stop watching; True when the watchdog cut the wait (the connection is unusable)."""
        with self._lock:
            self._watches.discard(entry)
        return entry.fired

    def close(self) -> None:
        """Stop the thread (waits still registered are no longer cut)."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=2.0)

    def _run(self) -> None:
        while not self._stop.wait(self._tick):
            now = time.monotonic()
            with self._lock:
                for entry in self._watches:
                    if not entry.fired and entry.deadline <= now:
                        # Under the lock: `done` cannot return in between, so the socket is still the one
                        # the stalled wait is blocked on, not one already handed to another caller.
                        entry.fired = True
                        self.cuts += 1
                        self.last_cut = now
                        _cut(entry.fd)


def _cut(fd: int) -> None:
    """Shut the socket down both ways: a `poll` blocked on it returns and libpq reads end-of-file."""
    with contextlib.suppress(OSError):
        sock = socket.socket(fileno=os.dup(fd))
        try:
            sock.shutdown(socket.SHUT_RDWR)
        finally:
            sock.close()  # closes the duplicate only


class GuardedConnection(psycopg.Connection[Any]):
    """A psycopg connection whose every wait for the server is bounded by a watchdog.

    `watchdog` and `bound` are set by the store when it hands the connection out (None: unbounded);
    `call_deadline` (monotonic seconds) additionally ends a whole store call, such as a claim.
    """

    watchdog: Watchdog | None = None
    #: Seconds one wait for the server may last.
    bound: float | None = None
    #: When the current store call must end (monotonic seconds), or None.
    call_deadline: float | None = None

    def wait(self, gen: PQGen[RV], *args: Any, **kwargs: Any) -> RV:
        """psycopg's `wait`, registered with the watchdog for the length of the wait."""
        watchdog, bound = self.watchdog, self.bound
        if watchdog is None or bound is None or kwargs.get("timeout") is not None:
            # A wait with a timeout of its own (`notifies(timeout=...)`) expects no answer: not a stall.
            return super().wait(gen, *args, **kwargs)
        entry = watchdog.watch(self.pgconn.socket, bound, self.call_deadline)
        try:
            result = super().wait(gen, *args, **kwargs)
        except BaseException as exc:
            if watchdog.done(entry):
                raise self._stalled(entry) from exc
            raise
        if watchdog.done(entry):
            # The answer came as the socket was cut: the connection is unusable all the same.
            raise self._stalled(entry)
        return result

    def _stalled(self, entry: _Watch) -> StalledStatement:
        with contextlib.suppress(Exception):
            self.close()
        return StalledStatement(
            f"no answer from the server within {entry.bound:g} s (a stalled network, proxy or pooler?); "
            "the connection was cut"
        )
