"""The effect worker's prefetch is bounded by payload bytes as well as rows (issue #11 item 5), measured.

Six pending effects of 16 MB each. A real `ironflow-py worker` (concurrency 4, batch size 100) with a
20 MB byte bound claims one of them while its handler runs, and none more until it finishes; without the
bound it claims all six at once. The worker's peak resident memory (VmHWM) shows what that costs.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from ironflow_py import PostgresStore, WorkflowService
from tests.bulky_app import Bulky, Ship

ROOT = Path(__file__).resolve().parents[2]
Conn = psycopg.Connection[tuple[Any, ...]]
SIZE = 16 * 1024 * 1024
COUNT = 6


def _wait(predicate: Any, what: str, proc: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert proc.poll() is None, f"the worker exited while waiting for {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)  # polling a condition, not ordering anything


def _claimed(admin: Conn, schema: str) -> int:
    query = sql.SQL("SELECT count(*) FROM {}.outbox WHERE status = 'pending' AND locked_by IS NOT NULL")
    row = admin.execute(query.format(sql.Identifier(schema))).fetchone()
    assert row is not None
    return int(row[0])


def _done(admin: Conn, schema: str) -> int:
    query = sql.SQL("SELECT count(*) FROM {}.outbox WHERE status = 'done'")
    row = admin.execute(query.format(sql.Identifier(schema))).fetchone()
    assert row is not None
    return int(row[0])


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def _run(pg_url: str, store: PostgresStore, admin: Conn, folder: Path, prefetch_bytes: int) -> tuple[int, float]:
    """Queue the effects, run a worker until all are done; returns (most claimed at once, peak RSS in MB)."""
    folder.mkdir()
    WorkflowService(store, workflows=[Bulky]).execute(Ship(folder.name, COUNT, SIZE))
    env = {
        **os.environ,
        "IRONFLOW_DATABASE_URL": pg_url,
        "IRONFLOW_SCHEMA": store.schema,
        "IRONFLOW_TEST_DIR": str(folder),
        "PYTHONPATH": str(ROOT),
    }
    args = ["--app", "tests.bulky_app:app", "worker", "--concurrency", "4", "--prefetch-bytes", str(prefetch_bytes)]
    with (folder / "worker.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ironflow_py", "--log-level", "warning", *args],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait(lambda: any(folder.glob("started-*")), "a handler to start", proc)
        most = _claimed(admin, store.schema)
        (folder / "go").touch()
        _wait(lambda: _done(admin, store.schema) == COUNT, "every effect to finish", proc)
        peak = _peak_rss_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(60)
    admin.execute(sql.SQL("DELETE FROM {}.outbox").format(sql.Identifier(store.schema)))
    return most, peak


def test_the_worker_holds_at_most_its_byte_bound_of_large_payloads(
    pg_url: str, pg_store: PostgresStore, admin: Conn, tmp_path: Path
) -> None:
    bounded, bounded_peak = _run(pg_url, pg_store, admin, tmp_path / "bounded", 20 * 1024 * 1024)
    unbounded, unbounded_peak = _run(pg_url, pg_store, admin, tmp_path / "unbounded", 0)
    print(f"peak RSS: {bounded_peak:.0f} MB with a 20 MB byte bound, {unbounded_peak:.0f} MB without")
    assert bounded == 1  # a 16 MB payload running; the next one would pass 20 MB
    assert unbounded == COUNT  # rows alone: all six claimed at once
    assert unbounded_peak - bounded_peak > 2 * SIZE / (1024 * 1024)
