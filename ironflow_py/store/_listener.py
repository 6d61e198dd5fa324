"""The one LISTEN connection per store that feeds the waiters on instance closes.

A daemon thread holds its own connection (not a pooled one: it lives as long as the store) and LISTENs
on the schema's close channel, which the `instances_closed_notify` trigger signals at commit. Each notice
wakes the waiters of one instance. After (re)connecting it wakes every waiter, because closes committed
while it was away were not heard; the waiters' own polling covers the time it is away.

The first connection runs the LISTEN self-test (store/_listen_test.py): when its own notification never
arrives (a transaction-mode pooler), the listener warns once, marks itself `unavailable` and ends; waiters
then re-read every `poll_interval` (design/operations.md, "Connection poolers").
"""

from __future__ import annotations

import threading
from typing import Any

import psycopg
from psycopg import sql

from ironflow_py._log import get_log
from ironflow_py.store._conninfo import session_kwargs
from ironflow_py.store._listen_test import LISTEN_UNAVAILABLE, is_self_test, self_test, unavailable_fields
from ironflow_py.store._waiters import WaiterHub

APPLICATION_NAME = "ironflow_py.waiters"


def closed_channel(schema: str) -> str:
    """The channel the close trigger notifies: `left('ironflow_closed.' || schema, 63)` in the trigger."""
    return ("ironflow_closed." + schema)[:63]


class ClosedListener(threading.Thread):
    """LISTENs for instance closes and hands each notice to the hub; reconnects after a failure."""

    def __init__(
        self, conninfo: str, schema: str, hub: WaiterHub, log: Any = None, prepare_threshold: int | None = 5
    ) -> None:
        super().__init__(name="ironflow-waiters", daemon=True)
        self.conninfo = conninfo
        self.channel = closed_channel(schema)
        self.hub = hub
        self.log = get_log("waiters", log)
        self.prepare_threshold = prepare_threshold
        self.ready = threading.Event()
        #: Set when the self-test showed notifications never arrive; the listener has ended for good.
        self.unavailable = threading.Event()
        self._tested = False
        #: The backend pid of the current connection (tests terminate it to prove the fallback).
        self.pid: int | None = None
        self._stopping = threading.Event()

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> None:
        while not self._stopping.is_set():
            try:
                kwargs = {
                    **session_kwargs(self.conninfo),
                    "application_name": APPLICATION_NAME,
                    "prepare_threshold": self.prepare_threshold,
                }
                with psycopg.connect(self.conninfo, autocommit=True, **kwargs) as conn:
                    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
                    if not self._tested:
                        if not self_test(conn, self.conninfo, self.channel, prepare_threshold=self.prepare_threshold):
                            self.unavailable.set()
                            self.log.warning(
                                LISTEN_UNAVAILABLE,
                                listener="waiters",
                                fallback="re-reading every poll_interval",
                                **unavailable_fields(self.conninfo, self.channel),
                            )
                            self.hub.notify_all()
                            return
                        self._tested = True
                    self.pid = conn.info.backend_pid
                    self.ready.set()
                    self.hub.notify_all()  # closes committed before LISTEN took effect were not heard
                    while not self._stopping.is_set():
                        # The generator ends after the timeout, so a stop request is seen within it.
                        for notice in conn.notifies(timeout=0.2):
                            self._deliver(notice.payload)
            except psycopg.Error as exc:
                self.ready.clear()
                self.pid = None
                self.log.warning("waiter_listener_failed", error=f"{type(exc).__name__}: {exc}")
                self.hub.notify_all()  # waiters re-read now rather than at their next poll
                self._stopping.wait(0.5)

    def _deliver(self, payload: str) -> None:
        if is_self_test(payload):
            return  # another process's LISTEN self-test
        workflow_type, sep, workflow_id = payload.partition("\x1f")
        if sep:
            self.hub.notify(workflow_type, workflow_id)
        else:  # the trigger leaves the payload empty when the pair does not fit a notification
            self.hub.notify_all()
