"""Batch projections: one `handle_batch(conn, events)` call per batch, the same read model and the same failure
rules as a per-event handler (a failing batch is narrowed to the one event at fault)."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg import sql

from ironflow_py import (
    ConfigurationError,
    OnError,
    Projection,
    ProjectionHandlerFailed,
    ProjectionRetry,
    ProjectionWorker,
    RecordedEvent,
    WorkflowService,
)
from tests.projection_apps import (
    NAME,
    applied,
    checkpoint,
    counter_batch_projection,
    counter_projection,
    drain,
    run_until_raises,
    totals,
    wait_for_horizon,
)
from tests.workflows import Add

Conn = psycopg.Connection[tuple[Any, ...]]


def _write(service: WorkflowService, n: int) -> list[int]:
    """n decisions over 4 counters, interleaved; their events' positions."""
    return [service.execute(Add(f"c{i % 4}", i + 1)).events[0].position for i in range(n)]


def test_a_batch_handler_is_called_once_per_batch_and_builds_the_same_read_model(
    service: WorkflowService, admin: Conn
) -> None:
    schema = service.store.schema  # type: ignore[attr-defined]
    positions = _write(service, 25)
    wait_for_horizon(admin, schema)  # so every batch is full
    calls: list[int] = []
    worker = ProjectionWorker(service, [counter_batch_projection(schema, calls=calls)], batch_size=10)
    try:
        drain(worker, positions[-1])
    finally:
        worker.close()
    assert calls == [10, 10, 5]
    batched = (totals(admin, schema), applied(admin, schema))
    s = sql.Identifier(schema)
    admin.execute(sql.SQL("TRUNCATE {}.rm_totals, {}.rm_applied").format(s, s))
    admin.execute(sql.SQL("UPDATE {}.projection_checkpoints SET tx_id = '0', position = 0").format(s))
    one_by_one = ProjectionWorker(service, [counter_projection(schema)], batch_size=10)
    try:
        drain(one_by_one, positions[-1])
    finally:
        one_by_one.close()
    assert batched == (totals(admin, schema), applied(admin, schema))
    assert [r[0] for r in batched[1]][:4] == ["c0", "c1", "c2", "c3"]  # handed over in stream order


def test_a_failing_batch_is_narrowed_and_only_the_event_at_fault_is_dead_lettered(
    service: WorkflowService, admin: Conn
) -> None:
    schema = service.store.schema  # type: ignore[attr-defined]
    positions = _write(service, 12)  # c2's second event (i = 6, amount 7) is the poison
    wait_for_horizon(admin, schema)
    calls: list[int] = []
    projection = counter_batch_projection(schema, fail_on=lambda e: e.event.amount == 7, calls=calls)
    worker = ProjectionWorker(
        service,
        [projection],
        batch_size=10,
        retry=ProjectionRetry(max_attempts=2, initial=0.0, on_error=OnError.DEAD_LETTER),
    )
    try:
        drain(worker, positions[-1])
        letters = worker.control.dead_letters(NAME)
    finally:
        worker.close()
    assert [(d.workflow_id, d.seq, d.position, d.attempts) for d in letters] == [("c2", 2, positions[6], 2)]
    assert "handler refuses c2#2" in letters[0].error
    # Every other event applied exactly once: the failed batch of 10 was retried one event at a time.
    assert [r[2] for r in applied(admin, schema)] == [p for i, p in enumerate(positions) if i != 6]
    assert totals(admin, schema)["c2"][0] == 3 + 11
    assert calls[0] == 10 and set(calls[1:8]) == {1}
    assert checkpoint(admin, schema) == positions[-1]


def test_stop_policy_names_the_event_at_fault_inside_a_batch(service: WorkflowService, admin: Conn) -> None:
    schema = service.store.schema  # type: ignore[attr-defined]
    positions = _write(service, 8)
    wait_for_horizon(admin, schema)
    projection = counter_batch_projection(schema, fail_on=lambda e: e.event.amount == 6)
    worker = ProjectionWorker(
        service,
        [projection],
        batch_size=100,
        retry=ProjectionRetry(max_attempts=2, initial=0.0, on_error=OnError.STOP),
    )
    try:
        with pytest.raises(ProjectionHandlerFailed, match=r"instance 'c1' sequence 2 .*attempt 2") as info:
            run_until_raises(worker)
        assert info.value.position == positions[5]
        # The events before the poison were applied one by one while narrowing; the checkpoint stops before it.
        assert checkpoint(admin, schema) == positions[4]
        assert [r[2] for r in applied(admin, schema)] == positions[:5]
    finally:
        worker.close()


def test_a_projection_needs_exactly_one_of_handler_and_handle_batch() -> None:
    def one(event: RecordedEvent[Any], conn: psycopg.Connection[Any]) -> None:
        pass

    def many(conn: psycopg.Connection[Any], events: Any) -> None:
        pass

    with pytest.raises(ConfigurationError, match="exactly one of handler and handle_batch"):
        Projection("p")
    with pytest.raises(ConfigurationError, match="exactly one of handler and handle_batch"):
        Projection("p", one, handle_batch=many)
