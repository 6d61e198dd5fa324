"""Projection catch-up and live lag: `python -m benchmarks.projections` (or `main(url)` from the runner).

Catch-up: 1,000,000 Added events of 10,000 counters, written with SQL (INSERT ... SELECT generate_series
in 4 transactions) and interleaved, so every batch of 1,000 touches 1,000 instances (the worst case for
the per-instance gap guard). Each reader runs in its own child process, which reports its peak RSS; the
fast readers run 3 times, interleaved, and the best run is shown (the upsert once):
- a bare keyset read on `position` (psycopg, batches of 1,000, payloads parsed by psycopg's default
  stdlib `json.loads`), the baseline;
- the same read with the worker's JSON loader (the store's `json_loads`: orjson when installed), like for like;
- the same keyset on the projection cursor `(tx_id, position)` below the xmin horizon, nothing else;
- `ProjectionWorker` with a no-op handler, with a handler that upserts one row per event, and with a batch
  handler (`handle_batch`) that upserts a whole batch with one `INSERT ... SELECT FROM unnest`;
- the bare keyset read followed, per batch, by that same upsert in its own transaction, no worker: the
  ceiling of any batch-upserting reader, since the upsert's server work (1,000 rows updated per batch) is
  the read model's own.
Live lag: 4 threads execute decisions at full speed while a worker tails them in-process; lag is the time
from `execute` returning (committed) to the worker's batch commit that applied the event.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import set_json_loads

from benchmarks._common import load_average, print_table
from ironflow_py import PostgresStore, Projection, ProjectionWorker, RecordedEvent, WorkflowService, _database
from ironflow_py.projections._worker import _loads
from tests.workflows import Add, Counter

EVENTS = int(os.environ.get("BENCH_PROJECTION_EVENTS", "1000000"))
INSTANCES = 10_000
BATCH = 1000
REPEAT = int(os.environ.get("BENCH_PROJECTION_REPEAT", "3"))
LIVE_DECISIONS = int(os.environ.get("BENCH_PROJECTION_LIVE", "4000"))


def _quiet() -> None:
    logging.basicConfig(level=logging.INFO)


def generate(url: str, schema: str) -> float:
    """Write EVENTS events with SQL in 4 transactions; returns seconds taken."""
    started = time.perf_counter()
    per_tx = EVENTS // 4
    insert = sql.SQL(
        "INSERT INTO {s}.events (workflow_type, workflow_id, seq, event_type, payload, recorded_at, bucket) "
        "SELECT 'counter', 'c' || (i %% %(inst)s), i / %(inst)s + 1, 'counter.added/1', "
        "jsonb_build_object('amount', 1, 'total', i / %(inst)s + 1), now(), "
        "{s}.instance_bucket('counter', 'c' || (i %% %(inst)s)) "
        "FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) AS i ORDER BY i"
    ).format(s=sql.Identifier(schema))
    with psycopg.connect(url, autocommit=True) as conn:
        for k in range(4):
            lo = k * per_tx
            conn.execute(insert, {"inst": INSTANCES, "lo": lo, "hi": lo + per_tx - 1})
        conn.execute(sql.SQL("VACUUM ANALYZE {s}.events").format(s=sql.Identifier(schema)))
    return time.perf_counter() - started


# -- child processes: one reader each, so each peak RSS is its own ----------------------------------------


def child(mode: str, url: str, schema: str, run: int) -> dict[str, Any]:
    _quiet()
    bare = mode in ("keyset", "keyset_text", "cursor", "keyset_upsert")
    count, seconds, cpu = _bare(url, schema, mode) if bare else _worker(url, schema, f"{mode}_{run}", mode)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"mode": mode, "events": count, "seconds": seconds, "cpu_s": cpu, "rss_mb": rss_mb}


def _bare(url: str, schema: str, mode: str) -> tuple[int, float, float]:
    """(events, seconds of reading, CPU seconds of this process), the connection set up before the clock."""
    s = sql.Identifier(schema)
    if mode in ("keyset", "keyset_text", "keyset_upsert"):
        query = sql.SQL(
            "SELECT position, workflow_type, workflow_id, seq, event_type, payload, recorded_at "
            "FROM {s}.events WHERE position > %s ORDER BY position LIMIT %s"
        ).format(s=s)
    else:
        query = sql.SQL(
            "SELECT e.tx_id::text, e.position, e.workflow_type, e.workflow_id, e.seq, e.event_type, "
            "e.payload, e.recorded_at FROM {s}.events e WHERE (e.tx_id, e.position) > (%s::xid8, %s) "
            "AND e.tx_id < pg_snapshot_xmin(pg_current_snapshot()) ORDER BY e.tx_id, e.position LIMIT %s"
        ).format(s=s)
    count, tx, pos = 0, "0", 0
    with psycopg.connect(url, autocommit=True) as conn:
        if mode != "keyset":
            set_json_loads(_loads, conn)
        started, cpu = time.perf_counter(), time.process_time()
        while True:
            params = (tx, pos, BATCH) if mode == "cursor" else (pos, BATCH)
            rows = conn.execute(query, params).fetchall()
            if not rows:
                return count, time.perf_counter() - started, time.process_time() - cpu
            count += len(rows)
            if mode == "keyset_upsert":
                with conn.transaction():
                    conn.execute(_upsert_many(s), ([r[2] for r in rows], [r[5]["amount"] for r in rows]))
            if mode == "cursor":
                tx, pos = rows[-1][0], rows[-1][1]
            else:
                pos = rows[-1][0]


def _upsert_many(s: sql.Identifier) -> sql.Composed:
    """The batch upsert: one row per counter per batch (ON CONFLICT DO UPDATE may not touch a row twice)."""
    return sql.SQL(
        "INSERT INTO {s}.bench_totals AS t (workflow_id, total, n) "
        "SELECT w, sum(a), count(*) FROM unnest(%s::text[], %s::bigint[]) AS u(w, a) GROUP BY w "
        "ON CONFLICT (workflow_id) DO UPDATE SET total = t.total + EXCLUDED.total, n = t.n + EXCLUDED.n"
    ).format(s=s)


def _worker(url: str, schema: str, name: str, mode: str) -> tuple[int, float, float]:
    """(events, seconds of catching up, CPU seconds), the worker built and connected before the clock."""
    s = sql.Identifier(schema)
    upsert = sql.SQL(
        "INSERT INTO {s}.bench_totals AS t (workflow_id, total, n) VALUES (%s, %s, 1) "
        "ON CONFLICT (workflow_id) DO UPDATE SET total = t.total + EXCLUDED.total, n = t.n + 1"
    ).format(s=s)

    def noop(event: RecordedEvent[Any], conn: psycopg.Connection[Any]) -> None:
        pass

    def upserting(event: RecordedEvent[Any], conn: psycopg.Connection[Any]) -> None:
        conn.execute(upsert, (event.workflow_id, event.event.amount))

    upsert_many = _upsert_many(s)

    def upserting_batch(conn: psycopg.Connection[Any], events: Sequence[RecordedEvent[Any]]) -> None:
        conn.execute(upsert_many, ([e.workflow_id for e in events], [e.event.amount for e in events]))

    if mode == "upsert_batch":
        projection = Projection(f"bench_{name}", handle_batch=upserting_batch)
    else:
        projection = Projection(f"bench_{name}", noop if mode == "noop" else upserting)
    with PostgresStore.connect(url, schema=schema, max_size=2) as store:
        service = WorkflowService(store, workflows=[Counter])
        worker = ProjectionWorker(service, [projection], batch_size=BATCH)
        try:
            assert worker.prepare()  # connect, LISTEN, take the lead: setup, like the bare read's connect
            started, cpu = time.perf_counter(), time.process_time()
            count = worker.run_until_idle()
            return count, time.perf_counter() - started, time.process_time() - cpu
        finally:
            worker.close()


def run_child(mode: str, url: str, schema: str, run: int) -> dict[str, Any]:
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root)}
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.projections", "--child", mode, url, schema, str(run)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


# -- live lag ---------------------------------------------------------------------------------------------


def live_lag(url: str) -> tuple[float, float, float, int]:
    """(p50 ms, p99 ms, decisions/s, events) with 4 writer threads and one tailing worker."""
    schema = f"bench_live_{uuid.uuid4().hex[:8]}"
    committed: dict[int, float] = {}
    applied: dict[int, float] = {}
    staged: list[int] = []

    def handle(event: RecordedEvent[Any], conn: psycopg.Connection[Any]) -> None:
        staged.append(event.position)

    def on_commit() -> None:
        now = time.perf_counter()
        for p in staged:
            applied[p] = now
        staged.clear()

    projection = Projection("bench_live", handle, on_commit=on_commit, on_rollback=staged.clear)
    try:
        with PostgresStore.connect(url, schema=schema, max_size=6) as store:
            store.migrate()
            service = WorkflowService(store, workflows=[Counter])
            worker = ProjectionWorker(service, [projection], batch_size=BATCH, poll_interval=1.0)
            tail = threading.Thread(target=worker.run)
            tail.start()
            per_thread = LIVE_DECISIONS // 4

            def write(t: int) -> None:
                for i in range(per_thread):
                    outcome = service.execute(Add(f"live{t}-{i % 50}"))
                    committed[outcome.events[0].position] = time.perf_counter()

            started = time.perf_counter()
            writers = [threading.Thread(target=write, args=(t,)) for t in range(4)]
            for w in writers:
                w.start()
            for w in writers:
                w.join()
            rate = LIVE_DECISIONS / (time.perf_counter() - started)
            last = max(committed)
            assert worker.wait_until_caught_up("bench_live", last, 60)
            worker.stop()
            tail.join()
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
    lags = sorted(max(0.0, applied[p] - committed[p]) * 1000 for p in committed)
    return lags[len(lags) // 2], lags[int(len(lags) * 0.99)], rate, len(lags)


def main(url: str) -> None:
    _quiet()
    schema = f"bench_proj_{uuid.uuid4().hex[:8]}"
    try:
        with PostgresStore.connect(url, schema=schema, max_size=1) as store:
            store.migrate()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("CREATE TABLE {s}.bench_totals (workflow_id text PRIMARY KEY, total bigint, n bigint)").format(
                    s=sql.Identifier(schema)
                )
            )
        gen = generate(url, schema)
        print(f"# generated {EVENTS:,} events over {INSTANCES:,} instances in {gen:.1f}s")
        # The machine is shared: the fast readers run REPEAT times, interleaved, and the best run counts.
        runs: dict[str, list[dict[str, Any]]] = {}
        for k in range(REPEAT):
            for m in ("keyset", "keyset_text", "cursor", "noop", "upsert_batch", "keyset_upsert"):
                runs.setdefault(m, []).append(run_child(m, url, schema, k))
        runs["upsert"] = [run_child("upsert", url, schema, 0)]
        results = {
            m: min(rs, key=lambda r: r["seconds"]) | {"rss_mb": max(r["rss_mb"] for r in rs)} for m, rs in runs.items()
        }
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
    base = results["keyset"]["events"] / results["keyset"]["seconds"]
    labels = {
        "keyset": "bare keyset read on position (baseline)",
        "keyset_text": "bare keyset read on position, worker's JSON loader",
        "cursor": "bare read on (tx_id, position) < xmin, worker's JSON loader",
        "noop": "ProjectionWorker, no-op handler",
        "upsert": "ProjectionWorker, upsert one row per event",
        "upsert_batch": "ProjectionWorker, handle_batch: one unnest upsert per batch",
        "keyset_upsert": "bare keyset read + the same unnest upsert per batch, no worker",
    }
    rows = []
    for mode, r in results.items():
        assert r["events"] == EVENTS, r
        rate = r["events"] / r["seconds"]
        rows.append(
            [
                labels[mode],
                f"{r['events']:,}",
                f"{r['seconds']:.1f}",
                f"{rate:,.0f}",
                f"{rate / base:.2f}",
                f"{r['cpu_s'] / r['events'] * 1e6:.1f}",
                f"{r['rss_mb']:.0f}",
            ]
        )
    print_table(
        f"Catch-up over {EVENTS:,} stored events (batches of {BATCH}); {load_average()}",
        ["reader", "events", "seconds", "events/s", "vs bare keyset", "client CPU µs/event", "peak RSS MB"],
        rows,
    )
    p50, p99, rate, n = live_lag(url)
    print_table(
        "Live lag, commit to applied (4 writer threads at full speed, worker tailing via LISTEN/NOTIFY)",
        ["events", "decisions/s", "p50 ms", "p99 ms"],
        [[f"{n:,}", f"{rate:,.0f}", f"{p50:.1f}", f"{p99:.1f}"]],
    )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(json.dumps(child(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))))
    else:
        main(_database.resolve(None, data_dir=Path(".ironflow") / "bench-postgres").url)
