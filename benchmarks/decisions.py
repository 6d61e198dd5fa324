"""Decisions per second through `WorkflowService.execute`, next to raw psycopg issuing the same SQL.

Counter workflow, one event and one effect per decision, each decision on an instance that already has
`prior` events (seeded with SQL). The raw baseline runs the Decider's statements (lock, load, write,
commit) with no decoding, folding or encoding: the ratio is the framework's client-side overhead.
"""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql

from benchmarks._common import env_int, fresh_schema, print_table, quiet_logging, run_threads
from ironflow_py import PostgresStore, WorkflowService
from tests.workflows import Add, Counter


def seed(url: str, schema: str, instances: int, prior: int) -> None:
    """`instances` counters named i0.. with `prior` Added events each, written in bulk."""
    if prior == 0:
        return
    q = sql.SQL(
        "INSERT INTO {s}.events (workflow_type, workflow_id, seq, event_type, payload, recorded_at) "
        "SELECT 'counter', 'i' || i, n, 'counter.added/1', "
        "jsonb_build_object('amount', 1, 'total', n), now() "
        "FROM generate_series(0, %s - 1) i, generate_series(1, %s) n"
    ).format(s=sql.Identifier(schema))
    inst = sql.SQL(
        "INSERT INTO {s}.instances SELECT 'counter', 'i' || i, 'running', %s, now(), now() "
        "FROM generate_series(0, %s - 1) i"
    ).format(s=sql.Identifier(schema))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(q, (instances, prior))
        conn.execute(inst, (prior, instances))
        conn.execute(sql.SQL("ANALYZE {s}.events").format(s=sql.Identifier(schema)))


def framework_rate(url: str, prior: int, threads: int, per_thread: int, **store_kw: Any) -> float:
    with fresh_schema(url) as schema, PostgresStore.connect(url, schema=schema, max_size=threads) as store:
        store.migrate()
        seed(url, schema, threads * per_thread, prior)
        service = WorkflowService(store, workflows=[Counter])
        service.execute(Add("warmup"))
        return run_threads(threads, per_thread, lambda t, i: _one(service, f"i{t * per_thread + i}"))


def _one(service: WorkflowService, wid: str) -> None:
    outcome = service.execute(Add(wid))
    assert outcome.accepted


def raw_rate(url: str, prior: int, threads: int, per_thread: int) -> float:
    """The same statements on the same tables, straight from psycopg."""
    with fresh_schema(url) as schema, PostgresStore.connect(url, schema=schema, max_size=threads) as store:
        store.migrate()
        seed(url, schema, threads * per_thread, prior)
        q = store.q
        pool = store.pool
        counter = itertools.count()

        def work(t: int, i: int) -> None:
            wid = f"i{t * per_thread + i}"
            ids = {"workflow_type": "counter", "workflow_id": wid}
            with pool.connection() as conn, conn.transaction():
                conn.execute(q["lock_instance"], ids)
                rows = conn.execute(q["load_events"], {**ids, "after_seq": 0}).fetchall()
                last = rows[-1][0] if rows else 0
                total = rows[-1][2]["total"] + 1 if rows else 1
                params = {
                    **ids,
                    "now": NOW,
                    "base_seq": last,
                    "last_seq": last + 1,
                    "status": "running",
                    "touch_instance": True,
                    "event_types": ["counter.added/1"],
                    "event_payloads": [json.dumps({"amount": 1, "total": total})],
                    "effect_types": ["counter.notify/1"],
                    "effect_payloads": [json.dumps({"counter_id": wid, "total": total, "note": None})],
                    "timer_keys": [],
                    "timer_due": [],
                    "timer_types": [],
                    "timer_payloads": [],
                    "cancel_keys": [],
                    "input_key": None,
                    "key_status": None,
                    "snapshot_version": None,
                    "snapshot_payload": None,
                    "notify": True,  # as the store does whenever effects are written
                    "channel": store.channel,
                }
                conn.execute(q["write_decision"], params).fetchone()
            next(counter)

        return run_threads(threads, per_thread, work)


NOW = datetime.now(UTC)


def main(url: str) -> None:
    quiet_logging()
    n = env_int("BENCH_DECISIONS", 1500)
    reps = env_int("BENCH_REPEATS", 3)
    rows = []
    for threads in (1, 4, 8):
        per_thread = max(n // threads, 50)
        # Interleaved and best-of-N: on a shared 2-core machine one serial pair swings by +-20%.
        raw = fw = 0.0
        for _ in range(reps):
            raw = max(raw, raw_rate(url, 1, threads, per_thread))
            fw = max(fw, framework_rate(url, 1, threads, per_thread))
        rows.append([str(threads), f"{fw:,.0f}", f"{raw:,.0f}", f"{fw / raw:.2f}"])
    print_table(
        f"decisions/s, counter workflow, 1 prior event, best of {reps} interleaved (execute vs raw psycopg, same SQL)",
        ["threads", "execute/s", "raw psycopg/s", "ratio"],
        rows,
    )
