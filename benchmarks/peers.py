"""Peers on one workload, in one sitting: `python -m benchmarks peers` (install `ironflow_py[bench-peers]`).

Two workloads, each next to raw psycopg doing the same work by hand, printed as one table with ratios:
- **counter**: a command on one of 10,000 instances that appends one event and enqueues one follow-up, at
  1, 4 and 8 threads (BENCH_PEER_COMMANDS commands per cell, default 2,000):
  - ironflow_py: `execute(Add(id))` on the Counter workflow (one event, one outbox row);
  - raw psycopg: BEGIN, advisory lock, read the instance's events, insert one event, insert one outbox row,
    COMMIT;
  - eventsourcing (PostgreSQL recorder): get the aggregate, trigger one event, `save` (the event is also
    its notification-log entry, which is how eventsourcing hands work downstream: its follow-up);
  - DBOS: a workflow with one step (DBOS writes the workflow's status row and the step's output row; it
    has no per-instance event history to load).
  Instances are seeded before the clock starts (one event each).
- **drain**: a backlog of no-op jobs drained at concurrency 1, 4 and 8 (BENCH_PEER_BACKLOG, default 50,000):
  - ironflow_py: one `EffectRuntime` process with that many worker threads, no-op handler;
  - raw psycopg: that many processes looping "claim 100 (FOR UPDATE SKIP LOCKED), mark them done";
  - procrastinate: one worker with that concurrency, an async no-op task, on a backlog of
    BENCH_PROCRASTINATE_JOBS jobs (default 3,000: it drains tens to hundreds of jobs a second here, so
    50,000 would take most of an hour; a rate is a rate, and the row says which backlog it ran).
Each peer runs in its own child process (DBOS and eventsourcing keep process-wide state), in a database of
its own made for the sitting and dropped after it. A peer that is not installed or fails prints why.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import conninfo, sql

from benchmarks._common import env_int, load_average, print_table, quiet_logging, run_threads

INSTANCES = 10_000
THREADS = (1, 4, 8)
NOW = datetime.now(UTC)


# -- the children -----------------------------------------------------------------------------------------


def _counter_ironflow(url: str, threads: int, commands: int) -> float:
    from benchmarks.decisions import seed
    from ironflow_py import PostgresStore, WorkflowService
    from tests.workflows import Add, Counter

    schema = f"peer_{uuid.uuid4().hex[:8]}"
    with PostgresStore.connect(url, schema=schema, max_size=threads) as store:
        store.migrate()
        seed(url, schema, INSTANCES, 1)
        service = WorkflowService(store, workflows=[Counter])
        per = commands // threads
        return run_threads(threads, per, lambda t, i: _checked(service.execute(Add(f"i{(t * per + i) % INSTANCES}"))))


def _checked(outcome: Any) -> None:
    assert outcome.accepted


def _counter_raw(url: str, threads: int, commands: int) -> float:
    from benchmarks.decisions import seed
    from ironflow_py import PostgresStore

    schema = f"peer_{uuid.uuid4().hex[:8]}"
    with PostgresStore.connect(url, schema=schema, max_size=threads) as store:
        store.migrate()
        seed(url, schema, INSTANCES, 1)
        s = sql.Identifier(schema)
        lock = sql.SQL("SELECT pg_advisory_xact_lock({}.instance_lock_key(%s, %s))").format(s)
        read = sql.SQL("SELECT seq, payload FROM {}.events WHERE workflow_type = %s AND workflow_id = %s ORDER BY seq")
        event = sql.SQL(
            "INSERT INTO {0}.events (workflow_type, workflow_id, seq, event_type, payload, recorded_at, bucket) "
            "VALUES (%s, %s, %s, %s, %s::jsonb, %s, {0}.instance_bucket(%s, %s))"
        )
        effect = sql.SQL(
            "INSERT INTO {0}.outbox "
            "(workflow_type, workflow_id, effect_type, payload, available_at, created_at, bucket) "
            "VALUES (%s, %s, %s, %s::jsonb, %s, %s, {0}.instance_bucket(%s, %s))"
        )
        read_s, event_s, effect_s = (q.format(s) for q in (read, event, effect))
        pool = store.pool
        per = commands // threads

        def work(t: int, i: int) -> None:
            wid = f"i{(t * per + i) % INSTANCES}"
            with pool.connection() as conn, conn.transaction():
                conn.execute(lock, ("counter", wid))
                rows = conn.execute(read_s, ("counter", wid)).fetchall()
                total = rows[-1][1]["total"] + 1
                event_row = ("counter", wid, rows[-1][0] + 1, "counter.added/1", _j(1, total), NOW, "counter", wid)
                conn.execute(event_s, event_row)
                conn.execute(effect_s, ("counter", wid, "counter.notify/1", _j(wid, total), NOW, NOW, "counter", wid))

        return run_threads(threads, per, work)


def _j(a: object, total: int) -> str:
    return json.dumps({"amount": a, "total": total})


def _counter_eventsourcing(url: str, threads: int, commands: int) -> float:
    from eventsourcing.application import Application
    from eventsourcing.domain import Aggregate, event

    info = conninfo.conninfo_to_dict(url)
    os.environ.update(
        PERSISTENCE_MODULE="eventsourcing.postgres",
        POSTGRES_DBNAME=str(info["dbname"]),
        POSTGRES_HOST=str(info.get("host", "127.0.0.1")),
        POSTGRES_PORT=str(info.get("port", "5432")),
        POSTGRES_USER=str(info.get("user", "postgres")),
        POSTGRES_PASSWORD=str(info.get("password", "")),
        POSTGRES_SCHEMA=f"es_{uuid.uuid4().hex[:8]}",
        POSTGRES_POOL_SIZE=str(threads),
        CREATE_TABLE="y",
    )
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(os.environ["POSTGRES_SCHEMA"])))

    class Counter(Aggregate):
        def __init__(self, name: str) -> None:
            self.name = name
            self.total = 0

        @event("Added")
        def add(self, amount: int) -> None:
            self.total += amount

    class Counters(Application[uuid.UUID]):
        def create(self, name: str) -> uuid.UUID:
            counter = Counter(name)
            self.save(counter)
            return counter.id

        def add(self, counter_id: uuid.UUID) -> None:
            counter: Counter = self.repository.get(counter_id)
            counter.add(1)
            self.save(counter)

    app = Counters()
    ids: list[uuid.UUID] = [uuid.UUID(int=0)] * INSTANCES
    seed_per = INSTANCES // 8

    def create(t: int, i: int) -> None:
        ids[t * seed_per + i] = app.create(f"i{t * seed_per + i}")

    run_threads(8, seed_per, create)  # the seed, before the clock
    per = commands // threads
    return run_threads(threads, per, lambda t, i: app.add(ids[(t * per + i) % INSTANCES]))


def _counter_dbos(url: str, threads: int, commands: int) -> float:
    from dbos import DBOS

    DBOS(
        config={
            "name": "ironflow_bench",
            "system_database_url": _sqlalchemy_url(url),
            "dbos_system_schema": f"dbos_{uuid.uuid4().hex[:8]}",
            "sys_db_pool_size": threads + 2,
            "log_level": "WARNING",
        }
    )

    @DBOS.step()
    def bump(counter_id: str) -> int:
        return 1

    @DBOS.workflow()
    def add(counter_id: str) -> int:
        return bump(counter_id)

    DBOS.launch()
    try:
        add("warmup")
        per = commands // threads
        return run_threads(threads, per, lambda t, i: _one_dbos(add, f"i{(t * per + i) % INSTANCES}"))
    finally:
        DBOS.destroy()


def _sqlalchemy_url(dsn: str) -> str:
    """The URL SQLAlchemy (DBOS) wants, from a libpq connection string or URL."""
    info = conninfo.conninfo_to_dict(dsn)
    auth = str(info.get("user", "postgres")) + (f":{info['password']}" if info.get("password") else "")
    return f"postgresql+psycopg://{auth}@{info.get('host', '127.0.0.1')}:{info.get('port', 5432)}/{info['dbname']}"


def _one_dbos(add: Callable[[str], int], counter_id: str) -> None:
    assert add(counter_id) == 1


def _drain_ironflow(url: str, concurrency: int, backlog: int) -> float:
    from benchmarks import effects

    return backlog / effects.run_runtime(url, backlog, 1, concurrency)


def _drain_raw(url: str, concurrency: int, backlog: int) -> float:
    from benchmarks import effects

    return backlog / effects.run_bare(url, backlog, concurrency)


def _drain_procrastinate(url: str, concurrency: int, backlog: int) -> float:
    import procrastinate

    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=url))

    @app.task(name="noop")
    async def noop() -> None:
        return None

    with app.open():
        app.schema_manager.apply_schema()
        noop.batch_defer(*[{} for _ in range(backlog)])

    async def drain() -> float:
        async with app.open_async():
            started = time.perf_counter()
            await app.run_worker_async(
                concurrency=concurrency, wait=False, listen_notify=False, install_signal_handlers=False
            )
            return time.perf_counter() - started

    elapsed = asyncio.run(drain())
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM procrastinate_jobs WHERE status <> 'succeeded'").fetchone()
        assert row is not None and row[0] == 0, f"{row} jobs left"
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")
    return backlog / elapsed


COUNTER = {
    "ironflow_py": _counter_ironflow,
    "raw psycopg": _counter_raw,
    "eventsourcing": _counter_eventsourcing,
    "DBOS": _counter_dbos,
}
DRAIN = {"ironflow_py": _drain_ironflow, "raw psycopg": _drain_raw, "procrastinate": _drain_procrastinate}
MODULES = {"eventsourcing": "eventsourcing", "DBOS": "dbos", "procrastinate": "procrastinate"}


def child(workload: str, peer: str, url: str, threads: int, amount: int) -> float:
    """One cell: `threads` threads (or concurrency) and `amount` commands (or jobs in the backlog)."""
    quiet_logging()
    run = COUNTER[peer] if workload == "counter" else DRAIN[peer]
    return run(url, threads, amount)


def run_child(workload: str, peer: str, url: str, threads: int, amount: int) -> tuple[float | None, str]:
    """(rate, "") or (None, why it did not run)."""
    module = MODULES.get(peer)
    if module is not None:
        probe = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True, check=False)
        if probe.returncode != 0:
            return None, f"not installed ({module}: pip install 'ironflow_py[bench-peers]')"
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.peers", "--child", workload, peer, url, str(threads), str(amount)],
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        check=False,
        timeout=3600,
    )
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["no output"])[-1]
        return None, f"failed: {last[:100]}"
    return float(out.stdout.strip().splitlines()[-1]), ""


def main(url: str) -> None:
    quiet_logging()
    commands = env_int("BENCH_PEER_COMMANDS", 2000)
    backlog = env_int("BENCH_PEER_BACKLOG", 50_000)
    jobs = env_int("BENCH_PROCRASTINATE_JOBS", 3000)
    database = f"bench_peers_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    peer_url = conninfo.make_conninfo(url, dbname=database)
    why: dict[str, str] = {}
    rates: dict[tuple[str, str, int], float] = {}
    loads = [load_average()]
    try:
        for workload, peers in (("counter", COUNTER), ("drain", DRAIN)):
            for k in THREADS:
                for peer in peers:
                    if peer in why:
                        continue
                    amount = commands if workload == "counter" else jobs if peer == "procrastinate" else backlog
                    rate, reason = run_child(workload, peer, peer_url, k, amount)
                    if rate is None:
                        why[peer] = reason
                    else:
                        rates[(workload, peer, k)] = rate
            loads.append(load_average())
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
    _print(rates, why, commands, backlog, jobs, loads)


def _print(
    rates: dict[tuple[str, str, int], float],
    why: dict[str, str],
    commands: int,
    backlog: int,
    jobs: int,
    loads: list[str],
) -> None:
    rows = []
    for workload, peers in (("counter", COUNTER), ("drain", DRAIN)):
        for peer in peers:
            cells = []
            for k in THREADS:
                rate = rates.get((workload, peer, k))
                ours = rates.get((workload, "ironflow_py", k))
                if rate is None:
                    cells.append("-")
                elif peer == "ironflow_py" or ours is None:
                    cells.append(f"{rate:,.0f}")
                else:
                    cells.append(f"{rate:,.0f} ({ours / rate:.2f}x)")
            label = f"{workload}: {peer}"
            if workload == "drain":
                label += f" ({jobs if peer == 'procrastinate' else backlog:,} jobs)"
            rows.append([label, *cells, why.get(peer, "")])
    print_table(
        f"peers, one sitting: counter ({commands:,} commands over {INSTANCES:,} instances, per/s) and no-op drain "
        "(jobs/s); (n x) = ironflow_py's rate over the peer's",
        ["workload: peer", *[f"{k} thread(s)" for k in THREADS], "not run because"],
        rows,
    )
    print("# " + " | ".join(loads))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        workload, peer, url, threads, amount = sys.argv[2:7]
        threading.current_thread().name = f"{workload}-{peer}"
        print(child(workload, peer, url, int(threads), int(amount)))
    else:
        from benchmarks._common import database_url

        main(database_url())
