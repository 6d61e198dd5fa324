"""Fixtures of the projection tests: a service over the counter workflow with its read model, and a worker."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from ironflow_py import PostgresStore, ProjectionWorker, WorkflowService
from tests.projection_apps import counter_projection, create_read_model
from tests.workflows import Counter


@pytest.fixture
def service(pg_store: PostgresStore, admin: psycopg.Connection[tuple[Any, ...]]) -> WorkflowService:
    create_read_model(admin, pg_store.schema)
    return WorkflowService(pg_store, workflows=[Counter])


@pytest.fixture
def worker(service: WorkflowService) -> Iterator[ProjectionWorker]:
    w = ProjectionWorker(service, [counter_projection(service.store.schema)])  # type: ignore[attr-defined]
    yield w
    w.close()
