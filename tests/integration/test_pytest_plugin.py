"""The plugin's fixtures give each test its own migrated schema on a real server."""

from __future__ import annotations

from typing import Any

import psycopg

from ironflow_py import PostgresStore, WorkflowService
from tests.workflows import Add, Counter

seen_schemas: list[str] = []


def _tables(conn: psycopg.Connection[tuple[Any, ...]], schema: str) -> set[str]:
    rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,)).fetchall()
    return {r[0] for r in rows}


def test_store_is_migrated_in_its_own_schema(ironflow_store: PostgresStore, admin: psycopg.Connection[Any]) -> None:
    assert {"events", "outbox", "timers", "instances", "input_keys"} <= _tables(admin, ironflow_store.schema)
    WorkflowService(ironflow_store, workflows=[Counter]).execute(Add("c1"))
    seen_schemas.append(ironflow_store.schema)


def test_next_test_sees_a_different_empty_schema(ironflow_store: PostgresStore, admin: psycopg.Connection[Any]) -> None:
    assert seen_schemas and ironflow_store.schema not in seen_schemas
    assert _tables(admin, seen_schemas[0]) == set(), "the previous test's schema was dropped"
    assert WorkflowService(ironflow_store, workflows=[Counter]).history("counter", "c1") == []
