"""Retention on PostgreSQL: projection checkpoints bound pruning, one pruner at a time, archive mode, the CLI,
the worker's pruning thread, and status queries that read indexes instead of finished rows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg import sql

from ironflow_py import (
    ClosedMode,
    EffectRuntime,
    OutcomeStatus,
    PostgresStore,
    Projection,
    ProjectionWorker,
    RetentionPolicy,
    WorkflowService,
)
from tests.lifecycle_workflows import EndJob, JobWorkflow, StartJob

Conn = psycopg.Connection[tuple[Any, ...]]
NOW_PLUS_DAY = timedelta(days=1)
ALL_CLOSED = RetentionPolicy(done_effects=timedelta(0), closed_instances=timedelta(0))


def _close_jobs(service: WorkflowService, *jobs: str) -> None:
    for job in jobs:
        service.execute(StartJob(job))
        assert service.execute(EndJob(job, "completed")).accepted


def _later() -> datetime:
    return datetime.now(UTC) + NOW_PLUS_DAY


def _count(admin: Conn, schema: str, table: str, where: str = "true") -> int:
    query = sql.SQL("SELECT count(*) FROM {}.{} WHERE " + where).format(sql.Identifier(schema), sql.Identifier(table))
    row = admin.execute(query).fetchone()
    assert row is not None
    return int(row[0])


def _noop_projection(name: str) -> Projection:
    return Projection(name, lambda event, conn: None, workflow_types=["job"])


def test_events_a_projection_has_not_read_are_never_pruned(pg_store: PostgresStore, admin: Conn) -> None:
    """The slowest checkpoint bounds pruning: a projection behind holds its instances back until it reads them."""
    service = WorkflowService(pg_store, workflows=[JobWorkflow])
    fast, slow = _noop_projection("fast"), _noop_projection("slow")
    _close_jobs(service, "early")
    _drain(service, [fast, slow], pg_store, admin)
    _close_jobs(service, "late")
    _drain(service, [fast], pg_store, admin)  # only `fast` reads "late"
    report = pg_store.pruner(["fast", "slow"]).prune_all(ALL_CLOSED, _later())
    assert report.instances == 1
    assert not pg_store.events("job", "early") and pg_store.events("job", "late")  # `slow` has not read it
    _drain(service, [slow], pg_store, admin)
    assert pg_store.pruner(["fast", "slow"]).prune_all(ALL_CLOSED, _later()).instances == 1
    assert not pg_store.events("job", "late")
    # A projection named by the app that has never run (no checkpoint row) holds everything.
    _close_jobs(service, "third")
    _drain(service, [fast, slow], pg_store, admin)
    assert pg_store.pruner(["fast", "slow", "new"]).prune_all(ALL_CLOSED, _later()).instances == 0
    assert pg_store.events("job", "third")


def test_a_single_projection_name_is_one_name_not_its_characters(pg_store: PostgresStore, admin: Conn) -> None:
    """`pruner("fast")` is bound by projection "fast" (read as "f", "a", "s", "t", none of which has a
    checkpoint, it would hold every instance back), and a narrowing string is one workflow type too."""
    service = WorkflowService(pg_store, workflows=[JobWorkflow])
    fast = Projection("fast", lambda event, conn: None, workflow_types="job")
    assert fast.workflow_types == frozenset({"job"})
    _close_jobs(service, "j1")
    _drain(service, [fast], pg_store, admin)
    assert pg_store.pruner("fast").prune_all(ALL_CLOSED, _later()).instances == 1
    assert pg_store.pruner("fast").projections == ("fast",)


def _drain(
    service: WorkflowService, projections: list[Projection], store: PostgresStore, admin: Conn, timeout: float = 30
) -> None:
    """Run a worker of `projections` until each has read the newest event (the cluster-wide horizon may lag)."""
    row = admin.execute(sql.SQL("SELECT max(position) FROM {}.events").format(sql.Identifier(store.schema))).fetchone()
    assert row is not None
    position = int(row[0])
    worker = ProjectionWorker(service, projections)
    try:
        deadline = time.monotonic() + timeout
        while not all(worker.control.caught_up(p.name, position) for p in projections):
            assert time.monotonic() < deadline, f"{[p.name for p in projections]} did not reach {position}"
            if worker.run_until_idle() == 0:
                time.sleep(0.01)  # waiting out another session's transaction (the horizon), not ordering anything
    finally:
        worker.close()


def test_one_pruner_at_a_time(pg_store: PostgresStore, admin: Conn) -> None:
    """While one pruner's batch holds the prune lock, another reports busy and removes nothing."""
    service = WorkflowService(pg_store, workflows=[JobWorkflow])
    _close_jobs(service, "j1")
    with admin.transaction():
        admin.execute(pg_store.q["prune_lock"], {"schema": pg_store.schema})  # another pruner, mid-batch
        report = pg_store.pruner().prune_all(ALL_CLOSED, _later())
        assert report.busy and report.rows == 0 and report.batches == 0
        assert pg_store.events("job", "j1")
    assert pg_store.pruner().prune_all(ALL_CLOSED, _later()).instances == 1  # the lock went with its transaction


def test_archive_mode_moves_events_and_keys_to_the_archive_tables(pg_store: PostgresStore, admin: Conn) -> None:
    service = WorkflowService(pg_store, workflows=[JobWorkflow])
    service.execute(StartJob("j1"))
    service.execute(EndJob("j1", "completed", 3, key="end"))
    before = [(e.seq, e.type_name, e.data) for e in pg_store.events("job", "j1")]
    policy = RetentionPolicy(closed_instances=timedelta(0), closed_mode=ClosedMode.ARCHIVE)
    assert pg_store.pruner().prune_all(policy, _later()).instances == 1
    s = sql.Identifier(pg_store.schema)
    archived = admin.execute(
        sql.SQL("SELECT seq, event_type, payload FROM {}.events_archive WHERE workflow_id = 'j1' ORDER BY seq").format(
            s
        )
    ).fetchall()
    assert [tuple(r) for r in archived] == before
    keys = admin.execute(sql.SQL("SELECT input_key, status FROM {}.input_keys_archive").format(s)).fetchall()
    assert [tuple(r) for r in keys] == [("end", "accepted")]
    assert not pg_store.events("job", "j1")
    assert service.execute(EndJob("j1", "failed")).status is OutcomeStatus.ALREADY_COMPLETED


