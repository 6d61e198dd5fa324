"""Projection declarations and the in-memory fold, without a database."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from ironflow_py import (
    ConfigurationError,
    InMemoryProjection,
    OnError,
    Projection,
    ProjectionRetry,
    RecordedEvent,
)
from tests.workflows import Added, Finished

AT = datetime(2026, 1, 1, tzinfo=UTC)


def ev(wid: str, seq: int, event: object, wtype: str = "counter") -> RecordedEvent[Any]:
    return RecordedEvent(wtype, wid, seq, seq, type(event).__name__, event, AT)


def total(state: int, event: RecordedEvent[Any]) -> int:
    return state + int(event.event.amount)


def test_fold_applies_only_accepted_events_from_the_initial_state() -> None:
    proj = InMemoryProjection("sum", 0, total, event_classes=[Added], workflow_types=["counter"])
    events = [ev("a", 1, Added(2, 2)), ev("a", 2, Finished(2)), ev("b", 1, Added(5, 5), wtype="other")]
    assert proj.fold(events) == 2
    assert proj.fold(events, state=10) == 12
    assert proj.state == 0  # a pure fold leaves the worker-fed state alone


def test_worker_facing_projection_commits_or_rolls_back_staged_state() -> None:
    proj = InMemoryProjection("sum", 0, total)
    handler = proj.projection()
    assert handler.durable is False and handler.on_commit and handler.on_rollback and handler.reset
    assert handler.handler is not None
    handler.handler(ev("a", 1, Added(3, 3)), None)  # type: ignore[arg-type]
    assert proj.state == 0
    handler.on_commit()
    assert proj.state == 3
    handler.handler(ev("a", 2, Added(4, 7)), None)  # type: ignore[arg-type]
    handler.on_rollback()
    handler.on_commit()
    assert proj.state == 3


def test_a_projection_needs_a_name() -> None:
    with pytest.raises(ConfigurationError):
        Projection(" ", lambda e, c: None)


def test_retry_backoff_doubles_up_to_the_cap() -> None:
    policy = ProjectionRetry(max_attempts=5, initial=0.5, maximum=3.0, on_error=OnError.DEAD_LETTER)
    assert [policy.delay(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_a_single_workflow_type_is_one_type_not_its_characters() -> None:
    assert Projection("p", lambda event, conn: None, workflow_types="order").wants_type("order")
    assert not Projection("p", lambda event, conn: None, workflow_types="order").wants_type("o")
    assert InMemoryProjection("p", 0, lambda s, e: s, workflow_types="order").workflow_types == frozenset({"order"})
