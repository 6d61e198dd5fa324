"""Waiting on PostgreSQL: one LISTEN connection for any number of waiters, and polling when it is gone."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg

from ironflow_py import PostgresStore, WorkflowService
from ironflow_py.aio import AsyncWorkflowService
from ironflow_py.lifecycle import Completed
from ironflow_py.store._listener import APPLICATION_NAME, closed_channel
from tests.workflows import Add, Counter, Finish

Conn = psycopg.Connection[tuple[Any, ...]]


def _listen_connections(admin: Conn, schema: str) -> int:
    row = admin.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND query = %s",
        (APPLICATION_NAME, f'LISTEN "{closed_channel(schema)}"'),
    ).fetchone()
    assert row is not None
    return int(row[0])


def _until(condition: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def test_a_thousand_concurrent_waiters_hold_exactly_one_listen_connection(pg_store: PostgresStore, admin: Conn) -> None:
    service = WorkflowService(pg_store, workflows=[Counter], state_cache_size=0)
    ids = [f"c{n}" for n in range(1000)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: service.execute(Add(i)), ids))
    aio = AsyncWorkflowService(service)
    waiters = pg_store.closed_waiters()

    async def main() -> list[Any]:
        # A poll interval longer than the test: every waiter must be woken by its notice.
        tasks = [asyncio.create_task(aio.wait("counter", i, timeout=120, poll_interval=600)) for i in ids]
        while waiters.count() < len(ids):
            await asyncio.sleep(0.01)
        assert _listen_connections(admin, pg_store.schema) == 1
        await asyncio.to_thread(lambda: list(ThreadPoolExecutor(8).map(lambda i: service.execute(Finish(i)), ids)))
        return await asyncio.gather(*tasks)

    assert asyncio.run(main()) == [Completed(None)] * len(ids)
    assert waiters.count() == 0
    assert _listen_connections(admin, pg_store.schema) == 1


def test_a_waiter_returns_when_the_listener_backend_is_terminated_mid_wait(
    pg_store: PostgresStore, admin: Conn
) -> None:
    service = WorkflowService(pg_store, workflows=[Counter])
    service.execute(Add("c1"))
    got: list[Any] = []
    thread = threading.Thread(target=lambda: got.append(service.wait("counter", "c1", timeout=60, poll_interval=0.5)))
    thread.start()
    _until(lambda: pg_store.closed_waiters().count() == 1 and pg_store.listener_pid is not None)
    pid = pg_store.listener_pid
    assert admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone() == (True,)
    assert thread.is_alive()  # terminated mid-wait
    service.execute(Finish("c1"))
    thread.join(30)
    assert got == [Completed(None)]
    # The listener comes back on a new backend for later waiters.
    _until(lambda: pg_store.listener_pid not in (None, pid))


def test_an_asyncio_wait_cancelled_after_10_ms_frees_its_subscription(pg_store: PostgresStore) -> None:
    service = WorkflowService(pg_store, workflows=[Counter])
    service.execute(Add("c1"))
    aio = AsyncWorkflowService(service)
    waiters = pg_store.closed_waiters()

    async def main() -> Any:
        task = asyncio.create_task(aio.wait("counter", "c1", timeout=60))
        await asyncio.sleep(0.01)
        assert waiters.count() == 1
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        else:
            raise AssertionError("the wait was not cancelled")
        assert waiters.count() == 0
        return await aio.execute_and_wait(Finish("c1"), timeout=30)

    assert asyncio.run(main()) == Completed(None)
    assert service.result("counter", "c1") == Completed(None)
