"""pytest fixtures for applications' own integration tests: a real PostgreSQL, one schema per test.

Enable with ``pytest_plugins = ["ironflow_py.testing.pytest_plugin"]`` in your conftest.py. The server is
the one named by IRONFLOW_TEST_DATABASE_URL; else, when IRONFLOW_DATA_DIR is set, the embedded server in
that folder (the one `ironflow-py` uses); else an embedded server of the session's own in a temporary
folder, deleted when the session ends (needs the `embedded` extra). Every test works in a schema of its own.

Why a cluster of its own by default, not the per-user one the CLI shares: some things are cluster-wide,
not per schema (the transaction-id horizon projections read below, `pg_stat_activity`), so another
session's open transaction on a shared server can hold a projection test back. Point
IRONFLOW_TEST_DATABASE_URL at `$(ironflow-py db url)` to run on the shared one.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ironflow_py import _database
from ironflow_py.store.postgres import PostgresStore
from ironflow_py.store.postgres_admin import drop_schema

TEST_URL_VARIABLE = "IRONFLOW_TEST_DATABASE_URL"


@pytest.fixture(scope="session")
def ironflow_database_url() -> str:
    """URL of the session's PostgreSQL server (see the module docstring for which one)."""
    url = os.environ.get(TEST_URL_VARIABLE, "").strip()
    if url:
        return url
    if os.environ.get(_database.DATA_DIR_VARIABLE, "").strip():
        return _database.start_embedded(_database.default_data_dir()).url
    # Not under pytest's tmp_path: as root the server runs as another user that must traverse the folder,
    # and a concurrent pytest run resets /tmp/pytest-of-root to 0700. A short path too: the Unix socket
    # lives in the data folder. Deleted when the session's process exits.
    data_dir = Path(tempfile.mkdtemp(prefix="ironflow-pg-"))
    return _database.start_embedded(data_dir, delete_at_exit=True).url


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
