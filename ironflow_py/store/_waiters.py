"""Waiters on instance closes: any number of subscriptions, woken by one source of close notices.

A store owns one `WaiterHub`. Whatever learns that an instance closed (PostgreSQL: the one LISTEN
connection of `_listener`; MemoryStore: its own write) calls `notify(type, id)`, or `notify_all()` when it
may have missed some (a reconnect). A subscription is only a flag to re-read the instance row: the waiter
subscribes first and reads second, so a close that commits between the two still sets the flag.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any

Key = tuple[str, str]


class Subscription:
    """A blocking waiter's flag; `wait` returns when the instance may have closed (or on timeout)."""

    def __init__(self, hub: WaiterHub, key: Key) -> None:
        self.key = key
        self._hub = hub
        self._event = threading.Event()

    def fire(self) -> None:
        self._event.set()

    def wait(self, timeout: float) -> bool:
        """Block up to `timeout` seconds (monotonic) for a notice; True if one came. Clears the flag."""
        fired = self._event.wait(timeout)
        self._event.clear()
        return fired

    def close(self) -> None:
        """Unsubscribe; idempotent."""
        self._hub.unsubscribe(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncSubscription:
    """An asyncio waiter's flag, set from the notifying thread through the waiter's own event loop."""

    def __init__(self, hub: WaiterHub, key: Key, loop: asyncio.AbstractEventLoop) -> None:
        self.key = key
        self._hub = hub
        self._loop = loop
        self._event = asyncio.Event()

    def fire(self) -> None:
        # Called from the listener thread (or any thread): the event belongs to the waiter's loop.
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody is waiting any more
            self._loop.call_soon_threadsafe(self._event.set)

    async def wait(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for a notice; True if one came. Cancelling it only stops the wait."""
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
        except TimeoutError:
            return False
        finally:
            self._event.clear()
        return True

    def close(self) -> None:
        """Unsubscribe; idempotent."""
        self._hub.unsubscribe(self)


class WaiterHub:
    """Subscriptions by instance. Thread-safe; notifying costs a dict lookup per notice."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_key: dict[Key, set[Any]] = {}

    def subscribe(self, workflow_type: str, workflow_id: str) -> Subscription:
        sub = Subscription(self, (workflow_type, workflow_id))
        self._add(sub)
        return sub

    def subscribe_async(self, workflow_type: str, workflow_id: str) -> AsyncSubscription:
        """Must be called inside the waiting coroutine's running loop."""
        sub = AsyncSubscription(self, (workflow_type, workflow_id), asyncio.get_running_loop())
        self._add(sub)
        return sub

    def _add(self, sub: Subscription | AsyncSubscription) -> None:
        with self._lock:
            self._by_key.setdefault(sub.key, set()).add(sub)

    def unsubscribe(self, sub: Subscription | AsyncSubscription) -> None:
        with self._lock:
            subs = self._by_key.get(sub.key)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._by_key[sub.key]

    def notify(self, workflow_type: str, workflow_id: str) -> None:
        with self._lock:
            subs = list(self._by_key.get((workflow_type, workflow_id), ()))
        for sub in subs:
            sub.fire()

    def notify_all(self) -> None:
        with self._lock:
            subs = [s for group in self._by_key.values() for s in group]
        for sub in subs:
            sub.fire()

    def count(self) -> int:
        """How many subscriptions are live (for tests and inspection)."""
        with self._lock:
            return sum(len(group) for group in self._by_key.values())
