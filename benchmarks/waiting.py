"""Wake-up latency from the closing commit to `wait` returning (design/lifecycle.md).

Two shapes, each timed on a fresh schema with the close notification (LISTEN/NOTIFY through the store's one
listener connection) and with polling alone (the listener never connects, so only `poll_interval` wakes):
- `sync, 1 waiter`: one thread waits on an instance; the main thread executes the closing input.
- `asyncio, N waiting`: N asyncio waiters on N instances at once in one process; the instances are closed
  one after another, each closing decision timed against its own waiter.

A sample is `wait` returning minus `execute` returning. The commit happens inside `execute`, and the
notification is delivered at commit, so a waiter can return before `execute` does: small negative values
are real. `BENCH_WAIT_SAMPLES` (default 300) and `BENCH_WAITERS` (default 1000) size the runs.
"""

from __future__ import annotations

import asyncio
import statistics
import threading
import time
from typing import Any

from benchmarks._common import env_int, fresh_schema, print_table, quiet_logging
from ironflow_py import PostgresStore, WorkflowService
from ironflow_py.aio import AsyncWorkflowService
from ironflow_py.store._waiters import WaiterHub
from tests.workflows import Add, Counter, Finish

POLL_ONLY = 0.05  # seconds between re-reads when notifications are off


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


class _PollOnly(PostgresStore):
    """A store whose waiter hub never starts its listener: nothing notifies it, only polling wakes waiters."""

    def closed_waiters(self) -> WaiterHub:
        return self._waiters

    def listening(self, timeout: float) -> bool:
        return False


def _store(url: str, schema: str, listen: bool) -> PostgresStore:
    store = (PostgresStore if listen else _PollOnly).connect(url, schema=schema, max_size=12)
    store.migrate()
    return store


def sync_one_waiter(url: str, samples: int, listen: bool) -> list[float]:
    with fresh_schema(url, "bench_wait") as schema:
        store = _store(url, schema, listen)
        try:
            service = WorkflowService(store, workflows=[Counter])
            lat: list[float] = []
            hub = store.closed_waiters()
            poll = POLL_ONLY if not listen else 30.0

            def waiter(wid: str, returned: list[float]) -> None:
                service.wait("counter", wid, timeout=30, poll_interval=poll)
                returned.append(time.perf_counter())

            for n in range(samples):
                wid = f"s{n}"
                service.execute(Add(wid))
                returned: list[float] = []
                thread = threading.Thread(target=waiter, args=(wid, returned))
                thread.start()
                while hub.count() == 0:
                    time.sleep(0.0005)
                time.sleep(0.002)  # let the waiter finish its first read and block
                service.execute(Finish(wid))
                done = time.perf_counter()
                thread.join()
                lat.append((returned[0] - done) * 1000)
            return lat
        finally:
            store.close()


def async_many_waiters(url: str, waiters: int, listen: bool) -> list[float]:
    with fresh_schema(url, "bench_wait") as schema:
        store = _store(url, schema, listen)
        try:
            service = WorkflowService(store, workflows=[Counter])
            aio = AsyncWorkflowService(service)
            ids = [f"a{n}" for n in range(waiters)]
            for wid in ids:
                service.execute(Add(wid))
            returned: dict[str, float] = {}
            closed: dict[str, float] = {}

            async def one(wid: str) -> None:
                await aio.wait("counter", wid, timeout=120, poll_interval=POLL_ONLY if not listen else 120)
                returned[wid] = time.perf_counter()

            async def main() -> None:
                tasks = [asyncio.create_task(one(wid)) for wid in ids]
                hub = store.closed_waiters()
                while hub.count() < len(ids):
                    await asyncio.sleep(0.01)
                await asyncio.sleep(0.2)  # every waiter has read its row and blocks

                def close_all() -> None:
                    for wid in ids:
                        service.execute(Finish(wid))
                        closed[wid] = time.perf_counter()

                await asyncio.to_thread(close_all)
                await asyncio.gather(*tasks)

            asyncio.run(main())
            return [(returned[w] - closed[w]) * 1000 for w in ids]
        finally:
            store.close()


def main(url: str) -> None:
    quiet_logging()
    samples = env_int("BENCH_WAIT_SAMPLES", 300)
    waiters = env_int("BENCH_WAITERS", 1000)
    rows: list[list[Any]] = []
    for listen in (True, False):
        how = "LISTEN/NOTIFY" if listen else f"polling every {POLL_ONLY * 1000:.0f} ms"
        for label, values in (
            (f"sync, 1 waiter ({samples} closes)", sync_one_waiter(url, samples, listen)),
            (f"asyncio, {waiters} waiting", async_many_waiters(url, waiters, listen)),
        ):
            rows.append(
                [
                    label,
                    how,
                    f"{statistics.median(values):.2f}",
                    f"{percentile(values, 99):.2f}",
                    f"{max(values):.2f}",
                ]
            )
    print_table(
        "commit -> wait returns (ms after execute returned)",
        ["waiters", "wake-up", "p50 ms", "p99 ms", "max ms"],
        rows,
    )


if __name__ == "__main__":
    from benchmarks._common import database_url

    main(database_url())
