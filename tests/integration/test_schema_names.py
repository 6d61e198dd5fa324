"""Schema names PostgreSQL would alter are refused; channel names are built by bytes (design/reliability.md,
class 1)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from ironflow_py import ConfigurationError, PostgresStore, ProjectionWorker, WorkflowService
from ironflow_py.store.postgres import notify_channel
from ironflow_py.store.postgres_projections import applied_channel, events_channel
from tests.projection_apps import counter_projection, create_read_model, drain
from tests.workflows import Add, Counter

Conn = psycopg.Connection[tuple[Any, ...]]


def schemas_like(admin: Conn, prefix: str) -> list[str]:
    rows = admin.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE %s", (prefix + "%",)).fetchall()
    return [r[0] for r in rows]


@pytest.mark.parametrize(
    "name",
    [
        "t_" + "x" * 62,  # 64 bytes: PostgreSQL would cut it to 63, so two such names would share a schema
        "t_" + "é" * 31,  # 64 bytes in 33 characters
        "t_nul\x00",
        "",
    ],
    ids=["64-ascii", "64-bytes-non-ascii", "nul", "empty"],
)
def test_a_schema_name_postgres_would_alter_is_a_configuration_error_before_any_write(
    pg_url: str, admin: Conn, name: str
) -> None:
    with pytest.raises(ConfigurationError, match="schema name"):
        PostgresStore.connect(pg_url, schema=name)
    if name:
        assert schemas_like(admin, name[:40].replace("\x00", "")) == []


@pytest.fixture
def odd_schema(admin: Conn) -> Iterator[str]:
    """A 48-byte non-ASCII schema name (24 characters), unique per test."""
    name = "é" * 20 + uuid.uuid4().hex[:8]
    assert len(name.encode()) == 48
    yield name
    admin.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


def test_a_non_ascii_schema_name_migrates_executes_and_notifies(pg_url: str, odd_schema: str) -> None:
    """The issue's example: 48 bytes of non-ASCII name used to migrate and then fail every execute, because
    the event channel was cut at 63 characters, not bytes."""
    assert all(len(c.encode()) <= 63 for c in (events_channel(odd_schema), applied_channel(odd_schema)))
    with PostgresStore.connect(pg_url, schema=odd_schema) as store:
        store.migrate()
        with psycopg.connect(pg_url, autocommit=True) as conn:
            create_read_model(conn, odd_schema)
        service = WorkflowService(store, workflows=[Counter])
        with psycopg.connect(pg_url, autocommit=True) as listener:
            for channel in (events_channel(odd_schema), notify_channel(odd_schema)):
                listener.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
            position = service.execute(Add("c1", 2)).events[0].position
            heard = {n.channel for n in listener.notifies(timeout=10, stop_after=2)}
        assert heard == {events_channel(odd_schema), notify_channel(odd_schema)}
        worker = ProjectionWorker(service, [counter_projection(odd_schema)])
        try:
            drain(worker, position)
        finally:
            worker.close()


@pytest.mark.parametrize("size", [47, 63])
def test_ascii_names_up_to_63_bytes_work_and_stay_distinct(pg_url: str, admin: Conn, size: int) -> None:
    base = "t_" + uuid.uuid4().hex
    names = [(base + "a" * 63)[: size - 1] + suffix for suffix in "12"]
    try:
        for i, name in enumerate(names):
            with PostgresStore.connect(pg_url, schema=name) as store:
                store.migrate()
                WorkflowService(store, workflows=[Counter]).execute(Add("c1", i + 1))
        totals = [
            admin.execute(sql.SQL("SELECT count(*) FROM {}.events").format(sql.Identifier(n))).fetchone() for n in names
        ]
        assert totals == [(1,), (1,)]
    finally:
        for name in names:
            admin.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))
