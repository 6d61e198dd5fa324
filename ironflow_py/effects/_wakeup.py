"""LISTEN on the schema's channel in a thread and poke the runtime when a deciding transaction commits.

The first connection runs the LISTEN self-test (store/_listen_test.py): when its own notification never
arrives (a transaction-mode pooler), the listener warns once and ends, and the runtime polls at least
every second (design/operations.md, "Connection poolers").
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import psycopg

from ironflow_py.store.postgres_listen import (
    LISTEN_UNAVAILABLE,
    connect_listening,
    self_test,
    unavailable_fields,
)


class Listener(threading.Thread):
    """Calls `wake()` on every notification; reconnects after a failure (polling covers the gap)."""

    def __init__(self, conninfo: str, channel: str, wake: Callable[[], None], log: Any) -> None:
        super().__init__(name="ironflow-listener", daemon=True)
        self.conninfo = conninfo
        self.channel = channel
        self.wake = wake
        self.log = log
        self.ready = threading.Event()
        #: Set when the self-test showed notifications never arrive; the listener has ended.
        self.unavailable = threading.Event()
        self._tested = False
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                with connect_listening(self.conninfo, self.channel) as conn:
                    if not self._tested:
                        if not self_test(conn, self.conninfo, self.channel):
                            self.unavailable.set()
                            self.log.warning(
                                LISTEN_UNAVAILABLE,
                                listener="effects",
                                fallback="polling at least every 1 s",
                                **unavailable_fields(self.conninfo, self.channel),
                            )
                            return
                        self._tested = True
                    self.ready.set()
                    self.wake()  # rows may have been written while no one listened
                    while not self._stop.is_set():
                        # The generator ends after the timeout, so a stop request is seen within it.
                        for _ in conn.notifies(timeout=0.2):
                            self.wake()
            except psycopg.Error as exc:
                self.ready.clear()
                self.log.warning("listener_failed", error=f"{type(exc).__name__}: {exc}")
                self._stop.wait(1.0)
