"""Scaling by processes: `python -m benchmarks scaling`.

The engine is bound by client CPU (design/decider.md), so it scales by processes. This runs the counter
workload (`execute(Add(id))` over 10,000 seeded instances: one event, one outbox row) from 1, 2 and 4
processes with 4 threads each, all started together, and next to it, in the same sitting, pgbench running
the same transaction as a custom script (BEGIN, the advisory lock, read the instance's events, insert one
event, insert one outbox row, COMMIT; prepared statements, 16 clients on 4 threads): what the server does
when the client costs next to nothing. It prints the rates and two ratios, 2 processes over 1 and
4 processes over pgbench. BENCH_SCALING_SECONDS (default 10) is each run's length.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from typing import Any

import psycopg
from psycopg import conninfo, sql

from benchmarks._common import env_int, load_average, print_table, quiet_logging

INSTANCES = 10_000
THREADS = 4
SPAWN = mp.get_context("spawn")


def _process(url: str, schema: str, seconds: float, barrier: Any, counts: Any, slot: int) -> None:
    """One process: THREADS threads executing commands until `seconds` after the common start."""
    from ironflow_py import PostgresStore, WorkflowService
    from tests.workflows import Add, Counter

    quiet_logging()
    with PostgresStore.connect(url, schema=schema, max_size=THREADS) as store:
        service = WorkflowService(store, workflows=[Counter])
        service.execute(Add(f"i{slot}"))  # warm: connections, prepared statements
        done = [0] * THREADS
        barrier.wait()
        stop_at = time.monotonic() + seconds

        def body(t: int) -> None:
            i = slot * 7919 + t * 104_729
            while time.monotonic() < stop_at:
                service.execute(Add(f"i{i % INSTANCES}"))
                i += 1
                done[t] += 1

        threads = [threading.Thread(target=body, args=(t,)) for t in range(THREADS)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        counts[slot] = sum(done)


def engine_rate(url: str, schema: str, processes: int, seconds: float) -> float:
    barrier = SPAWN.Barrier(processes + 1)
    counts = SPAWN.Array("q", processes)
    procs = [SPAWN.Process(target=_process, args=(url, schema, seconds, barrier, counts, k)) for k in range(processes)]
    for p in procs:
        p.start()
    barrier.wait()
    started = time.monotonic()
    for p in procs:
        p.join()
    elapsed = max(seconds, time.monotonic() - started)
    return float(sum(counts[:])) / elapsed


SCRIPT = """\\set id random(0, {last})
BEGIN;
SELECT pg_advisory_xact_lock({s}.instance_lock_key('counter', 'i' || :id));
SELECT coalesce(max(seq), 0) AS prior, count(*) AS n FROM (SELECT seq, payload FROM {s}.events
  WHERE workflow_type = 'counter' AND workflow_id = 'i' || :id ORDER BY seq) AS e \\gset
INSERT INTO {s}.events (workflow_type, workflow_id, seq, event_type, payload, recorded_at, bucket)
  VALUES ('counter', 'i' || :id, :prior + 1, 'counter.added/1', '{{"amount": 1, "total": 1}}', now(),
          {s}.instance_bucket('counter', 'i' || :id));
INSERT INTO {s}.outbox (workflow_type, workflow_id, effect_type, payload, available_at, created_at, bucket)
  VALUES ('counter', 'i' || :id, 'counter.notify/1', '{{"counter_id": "x", "total": 1, "note": null}}', now(), now(),
          {s}.instance_bucket('counter', 'i' || :id));
END;
"""


def pgbench_rate(url: str, schema: str, seconds: float) -> tuple[float | None, str]:
    """pgbench's tps for the same transaction, or None and why it did not run."""
    binary = shutil.which("pgbench")
    if binary is None:
        return None, "pgbench is not installed (apt-get install postgresql-client)"
    info = conninfo.conninfo_to_dict(url)
    quoted = sql.Identifier(schema).as_string()
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
        f.write(SCRIPT.format(s=quoted, last=INSTANCES - 1))
    env = {**os.environ}
    if info.get("password"):
        env["PGPASSWORD"] = str(info["password"])
    args = [binary, "-n", "-M", "prepared", "-c", "16", "-j", "4", "-T", str(int(seconds)), "-f", f.name]
    for flag, key in (("-h", "host"), ("-p", "port"), ("-U", "user")):
        if info.get(key):
            args += [flag, str(info[key])]
    args.append(str(info.get("dbname", "postgres")))
    try:
        out = subprocess.run(args, env=env, capture_output=True, text=True, check=False, timeout=seconds * 4 + 60)
    finally:
        os.unlink(f.name)
    found = re.search(r"tps = ([\d.]+)", out.stdout)
    if out.returncode != 0 or found is None:
        return None, f"pgbench failed: {(out.stderr.strip().splitlines() or ['no output'])[-1][:100]}"
    return float(found[1]), ""


def main(url: str) -> None:
    from benchmarks.decisions import seed
    from ironflow_py import PostgresStore

    quiet_logging()
    seconds = float(env_int("BENCH_SCALING_SECONDS", 10))
    schema = f"bench_scale_{uuid.uuid4().hex[:8]}"
    loads = [load_average()]
    try:
        with PostgresStore.connect(url, schema=schema, max_size=1) as store:
            store.migrate()
        seed(url, schema, INSTANCES, 1)
        rates = {k: engine_rate(url, schema, k, seconds) for k in (1, 2, 4)}
        loads.append(load_average())
        bench, why = pgbench_rate(url, schema, seconds)
        loads.append(load_average())
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
    rows = [
        [f"execute, {k} process(es) x {THREADS} threads", f"{r:,.0f}", f"{r / rates[1]:.2f}"] for k, r in rates.items()
    ]
    rows.append(["pgbench, same transaction, 16 clients", f"{bench:,.0f}" if bench else why, "-"])
    print_table(
        f"decisions/s by processes ({seconds:.0f} s each, {os.cpu_count()} CPUs shared with the server)",
        ["runner", "decisions/s", "vs 1 process"],
        rows,
    )
    if bench:
        print(f"# 2 processes / 1 process: {rates[2] / rates[1]:.2f}; 4 processes / pgbench: {rates[4] / bench:.2f}")
    print("# " + " | ".join(loads))
