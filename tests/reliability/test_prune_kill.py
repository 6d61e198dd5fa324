"""A pruner killed with SIGKILL in the middle of a batch leaves a consistent database, and a rerun finishes.

The test holds a row lock on one finished effect of an instance the batch prunes, so the real
`ironflow-py prune` process stops inside its batch transaction: its timers, keys, snapshots and events
statements have run, the finished-effects statement waits on the lock (seen in pg_stat_activity). Then
the process is killed; its transaction never commits. Every instance must still be whole; a rerun must
tombstone every one of them, each completely.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from ironflow_py import PostgresStore, WorkflowService
from ironflow_py.clock import store_time
from tests.lifecycle_workflows import EndJob, JobWorkflow, StartJob

ROOT = Path(__file__).resolve().parents[2]
Conn = psycopg.Connection[tuple[Any, ...]]
JOBS = 30


def _wait(predicate: Any, what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)  # polling a condition, not ordering anything
    return value


def _consistency(admin: Conn, schema: str) -> tuple[int, int]:
    """Check every instance is whole or completely pruned; returns (whole, tombstoned)."""
    s = sql.Identifier(schema)
    rows = admin.execute(
        sql.SQL(
            "SELECT i.workflow_id, i.last_seq, i.pruned_at IS NOT NULL, "
            + ", ".join(
                f"(SELECT count(*) FROM {{s}}.{table} x"
                " WHERE x.workflow_type = i.workflow_type AND x.workflow_id = i.workflow_id)"
                for table in ("events", "input_keys", "snapshots", "timers", "outbox")
            )
            + " FROM {s}.instances i ORDER BY i.workflow_id"
        ).format(s=s)
    ).fetchall()
    assert len(rows) == JOBS
    whole = tombstoned = 0
    for workflow_id, last_seq, pruned, events, keys, snapshots, timers, effects in rows:
        if pruned:
            assert (events, keys, snapshots, timers, effects) == (0, 0, 0, 0, 0), workflow_id
            tombstoned += 1
        else:
            assert (events, keys, timers, effects) == (last_seq, 1, 1, 1), workflow_id
            whole += 1
    return whole, tombstoned


def test_a_pruner_killed_mid_batch_leaves_every_instance_whole_and_a_rerun_finishes(
    pg_url: str, pg_store: PostgresStore, admin: Conn, tmp_path: Path
) -> None:
    service = WorkflowService(pg_store, workflows=[JobWorkflow])
    outbox = pg_store.outbox("w")
    for n in range(JOBS):
        job = f"j{n:02}"
        service.execute(StartJob(job, timer_in=3600, work=1))
        outbox.complete_effects(outbox.claim_effects(store_time(service.clock), timedelta(minutes=1), 10), None)
        assert service.execute(EndJob(job, "completed", key=f"end-{job}")).accepted
    assert _consistency(admin, pg_store.schema) == (JOBS, 0)
    s = sql.Identifier(pg_store.schema)
    env = {**os.environ, "IRONFLOW_DATABASE_URL": pg_url, "IRONFLOW_SCHEMA": pg_store.schema, "PYTHONPATH": str(ROOT)}
    args = [sys.executable, "-m", "ironflow_py", "prune", "--closed-instances", "0s", "--done-effects", "never"]
    blocker = psycopg.connect(pg_url)
    try:
        # Hold the last instance's finished effect: the batch (all 30 instances) waits on it mid-transaction.
        blocker.execute(sql.SQL("SELECT id FROM {}.outbox WHERE workflow_id = %s FOR UPDATE").format(s), ("j29",))
        with (tmp_path / "prune.log").open("wb") as log:
            proc = subprocess.Popen(args, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        try:
            pid = _wait(lambda: _waiting_pruner(admin, pg_store.schema), "the pruner to wait inside its batch")
            # Mid-batch: its events statement already ran (it holds their row locks), nothing is committed.
            assert _locks_on_events(admin, pid) > 0
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(30)
        blocker.rollback()  # the orphaned backend runs on, finds its client gone and rolls back
        _wait(lambda: not _backend_alive(admin, pid), "the killed pruner's backend to end")
    finally:
        blocker.close()
    assert _consistency(admin, pg_store.schema) == (JOBS, 0)  # nothing half-pruned
    rerun = subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert rerun.returncode == 0, rerun.stderr
    assert _consistency(admin, pg_store.schema) == (0, JOBS)
    assert service.execute(EndJob("j00", "failed")).status.value == "already_completed"


def _waiting_pruner(admin: Conn, schema: str) -> int | None:
    row = admin.execute(
        "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE %s AND query LIKE %s",
        ("%DELETE FROM%outbox x USING unnest%", f"%{schema}%"),
    ).fetchone()
    return None if row is None else int(row[0])


def _locks_on_events(admin: Conn, pid: int) -> int:
    row = admin.execute(
        "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation"
        " WHERE l.pid = %s AND c.relname = 'events' AND l.mode = 'RowExclusiveLock'",
        (pid,),
    ).fetchone()
    assert row is not None
    return int(row[0])


def _backend_alive(admin: Conn, pid: int) -> bool:
    return admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone() is not None
