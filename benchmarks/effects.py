"""Effect runtime throughput and wake-up latency, next to a bare-SQL claim-then-mark-done loop.

Run by hand:  python -m benchmarks effects   (BENCH_EFFECTS, BENCH_EFFECT_SAMPLES, BENCH_EFFECT_CONCURRENCY)
         or:  python -m benchmarks.effects [--url URL] [--effects 20000] [--samples 500] [--concurrency 4]

Every phase runs in a fresh schema on the same server, in the same run:
- bare loop: N pre-inserted outbox rows drained by 1 and 2 processes, each looping "claim 100 rows
  (FOR UPDATE SKIP LOCKED, set a lease) then mark them done" on one connection;
- EffectRuntime: the same N rows (valid effects with a no-op handler) drained by 1 and 2 worker processes,
  timed from the commit that inserts them (the workers are already listening) to the last row done;
- latency: one idle worker; decisions are executed one at a time and each effect's handler records when
  it started; reported is handler start minus the moment `execute` returned (the commit).
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing as mp
import os
import statistics
import tempfile
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import attrs
import psycopg
from psycopg import sql

from ironflow_py import (
    Decision,
    EffectContext,
    EffectRegistry,
    EffectRuntime,
    PostgresStore,
    Workflow,
    WorkflowService,
    _database,
)
from ironflow_py.store.postgres import notify_channel

BATCH = 100
# Worker processes are started fresh (spawn), never forked from a process holding pools and threads.
SPAWN = mp.get_context("spawn")


@attrs.frozen
class Ping:
    ping_id: str
    n: int


@attrs.frozen
class Pinged:
    n: int


@attrs.frozen
class Noop:
    n: int


class PingWorkflow(Workflow[int, Ping, Pinged, Noop]):
    type = "ping"
    inputs = {"ping.ping/1": Ping}
    events = {"ping.pinged/1": Pinged}
    effects = {"ping.noop/1": Noop}

    def initial_state(self) -> int:
        return 0

    def workflow_id(self, input: Ping) -> str:
        return input.ping_id

    def evolve(self, state: int, event: Pinged) -> int:
        return state + 1

    def decide(self, now: datetime, state: int, input: Ping) -> Decision[Pinged, Noop]:
        return Decision.accept(Pinged(input.n), effects=[Noop(input.n)])


# -- helpers --------------------------------------------------------------------------------------------


def fresh_schema(url: str) -> str:
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with PostgresStore.connect(url, schema=schema, max_size=1) as store:
        store.migrate()
    return schema


def drop_schema(url: str, schema: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


def insert_rows(url: str, schema: str, n: int, channel: str | None = None) -> float:
    """Insert n pending no-op effects in one transaction; returns the time just after the commit."""
    query = sql.SQL(
        "INSERT INTO {0}.outbox (workflow_type, workflow_id, effect_type, payload, available_at, created_at, bucket) "
        "SELECT 'ping', 'p' || (g %% 100), 'ping.noop/1', jsonb_build_object('n', g), now(), now(), "
        "{0}.instance_bucket('ping', 'p' || (g %% 100)) FROM generate_series(1, %s) g"
    ).format(sql.Identifier(schema))
    with psycopg.connect(url) as conn:
        conn.execute(query, (n,))
        if channel:
            conn.execute("SELECT pg_notify(%s, '')", (channel,))
        conn.commit()
        return time.perf_counter()


def pending(conn: psycopg.Connection[Any], schema: str) -> bool:
    query = sql.SQL("SELECT EXISTS (SELECT 1 FROM {}.outbox WHERE status = 'pending')")
    row = conn.execute(query.format(sql.Identifier(schema))).fetchone()
    return bool(row and row[0])


def listeners(conn: psycopg.Connection[Any], channel: str) -> int:
    text = sql.SQL("LISTEN {}").format(sql.Identifier(channel)).as_string(conn)
    row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE query = %s", (text,)).fetchone()
    return int(row[0]) if row else 0


# -- the bare loop --------------------------------------------------------------------------------------


def bare_main(url: str, schema: str, barrier: Any) -> None:
    s = sql.Identifier(schema)
    claim = sql.SQL(
        "WITH due AS (SELECT id FROM {s}.outbox WHERE status = 'pending' AND available_at <= now() "
        "AND (locked_until IS NULL OR locked_until < now()) "
        "ORDER BY available_at, id LIMIT %(limit)s FOR UPDATE SKIP LOCKED) "
        "UPDATE {s}.outbox o SET locked_by = %(me)s, locked_until = now() + interval '60 seconds', "
        "attempts = o.attempts + 1 FROM due WHERE o.id = due.id RETURNING o.id"
    ).format(s=s)
    done = sql.SQL(
        "UPDATE {s}.outbox SET status = 'done', completed_at = now() WHERE id = ANY(%(ids)s) AND locked_by = %(me)s"
    ).format(s=s)
    params = {"limit": BATCH, "me": f"bare-{os.getpid()}"}
    with psycopg.connect(url, autocommit=True) as conn:
        barrier.wait()
        while ids := [r[0] for r in conn.execute(claim, params).fetchall()]:
            conn.execute(done, {"ids": ids, "me": params["me"]})


def run_bare(url: str, n: int, connections: int) -> float:
    schema = fresh_schema(url)
    try:
        insert_rows(url, schema, n)
        barrier = SPAWN.Barrier(connections + 1)
        procs = [SPAWN.Process(target=bare_main, args=(url, schema, barrier)) for _ in range(connections)]
        for p in procs:
            p.start()
        barrier.wait()
        started = time.perf_counter()
        for p in procs:
            p.join()
        elapsed = time.perf_counter() - started
        with psycopg.connect(url) as conn:
            assert not pending(conn, schema)
        return elapsed
    finally:
        drop_schema(url, schema)


# -- the runtime ----------------------------------------------------------------------------------------


def worker_main(url: str, schema: str, concurrency: int, trace: str | None) -> None:
    logging.basicConfig(level=logging.WARNING)
    registry = EffectRegistry()
    if trace is None:
        registry.register(Noop, lambda effect, ctx: None)
    else:
        out = Path(trace).open("a", buffering=1)  # noqa: SIM115 - lives as long as the process

        def traced(effect: Noop, ctx: EffectContext) -> None:
            out.write(f"{ctx.effect_id} {time.time()}\n")

        registry.register(Noop, traced)
    with PostgresStore.connect(url, schema=schema, max_size=concurrency + 2) as store:
        service = WorkflowService(store, workflows=[PingWorkflow])
        EffectRuntime(service, registry, concurrency=concurrency, batch_size=BATCH).run()


def start_workers(url: str, schema: str, count: int, concurrency: int, trace: str | None = None) -> list[Any]:
    procs = [SPAWN.Process(target=worker_main, args=(url, schema, concurrency, trace)) for _ in range(count)]
    for p in procs:
        p.start()
    channel = notify_channel(schema)
    with psycopg.connect(url, autocommit=True) as conn:
        while listeners(conn, channel) < count:
            time.sleep(0.05)
    return procs


def stop_workers(procs: list[Any]) -> None:
    for p in procs:
        p.terminate()  # SIGTERM: a clean shutdown
    for p in procs:
        p.join(60)


def run_runtime(url: str, n: int, processes: int, concurrency: int) -> float:
    schema = fresh_schema(url)
    channel = notify_channel(schema)
    procs = start_workers(url, schema, processes, concurrency)
    try:
        committed = insert_rows(url, schema, n, channel)
        with psycopg.connect(url, autocommit=True) as conn:
            while pending(conn, schema):
                time.sleep(0.005)
        return time.perf_counter() - committed
    finally:
        stop_workers(procs)
        drop_schema(url, schema)


def run_latency(url: str, samples: int, concurrency: int) -> list[float]:
    schema = fresh_schema(url)
    with tempfile.TemporaryDirectory() as folder:
        trace = Path(folder) / "starts.log"
        trace.touch()
        procs = start_workers(url, schema, 1, concurrency, str(trace))
        try:
            committed: dict[int, float] = {}
            with PostgresStore.connect(url, schema=schema, max_size=2) as store:
                service = WorkflowService(store, workflows=[PingWorkflow])
                gap = threading.Event()
                for i in range(samples):
                    outcome = service.execute(Ping(f"lat-{i % 50}", i))
                    committed[outcome.effect_ids[0]] = time.time()
                    gap.wait(0.004)  # one decision at a time, like a trickle of real traffic
            deadline = time.monotonic() + 30
            while len(trace.read_text().splitlines()) < samples and time.monotonic() < deadline:
                time.sleep(0.01)
            starts = dict(line.split() for line in trace.read_text().splitlines())
            return sorted((float(starts[str(k)]) - v) * 1000 for k, v in committed.items())
        finally:
            stop_workers(procs)
            drop_schema(url, schema)


def percentile(values: list[float], p: float) -> float:
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


def run(url: str, n: int, samples: int, concurrency: int) -> None:
    logging.basicConfig(level=logging.WARNING)
    rows: list[tuple[str, float]] = []
    bare = {c: n / run_bare(url, n, c) for c in (1, 2)}
    rows += [(f"bare claim+done (batches of {BATCH}), {c} connection(s)", bare[c]) for c in (1, 2)]
    runtime = {p: n / run_runtime(url, n, p, concurrency) for p in (1, 2)}
    rows += [(f"EffectRuntime no-op handler, {p} worker process(es)", runtime[p]) for p in (1, 2)]
    latency = run_latency(url, samples, concurrency)

    print(f"\n{n} effects per phase, {concurrency} handler threads per worker, workers log at warning")
    print(f"{'phase':<58} {'effects/s':>10} {'vs bare':>8}")
    for name, rate in rows:
        versus = ""
        if name.startswith("EffectRuntime"):
            versus = f"{rate / bare[1 if '1 worker' in name else 2]:.2f}"
        print(f"{name:<58} {rate:>10,.0f} {versus:>8}")
    print(
        f"commit -> handler start, LISTEN/NOTIFY, 1 idle worker ({len(latency)} samples): "
        f"p50 {statistics.median(latency):.2f} ms, p99 {percentile(latency, 99):.2f} ms"
    )


def main(url: str) -> None:
    """The `effects` section of `python -m benchmarks`."""
    env = os.environ.get
    run(
        url,
        int(env("BENCH_EFFECTS", "20000")),
        int(env("BENCH_EFFECT_SAMPLES", "500")),
        int(env("BENCH_EFFECT_CONCURRENCY", "4")),
    )


def _cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--url", help="PostgreSQL URL (default: IRONFLOW_DATABASE_URL, else embedded)")
    parser.add_argument("--effects", type=int, default=20_000)
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=4, help="handler threads per worker process")
    args = parser.parse_args()
    run(_database.resolve(args.url).url, args.effects, args.samples, args.concurrency)


if __name__ == "__main__":
    _cli()
