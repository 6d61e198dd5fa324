"""The projection cursor on real PostgreSQL: late commits applied once and in order; gaps stop the worker."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from ironflow_py import PostgresStore, ProjectionGap, ProjectionWorker, WorkflowService
from tests.projection_apps import (
    append,
    applied,
    checkpoint,
    counter_projection,
    drain,
    run_until_raises,
    totals,
)
from tests.workflows import Add

Conn = psycopg.Connection[tuple[Any, ...]]


@pytest.fixture
def tx_a(pg_url: str) -> Iterator[Conn]:
    with psycopg.connect(pg_url) as conn:
        yield conn


@pytest.fixture
def tx_b(pg_url: str) -> Iterator[Conn]:
    with psycopg.connect(pg_url) as conn:
        yield conn


def test_a_late_commit_with_a_lower_position_is_applied_exactly_once(
    worker: ProjectionWorker, tx_a: Conn, tx_b: Conn, admin: Conn
) -> None:
    schema = worker.store.schema
    pos_a = append(tx_a, schema, "x", 1)  # stays open
    pos_b = append(tx_b, schema, "y", 1)
    tx_b.commit()
    assert pos_a < pos_b
    # B is committed but A (older) is open: the cursor waits at the horizon rather than pass A by.
    worker.run_until_idle()
    assert applied(admin, schema) == []
    assert checkpoint(admin, schema) == 0
    tx_a.commit()
    drain(worker, pos_b)
    assert worker.run_until_idle() == 0
    # Transaction order: A took its xid (at its first write) before B.
    assert applied(admin, schema) == [("x", 1, pos_a), ("y", 1, pos_b)]
    assert totals(admin, schema) == {"x": (1, 1, 1), "y": (1, 1, 1)}


@pytest.mark.parametrize("batch_size", [1, 1000])
def test_a_transaction_appending_around_a_committed_one_is_applied_in_order_once(
    service: WorkflowService, tx_a: Conn, tx_b: Conn, admin: Conn, batch_size: int
) -> None:
    """A appends x#1, B appends y#1 and commits, A appends x#2: positions x1 < y1 < x2. A position-only
    cursor that read y1 would then skip x1 (or, reading x2 first, skip y1); batches of one also resume
    inside A's transaction."""
    schema = service.store.schema  # type: ignore[attr-defined]
    worker = ProjectionWorker(service, [counter_projection(schema)], batch_size=batch_size)
    try:
        x1 = append(tx_a, schema, "x", 1)
        y1 = append(tx_b, schema, "y", 1)
        tx_b.commit()
        x2 = append(tx_a, schema, "x", 2)
        assert x1 < y1 < x2
        worker.run_until_idle()
        assert applied(admin, schema) == []
        tx_a.commit()
        drain(worker, y1)
        assert worker.run_until_idle() == 0
        assert applied(admin, schema) == [("x", 1, x1), ("x", 2, x2), ("y", 1, y1)]
        assert totals(admin, schema) == {"x": (2, 2, 2), "y": (1, 1, 1)}
    finally:
        worker.close()


def test_a_gap_in_an_instance_stops_the_worker_and_applies_nothing(
    service: WorkflowService, worker: ProjectionWorker, admin: Conn
) -> None:
    schema = worker.store.schema
    first = service.execute(Add("x", 1)).events[0].position
    drain(worker, first)
    before = checkpoint(admin, schema)
    # A writer that bypassed the Decider left out sequence 2. A fresh worker (empty cache) must still know,
    # from the events behind the checkpoint, that 1 was the last applied.
    append(admin, schema, "x", 3)
    worker.close()
    fresh = ProjectionWorker(service, [counter_projection(schema)])
    try:
        with pytest.raises(ProjectionGap, match=r"instance 'x': expected sequence 2, got 3") as info:
            run_until_raises(fresh)
    finally:
        fresh.close()
    assert (info.value.workflow_type, info.value.expected_seq, info.value.seq) == ("counter", 2, 3)
    assert checkpoint(admin, schema) == before
    assert applied(admin, schema) == [("x", 1, first)]


@pytest.mark.parametrize("fresh", [False, True], ids=["same-worker", "fresh-worker"])
def test_an_instance_reordered_across_transactions_stops_the_worker(
    service: WorkflowService, worker: ProjectionWorker, tx_a: Conn, tx_b: Conn, admin: Conn, fresh: bool
) -> None:
    """Writers that skip the instance lock can commit x#3 in an older transaction than x#2; the cursor then
    meets 3 before 2, and the guard refuses to apply it, with or without the worker's cache."""
    schema = worker.store.schema
    first = service.execute(Add("x", 1)).events[0].position
    drain(worker, first)
    tx_a.execute(
        sql.SQL(
            "INSERT INTO {0}.events (workflow_type, workflow_id, seq, event_type, payload, "
            "recorded_at, bucket) VALUES ('counter', 'x', 3, 'counter.added/1', "
            "'{{\"amount\": 1, \"total\": 3}}', now(), {0}.instance_bucket('counter', 'x'))"
        ).format(sql.Identifier(schema))
    )
    tx_b.execute(
        sql.SQL(
            "INSERT INTO {0}.events (workflow_type, workflow_id, seq, event_type, payload, "
            "recorded_at, bucket) VALUES ('counter', 'x', 2, 'counter.added/1', "
            "'{{\"amount\": 1, \"total\": 2}}', now(), {0}.instance_bucket('counter', 'x'))"
        ).format(sql.Identifier(schema))
    )
    tx_b.commit()
    tx_a.commit()
    if fresh:
        worker.close()
        worker = ProjectionWorker(service, [counter_projection(schema)])
    try:
        with pytest.raises(ProjectionGap, match=r"expected sequence 2, got 3"):
            run_until_raises(worker)
    finally:
        worker.close()
    assert checkpoint(admin, schema) == first
    assert applied(admin, schema) == [("x", 1, first)]


def test_the_cursor_is_served_in_index_order(pg_store: PostgresStore, admin: Conn) -> None:
    """No sort node: ordering by the text form of tx_id would misorder xids of different lengths."""
    admin.execute("SET enable_seqscan = off")
    plan = admin.execute(
        "EXPLAIN " + pg_store.q["projection_read"], {"tx_id": "0", "position": 0, "limit": 10}
    ).fetchall()
    admin.execute("RESET enable_seqscan")
    text = "\n".join(r[0] for r in plan)
    assert "events_by_tx" in text and "Sort" not in text, text
