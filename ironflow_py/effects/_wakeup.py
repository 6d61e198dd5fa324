"""LISTEN on the schema's channel in a thread and poke the runtime when a deciding transaction commits."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import psycopg

from ironflow_py.store.postgres_listen import connect_listening


class Listener(threading.Thread):
    """Calls `wake()` on every notification; reconnects after a failure (polling covers the gap)."""

    def __init__(self, conninfo: str, channel: str, wake: Callable[[], None], log: Any) -> None:
        super().__init__(name="ironflow-listener", daemon=True)
        self.conninfo = conninfo
        self.channel = channel
        self.wake = wake
        self.log = log
        self.ready = threading.Event()
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                with connect_listening(self.conninfo, self.channel) as conn:
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
