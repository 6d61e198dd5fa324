"""Fixtures shared by every test. The database fixtures come from ironflow_py's own pytest plugin (the one
users enable), under the short names the tests use."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from ironflow_py.cli._logging import reset_logging
from ironflow_py.store.postgres import PostgresStore

pytest_plugins = ["ironflow_py.testing.pytest_plugin"]


@pytest.fixture
def pg_url(ironflow_database_url: str) -> str:
    return ironflow_database_url


@pytest.fixture
def schema(ironflow_schema: str) -> str:
    return ironflow_schema


@pytest.fixture
def pg_store(ironflow_store: PostgresStore) -> PostgresStore:
    return ironflow_store


@pytest.fixture
def admin(pg_url: str) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
    """A separate autocommit connection for looking at, or interfering with, what a test wrote."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        yield conn


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    """The CLI configures logging on the root logger; undo it so one test's setup never leaks into another."""
    yield
    reset_logging()
