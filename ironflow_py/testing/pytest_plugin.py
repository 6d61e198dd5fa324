"""pytest fixtures for applications' own integration tests: a real PostgreSQL, one schema per test.

Enable with ``pytest_plugins = ["ironflow_py.testing.pytest_plugin"]`` in your conftest.py. The server is
the one named by IRONFLOW_TEST_DATABASE_URL, else an embedded PostgreSQL started once per session in a
temporary folder (needs the `embedded` extra).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ironflow_py import _database
from ironflow_py.store.postgres import PostgresStore
from ironflow_py.store.postgres_admin import drop_schema

TEST_URL_VARIABLE = "IRONFLOW_TEST_DATABASE_URL"


@pytest.fixture(scope="session")
def ironflow_database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """URL of the session's PostgreSQL server."""
    url = os.environ.get(TEST_URL_VARIABLE, "").strip()
    if url:
        return url
    # Short path: the embedded server's Unix socket lives in its data folder, and socket paths are limited.
    return _database.start_embedded(Path(tmp_path_factory.mktemp("pg")) / "data").url


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
