"""The contract suite's one parameter: every test here runs on MemoryStore and on PostgresStore."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ironflow_py import MemoryStore
from ironflow_py.store.base import Store


@pytest.fixture(params=["memory", "postgres"])
def store(request: pytest.FixtureRequest) -> Iterator[Store]:
    if request.param == "memory":
        yield MemoryStore()
    else:
        yield request.getfixturevalue("pg_store")
