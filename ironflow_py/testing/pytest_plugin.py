"""pytest fixtures for applications' own integration tests: a real PostgreSQL, one schema per test.

Enable with ``pytest_plugins = ["ironflow_py.testing.pytest_plugin"]`` in your conftest.py. The server is
the one named by IRONFLOW_TEST_DATABASE_URL, else the embedded PostgreSQL in the same per-user data folder as
`ironflow-py` uses (`IRONFLOW_DATA_DIR` moves it), started if needed (needs the `embedded` extra). Every test
works in a schema of its own, so the tests and your own use of that server do not meet.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from ironflow_py import _database
from ironflow_py.store.postgres import PostgresStore
from ironflow_py.store.postgres_admin import drop_schema

TEST_URL_VARIABLE = "IRONFLOW_TEST_DATABASE_URL"


@pytest.fixture(scope="session")
def ironflow_database_url() -> str:
    """URL of the session's PostgreSQL server: IRONFLOW_TEST_DATABASE_URL, else the embedded one (a server
    this session starts stops when the last process using it exits; one already running is left running)."""
    url = os.environ.get(TEST_URL_VARIABLE, "").strip()
    if url:
        return url
    return _database.start_embedded(_database.default_data_dir()).url


@pytest.fixture
def ironflow_schema(ironflow_database_url: str) -> Iterator[str]:
    """A fresh schema name for this test; the schema and everything in it is dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    yield name
    drop_schema(ironflow_database_url, name)


@pytest.fixture
def ironflow_store(ironflow_database_url: str, ironflow_schema: str) -> Iterator[PostgresStore]:
    """A migrated PostgresStore in this test's own schema."""
    store = PostgresStore.connect(ironflow_database_url, schema=ironflow_schema, max_size=12)
    store.migrate()
    yield store
    store.close()
