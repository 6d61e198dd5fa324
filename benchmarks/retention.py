"""Growth: `inspect outbox` over many finished rows, and how fast `prune` removes closed instances.

Run by hand:  python -m benchmarks retention   (BENCH_RETENTION_INSTANCES: closed instances to prune)
         or:  python -m benchmarks.retention [--url URL] [--instances 20000]

- inspect outbox: a fresh schema with 50 pending rows and N finished (`done`) outbox rows, N = 2,000 and
  300,000, seeded by SQL and analyzed; reported is the median time of the `outbox_health` read that
  `ironflow-py inspect outbox` makes (21 runs) and the plan's scan of the outbox.
- prune: N closed instances, each with 3 events, one input key, one done effect and a snapshot, closed a
  day ago; timed is `prune_all` with the tombstone and the delete mode (rows removed per second, where a
  row is any event, key, effect, snapshot or instance row deleted).
- prefetch: the issue's example, 10 pending effects of 50 MB each (`tests.bulky_app`), drained by a real
  `ironflow-py worker` (concurrency 8) with and without `--prefetch-bytes`; reported is the most rows it
  held claimed at once and its peak resident memory (VmHWM). BENCH_PREFETCH_MB changes the size.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from datetime import UTC, datetime, timedelta

import psycopg
from psycopg import sql

from benchmarks._common import database_url, fresh_schema
from ironflow_py import PostgresStore
from ironflow_py.store import postgres_admin

SEED_OUTBOX = """
INSERT INTO {s}.outbox
    (workflow_type, workflow_id, effect_type, payload, status, available_at, created_at, completed_at, bucket)
SELECT 'bench', 'i' || g, 'bench.effect/1', '{{"n": 1}}', CASE WHEN g <= %(pending)s THEN 'pending' ELSE 'done' END,
       now() - interval '1 day', now() - interval '1 day', CASE WHEN g <= %(pending)s THEN NULL ELSE now() END,
       {s}.instance_bucket('bench', 'i' || g)
FROM generate_series(1, %(rows)s) AS g
"""

SEED_CLOSED = """
WITH i AS (
    INSERT INTO {s}.instances
        (workflow_type, workflow_id, status, last_seq, created_at, updated_at, outcome, closed_at, bucket)
    SELECT 'bench', 'c' || g, 'completed', 3, now() - interval '2 days', now() - interval '1 day',
           '{{"status": "completed", "result": null}}', now() - interval '1 day', {s}.instance_bucket('bench', 'c' || g)
    FROM generate_series(1, %(n)s) AS g RETURNING workflow_id, bucket
), e AS (
    INSERT INTO {s}.events (workflow_type, workflow_id, seq, event_type, payload, recorded_at, bucket)
    SELECT 'bench', i.workflow_id, s, 'bench.happened/1', '{{"n": 1}}', now() - interval '1 day', i.bucket
    FROM i CROSS JOIN generate_series(1, 3) AS s RETURNING 1
), k AS (
    INSERT INTO {s}.input_keys (workflow_type, workflow_id, input_key, status, recorded_at, bucket)
    SELECT 'bench', i.workflow_id, 'k', 'accepted', now() - interval '1 day', i.bucket FROM i RETURNING 1
), o AS (
    INSERT INTO {s}.outbox
        (workflow_type, workflow_id, effect_type, payload, status, available_at, created_at, completed_at, bucket)
    SELECT 'bench', i.workflow_id, 'bench.effect/1', '{{"n": 1}}', 'done', now() - interval '1 day',
           now() - interval '1 day', now() - interval '1 day', i.bucket FROM i RETURNING 1
)
INSERT INTO {s}.snapshots (workflow_type, workflow_id, seq, state_version, payload, created_at, bucket)
SELECT 'bench', i.workflow_id, 3, 1, '{{"n": 3}}', now() - interval '1 day', i.bucket FROM i
"""


def _seed(url: str, schema: str, query: str, **params: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL(query).format(s=sql.Identifier(schema)), params)
        conn.execute(sql.SQL("ANALYZE {}.outbox").format(sql.Identifier(schema)))


def _outbox_scan(url: str, schema: str, store: PostgresStore) -> str:
    """The plan nodes that read the outbox in the outbox_health query (Seq Scan or an index's name)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        plan = conn.execute(
            sql.SQL("EXPLAIN (FORMAT TEXT) {}").format(sql.SQL(store.q["outbox_health"])),
            {"now": datetime.now(UTC)},
        ).fetchall()
    nodes = [r[0].strip().lstrip("-> ").split("  ")[0] for r in plan if " on outbox" in r[0]]
    return "; ".join(sorted(set(nodes)))


