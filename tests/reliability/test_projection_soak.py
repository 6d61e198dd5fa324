"""Soak: 4 threads decide on 50 instances while two `projections run` processes share one projection and
the active one is killed; the read model must equal a fold of the events table, each instance applied in
sequence order and nothing twice. SIGTERM then stops the survivor cleanly."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from ironflow_py import PostgresStore, ProjectionControl, WorkflowService
from tests.projection_apps import NAME, create_read_model, lease
from tests.workflows import Add, Counter, Finish

Conn = psycopg.Connection[tuple[Any, ...]]
ROOT = Path(__file__).resolve().parents[2]
INSTANCES = 50
DECISIONS_PER_THREAD = 300
KILL_AFTER = 200


def start_worker(pg_url: str, schema: str) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "IRONFLOW_DATABASE_URL": pg_url,
        "IRONFLOW_SCHEMA": schema,
        "PYTHONPATH": str(ROOT),
    }
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ironflow_py",
            "--app",
            "tests.projection_apps:counters",
            "projections",
            "run",
            NAME,
            "--poll-interval",
            "0.5",
            "--batch-size",
            "50",
            "--lease",
            "3",
            "--standby-interval",
            "0.2",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def leader(
    admin: Conn, schema: str, procs: list[subprocess.Popen[str]], timeout: float = 30.0
) -> subprocess.Popen[str]:
    """The process holding the projection's live lease (waits for one to take it). The holder is
    "host:pid token"."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = lease(admin, schema)
        if row is not None and row[2]:
            worker_id = row[0].split(" ")[0]
            for proc in procs:
                if worker_id.endswith(f":{proc.pid}") and proc.poll() is None:
                    return proc
        admin.execute("SELECT pg_sleep(0.05)")  # waiting for a process to start, not ordering anything
    raise AssertionError("no worker took the lead")


@pytest.mark.slow
def test_projection_survives_a_killed_active_worker(pg_url: str, pg_store: PostgresStore, admin: Conn) -> None:
    schema = pg_store.schema
    create_read_model(admin, schema)
    service = WorkflowService(pg_store, workflows=[Counter])
    procs = [start_worker(pg_url, schema), start_worker(pg_url, schema)]
    try:
        active = leader(admin, schema, procs)
        done = 0
        count_lock = threading.Lock()
        kill_now = threading.Event()

        def decide(thread: int) -> None:
            nonlocal done
            rng = random.Random(thread)
            for _ in range(DECISIONS_PER_THREAD):
                service.execute(Add(f"c{rng.randrange(INSTANCES)}", rng.randrange(1, 100)))
                with count_lock:
                    done += 1
                    if done == KILL_AFTER:
                        kill_now.set()

        with ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(decide, t) for t in range(4)]
            assert kill_now.wait(120)
            # Kill it once it has committed work, while the writers are still going.
            first = admin.execute(sql.SQL("SELECT min(position) FROM {}.events").format(sql.Identifier(schema)))
            first_row = first.fetchone()
            assert first_row is not None
            assert ProjectionControl(pg_store).wait_until_caught_up(NAME, first_row[0], 30)
            active.send_signal(signal.SIGKILL)
            for f in futures:
                f.result()
        service.execute(Finish("c0"))
        assert active.wait(10) == -signal.SIGKILL
        survivor = next(p for p in procs if p is not active)
        assert leader(admin, schema, [survivor]) is survivor

        last = admin.execute(sql.SQL("SELECT max(position) FROM {}.events").format(sql.Identifier(schema)))
        row = last.fetchone()
        assert row is not None
        assert ProjectionControl(pg_store).wait_until_caught_up(NAME, row[0], 60), "survivor did not catch up"

        check_read_model(admin, schema)

        survivor.send_signal(signal.SIGTERM)
        assert survivor.wait(20) == 0, survivor.stderr.read() if survivor.stderr else ""
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait(10)
            for stream in (p.stdout, p.stderr):
                if stream is not None:
                    stream.close()


def check_read_model(admin: Conn, schema: str) -> None:
    s = sql.Identifier(schema)
    events = admin.execute(
        sql.SQL("SELECT workflow_id, seq, event_type, payload FROM {}.events ORDER BY workflow_id, seq").format(s)
    ).fetchall()
    expected_totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    expected_seqs: dict[str, list[int]] = defaultdict(list)
    for wid, seq, event_type, payload in events:
        expected_seqs[wid].append(seq)
        if event_type == "counter.added/1":
            t = expected_totals[wid]
            t[0] += payload["amount"]
            t[1] += 1
            t[2] = seq
    assert len(events) == 4 * DECISIONS_PER_THREAD + 1
    applied_seqs: dict[str, list[int]] = defaultdict(list)
    for wid, seq in admin.execute(sql.SQL("SELECT workflow_id, seq FROM {}.rm_applied ORDER BY id").format(s)):
        applied_seqs[wid].append(seq)
    # In handling order, each instance's sequences are 1, 2, 3 ...: in order, no gap, none twice.
    assert applied_seqs == expected_seqs
    for seqs in applied_seqs.values():
        assert seqs == list(range(1, len(seqs) + 1))
    totals = {
        r[0]: [r[1], r[2], r[3]]
        for r in admin.execute(sql.SQL("SELECT workflow_id, total, adds, last_seq FROM {}.rm_totals").format(s))
    }
    assert totals == dict(expected_totals)
