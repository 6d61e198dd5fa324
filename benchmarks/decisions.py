"""Decisions per second through `WorkflowService.execute`, next to raw psycopg.

Counter workflow, one event and one effect per decision, each decision on an instance that already has
`prior` events (seeded with SQL). Two raw baselines, with no decoding, folding or encoding:
- "same SQL" runs the store's own statements (lock_and_load, write_decision, commit): the ratio is the
  framework's client-side overhead;
- "plain" is the transaction a developer would write by hand: BEGIN, lock, read the instance's events,
  insert one event, insert one outbox row, COMMIT (six round trips, small statements).
Client CPU is the benchmark process's CPU time per decision (time.process_time, every thread); server CPU
is the CPU time of the run's PostgreSQL backends per decision (from /proc, so only for a server on this
machine; "-" otherwise). Every side opens its connections before the clock starts.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import attrs
import psycopg
from psycopg import sql

from benchmarks._common import env_int, fresh_schema, load_average, print_table, quiet_logging, run_threads
from ironflow_py import PostgresStore, WorkflowService
from tests.workflows import Add, Counter


def seed(url: str, schema: str, instances: int, prior: int) -> None:
    """`instances` counters named i0.. with `prior` Added events each, written in bulk."""
    if prior == 0:
        return
    q = sql.SQL(
        "INSERT INTO {s}.events (workflow_type, workflow_id, seq, event_type, payload, recorded_at, bucket) "
        "SELECT 'counter', 'i' || i, n, 'counter.added/1', "
        "jsonb_build_object('amount', 1, 'total', n), now(), {s}.instance_bucket('counter', 'i' || i) "
        "FROM generate_series(0, %s - 1) i, generate_series(1, %s) n"
    ).format(s=sql.Identifier(schema))
    inst = sql.SQL(
        "INSERT INTO {s}.instances (workflow_type, workflow_id, status, last_seq, created_at, updated_at, bucket) "
        "SELECT 'counter', 'i' || i, 'running', %s, now(), now(), {s}.instance_bucket('counter', 'i' || i) "
        "FROM generate_series(0, %s - 1) i"
    ).format(s=sql.Identifier(schema))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(q, (instances, prior))
        conn.execute(inst, (prior, instances))
        conn.execute(sql.SQL("ANALYZE {s}.events").format(s=sql.Identifier(schema)))


def connect(url: str, schema: str, threads: int) -> PostgresStore:
    """A store with `threads` connections open before the clock starts, named so their backends can be found."""
    return PostgresStore.connect(
        url, schema=schema, min_size=threads, max_size=threads, application_name=f"bench_{uuid.uuid4().hex[:12]}"
    )


def framework_rate(url: str, prior: int, threads: int, per_thread: int, **store_kw: Any) -> Rate:
    with fresh_schema(url) as schema, connect(url, schema, threads) as store:
        store.migrate()
        seed(url, schema, threads * per_thread, prior)
        service = WorkflowService(store, workflows=[Counter])
        service.execute(Add("warmup"))
        return timed(store, threads, per_thread, lambda t, i: _one(service, f"i{t * per_thread + i}"))


def _one(service: WorkflowService, wid: str) -> None:
    outcome = service.execute(Add(wid))
    assert outcome.accepted


@attrs.frozen
class Rate:
    """Decisions per second, the benchmark process's CPU time per decision and the server's (µs; None: the
    server's backends are not on this machine)."""

    per_second: float
    cpu_us: float
    server_us: float | None = None


def backend_cpu(store: PostgresStore) -> float | None:
    """CPU seconds used so far by the store's backends (found by its application name), from /proc."""
    app = store.pool.kwargs["application_name"]  # type: ignore[index]
    conninfo = store.pool.conninfo
    assert isinstance(conninfo, str)
    with psycopg.connect(conninfo, autocommit=True) as conn:  # not one of the counted backends
        rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s", (app,)).fetchall()
    total = 0
    for (pid,) in rows:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            return None  # not a local server (or not visible from here)
        total += int(fields[11]) + int(fields[12])  # utime, stime in clock ticks
    return total / os.sysconf("SC_CLK_TCK") if rows else None


def timed(store: PostgresStore, threads: int, per_thread: int, work: Callable[[int, int], None]) -> Rate:
    server = backend_cpu(store)
    started = time.process_time()
    rate = run_threads(threads, per_thread, work)
    cpu = time.process_time() - started
    server_after = backend_cpu(store)
    n = threads * per_thread
    server_us = None if server is None or server_after is None else (server_after - server) / n * 1e6
    return Rate(rate, cpu / n * 1e6, server_us)


def raw_rate(url: str, prior: int, threads: int, per_thread: int) -> Rate:
    """The store's statements on the same tables, straight from psycopg."""
    with fresh_schema(url) as schema, connect(url, schema, threads) as store:
        store.migrate()
        seed(url, schema, threads * per_thread, prior)
        q = store.q
        pool = store.pool

        def work(t: int, i: int) -> None:
            wid = f"i{t * per_thread + i}"
            ids = {"workflow_type": "counter", "workflow_id": wid}
            with pool.connection() as conn, conn.transaction():
                load = {**ids, "after_seq": 0, "with_snapshot": False, "input_key": None, "known_gen": None}
                rows = conn.execute(q["lock_and_load"], load).fetchall()
                last = rows[-1][0] if rows else 0
                total = rows[-1][2]["total"] + 1 if rows else 1
                params = {
                    **ids,
                    "now": NOW,
                    "base_seq": last,
                    "last_seq": last + 1,
                    "status": "running",
                    "outcome": None,
                    "touch_instance": True,
                    "event_types": ["counter.added/1"],
                    "event_payloads": [json.dumps({"amount": 1, "total": total})],
                    "effect_types": ["counter.notify/1"],
                    "effect_payloads": [json.dumps({"counter_id": wid, "total": total, "note": None})],
                    "timer_keys": None,
                    "timer_due": None,
                    "timer_types": None,
                    "timer_payloads": None,
                    "cancel_keys": None,
                    "input_key": None,
                    "key_status": None,
                    "snapshot_version": None,
                    "snapshot_payload": None,
                    "trace_context": None,
                    "version": Counter.version,
                    "notify": True,  # as the store does whenever effects are written
                    "channel": store.channel,
                }
                conn.execute(q["write_decision"], params).fetchone()

        return timed(store, threads, per_thread, work)


def plain_rate(url: str, prior: int, threads: int, per_thread: int) -> Rate:
    """The hand-written decision transaction: lock, read the events, insert one event and one outbox row."""
    with fresh_schema(url) as schema, connect(url, schema, threads) as store:
        store.migrate()
        seed(url, schema, threads * per_thread, prior)
        s = sql.Identifier(schema)
        lock = sql.SQL("SELECT pg_advisory_xact_lock({s}.instance_lock_key(%s, %s))").format(s=s)
        read = sql.SQL(
            "SELECT seq, payload FROM {s}.events WHERE workflow_type = %s AND workflow_id = %s ORDER BY seq"
        ).format(s=s)
        event = sql.SQL(
            "INSERT INTO {s}.events (workflow_type, workflow_id, seq, event_type, payload, recorded_at, bucket) "
            "VALUES (%s, %s, %s, %s, %s::jsonb, %s, {s}.instance_bucket(%s, %s)) RETURNING position"
        ).format(s=s)
        effect = sql.SQL(
            "INSERT INTO {s}.outbox "
            "(workflow_type, workflow_id, effect_type, payload, available_at, created_at, bucket) "
            "VALUES (%s, %s, %s, %s::jsonb, %s, %s, {s}.instance_bucket(%s, %s)) RETURNING id"
        ).format(s=s)
        pool = store.pool

        def work(t: int, i: int) -> None:
            wid = f"i{t * per_thread + i}"
            with pool.connection() as conn, conn.transaction():
                conn.execute(lock, ("counter", wid))
                rows = conn.execute(read, ("counter", wid)).fetchall()
                last = rows[-1][0] if rows else 0
                total = rows[-1][1]["total"] + 1 if rows else 1
                added = json.dumps({"amount": 1, "total": total})
                conn.execute(
                    event, ("counter", wid, last + 1, "counter.added/1", added, NOW, "counter", wid)
                ).fetchone()
                notify = json.dumps({"counter_id": wid, "total": total, "note": None})
                conn.execute(effect, ("counter", wid, "counter.notify/1", notify, NOW, NOW, "counter", wid)).fetchone()

        return timed(store, threads, per_thread, work)


NOW = datetime.now(UTC)


def main(url: str) -> None:
    quiet_logging()
    n = env_int("BENCH_DECISIONS", 1500)
    reps = env_int("BENCH_REPEATS", 3)
    rows = []
    for threads in (1, 4, 8):
        per_thread = max(n // threads, 50)
        # Interleaved and best-of-N: on a shared 2-core machine one serial pair swings by +-20%.
        best: dict[str, Rate] = {}
        for _ in range(reps):
            for name, run in (("fw", framework_rate), ("raw", raw_rate), ("plain", plain_rate)):
                rate = run(url, 1, threads, per_thread)
                if name not in best or rate.per_second > best[name].per_second:
                    best[name] = rate
        fw, raw, plain = best["fw"], best["raw"], best["plain"]
        rows.append(
            [
                str(threads),
                f"{fw.per_second:,.0f}",
                f"{raw.per_second:,.0f}",
                f"{plain.per_second:,.0f}",
                f"{fw.per_second / raw.per_second:.2f}",
                f"{fw.per_second / plain.per_second:.2f}",
                f"{fw.cpu_us:.0f} / {raw.cpu_us:.0f} / {plain.cpu_us:.0f}",
                " / ".join("-" if r.server_us is None else f"{r.server_us:.0f}" for r in (fw, raw, plain)),
            ]
        )
    print_table(
        f"decisions/s, counter workflow, 1 prior event, best of {reps} interleaved; {load_average()}",
        [
            "threads",
            "execute/s",
            "same SQL/s",
            "plain/s",
            "vs same SQL",
            "vs plain",
            "client CPU µs (e/s/p)",
            "server CPU µs (e/s/p)",
        ],
        rows,
    )