def test_the_prune_command_prunes_by_its_options(pg_url: str, pg_store: PostgresStore, admin: Conn) -> None:
    service = WorkflowService(pg_store, workflows=[JobWorkflow])
    _close_jobs(service, "j1", "j2")
    env = {**os.environ, "IRONFLOW_DATABASE_URL": pg_url, "IRONFLOW_SCHEMA": pg_store.schema}

    def prune(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "ironflow_py", "prune", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    kept = prune("--closed-instances", "1d")
    assert kept.returncode == 0, kept.stderr
    assert "pruned 0 rows" in kept.stdout
    done = prune("--json", "--closed-instances", "0s", "--mode", "delete", "--batch-size", "1")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert (data["instances"], data["events"], data["batches"]) == (2, 4, 3)
    assert _count(admin, pg_store.schema, "instances") == 0
    bad = prune("--closed-instances", "soon")
    assert bad.returncode == 2 and "is not a duration" in bad.stderr


def test_the_worker_prunes_by_its_retention_policy(pg_store: PostgresStore, admin: Conn, tmp_path: Any) -> None:
    service = WorkflowService(pg_store, workflows=[JobWorkflow])
    _close_jobs(service, "j1")
    policy = RetentionPolicy(closed_instances=timedelta(0), interval=timedelta(milliseconds=50))
    runtime = EffectRuntime(service, None, handle_signals=False, listen=False, retention=policy)
    thread = threading.Thread(target=runtime.run)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while pg_store.events("job", "j1"):
            assert time.monotonic() < deadline, "the worker did not prune"
            time.sleep(0.02)
        _close_jobs(service, "j2")  # pruned by a later round of the same thread
        while pg_store.events("job", "j2"):
            assert time.monotonic() < deadline, "the worker did not prune again"
            time.sleep(0.02)
    finally:
        runtime.stop()
        thread.join(30)
    assert runtime.pruning is not None and runtime.pruning.rounds >= 2
    assert service.execute(EndJob("j2", "failed")).status is OutcomeStatus.ALREADY_COMPLETED


# -- status queries read indexes ------------------------------------------------------------------------

FINISHED = 300_000


@pytest.fixture
def big_outbox(pg_store: PostgresStore, admin: Conn) -> PostgresStore:
    """300,000 done outbox rows (what a busy month leaves), 50 pending and 5 dead, analyzed."""
    s = sql.Identifier(pg_store.schema)
    admin.execute(
        sql.SQL(
            "INSERT INTO {0}.outbox (workflow_type, workflow_id, effect_type, payload, status, available_at,"
            " created_at, completed_at, bucket)"
            " SELECT 'job', 'j' || g, 'job.work/1', '{{\"job_id\": \"x\", \"n\": 1}}',"
            " CASE WHEN g <= 50 THEN 'pending' WHEN g <= 55 THEN 'dead' ELSE 'done' END,"
            " now() - interval '1 hour', now() - interval '1 hour',"
            " CASE WHEN g <= 50 THEN NULL ELSE now() END, {0}.instance_bucket('job', 'j' || g)"
            " FROM generate_series(1, %s) AS g"
        ).format(s),
        (FINISHED + 55,),
    )
    admin.execute(sql.SQL("ANALYZE {}.outbox").format(s))
    admin.execute(sql.SQL("ANALYZE {}.instances").format(s))
    return pg_store


def _explain(admin: Conn, store: PostgresStore, name: str, params: dict[str, Any]) -> str:
    """The statement's EXPLAIN ANALYZE plan; it really runs, inside a transaction that is rolled back."""
    plan: list[str] = []
    with admin.transaction(force_rollback=True):
        for row in admin.execute("EXPLAIN (ANALYZE, COSTS OFF) " + store.q[name], params):
            plan.append(row[0])
    return "\n".join(plan)


INDEXED_QUERIES: list[tuple[str, dict[str, Any], str]] = [
    ("outbox_health", {"now": datetime.now(UTC)}, "outbox_due"),
    ("outbox_in_flight_by_worker", {"now": datetime.now(UTC)}, "outbox_due"),
    ("count_dead_letters", {}, "outbox_dead"),
    ("dead_letters", {"after_id": 0, "limit": 50}, "outbox_dead"),
    ("next_due", {"now": None}, "outbox_due"),
    (
        "claim_effects",
        {
            "now": None,
            "lease": timedelta(seconds=30),
            "limit": 10,
            "worker": "w",
            "max_bytes": 1 << 20,
            "always_one": True,
            "types": None,
        },
        "outbox_due",
    ),
    ("prune_done_effects", {"now": None, "keep": timedelta(days=1), "limit": 500}, "outbox_finished"),
]


def test_status_and_claim_queries_read_an_index_not_the_finished_rows(big_outbox: PostgresStore, admin: Conn) -> None:
    """On 300,000 done rows, each query reaches the outbox through a partial index: no sequential scan."""
    for query, params, index in INDEXED_QUERIES:
        plan = _explain(admin, big_outbox, query, params)
        assert "Seq Scan on outbox" not in plan, f"{query}:\n{plan}"
        assert index in plan, f"{query}:\n{plan}"