def inspect_outbox(url: str, finished: int) -> tuple[float, str]:
    with fresh_schema(url, "bench_growth") as schema, PostgresStore.connect(url, schema=schema) as store:
        store.migrate()
        _seed(url, schema, SEED_OUTBOX, rows=finished + 50, pending=50)
        now = datetime.now(UTC)
        postgres_admin.outbox_health(store, now)  # warm the plan and the pool
        times = []
        for _ in range(21):
            started = time.perf_counter()
            postgres_admin.outbox_health(store, now)
            times.append((time.perf_counter() - started) * 1000)
        return statistics.median(times), _outbox_scan(url, schema, store)


def prune_throughput(url: str, instances: int, mode: str) -> tuple[float, int, float]:
    from ironflow_py import ClosedMode, RetentionPolicy

    policy = RetentionPolicy(
        done_effects=timedelta(hours=1), closed_instances=timedelta(hours=1), closed_mode=ClosedMode(mode)
    )
    with fresh_schema(url, "bench_prune") as schema, PostgresStore.connect(url, schema=schema) as store:
        store.migrate()
        _seed(url, schema, SEED_CLOSED, n=instances)
        started = time.perf_counter()
        report = store.pruner().prune_all(policy)
        elapsed = time.perf_counter() - started
        return elapsed, report.rows, report.rows / elapsed


def prefetch(url: str, size_mb: int, prefetch_bytes: int) -> tuple[int, float]:
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    from ironflow_py import WorkflowService
    from tests.bulky_app import Bulky, Ship

    root = Path(__file__).resolve().parents[1]
    with (
        fresh_schema(url, "bench_prefetch") as schema,
        PostgresStore.connect(url, schema=schema) as store,
        tempfile.TemporaryDirectory() as folder,
    ):
        store.migrate()
        WorkflowService(store, workflows=[Bulky]).execute(Ship("s", 10, size_mb * 1024 * 1024))
        env = {
            **os.environ,
            "IRONFLOW_DATABASE_URL": url,
            "IRONFLOW_SCHEMA": schema,
            "IRONFLOW_TEST_DIR": folder,
            "PYTHONPATH": str(root),
        }
        args = ["--app", "tests.bulky_app:app", "worker", "--prefetch-bytes", str(prefetch_bytes)]
        proc = subprocess.Popen(
            [sys.executable, "-m", "ironflow_py", "--log-level", "warning", *args], env=env, cwd=root
        )
        most, peak = 0, 0.0
        query = sql.SQL(
            "SELECT count(*) FILTER (WHERE locked_by IS NOT NULL AND status = 'pending'),"
            " count(*) FILTER (WHERE status = 'done') FROM {}.outbox"
        ).format(sql.Identifier(schema))
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                while not any(Path(folder).glob("started-*")):
                    time.sleep(0.02)
                (Path(folder) / "go").touch()
                while True:
                    row = conn.execute(query).fetchone()
                    assert row is not None
                    most = max(most, int(row[0]))
                    if row[1] == 10:
                        break
                    time.sleep(0.02)
            for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = int(line.split()[1]) / 1024
        finally:
            proc.terminate()
            proc.wait(60)
        return most, peak


def main(url: str) -> None:
    instances = int(os.environ.get("BENCH_RETENTION_INSTANCES", "20000"))
    print("\n## inspect outbox (outbox_health), 50 pending rows plus N finished")
    print(f"{'finished rows':>14} {'median ms':>10}  outbox scan")
    for finished in (2_000, 300_000):
        ms, scan = inspect_outbox(url, finished)
        print(f"{finished:>14,} {ms:>10.2f}  {scan}")
    try:
        import ironflow_py

        has_pruner = hasattr(ironflow_py, "RetentionPolicy")
    except ImportError:
        has_pruner = False
    if not has_pruner:
        print("\n(no pruner in this version)")
        return
    size_mb = int(os.environ.get("BENCH_PREFETCH_MB", "50"))
    print(f"\n## prefetch: 10 pending effects of {size_mb} MB, one worker (concurrency 8)")
    print(f"{'--prefetch-bytes':>18} {'most claimed':>13} {'peak RSS MB':>12}")
    for bound in (0, 64 * 1024 * 1024):
        most, peak = prefetch(url, size_mb, bound)
        print(f"{bound or 'none':>18} {most:>13} {peak:>12.0f}")
    print(f"\n## prune_all: {instances:,} closed instances (3 events, 1 key, 1 done effect, 1 snapshot each)")
    print(f"{'mode':>10} {'seconds':>8} {'rows':>9} {'rows/s':>9}")
    for mode in ("tombstone", "delete"):
        seconds, rows, rate = prune_throughput(url, instances, mode)
        print(f"{mode:>10} {seconds:>8.2f} {rows:>9,} {rate:>9,.0f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url")
    parser.add_argument("--instances", type=int)
    args = parser.parse_args()
    if args.instances:
        os.environ["BENCH_RETENTION_INSTANCES"] = str(args.instances)
    main(args.url or database_url())
