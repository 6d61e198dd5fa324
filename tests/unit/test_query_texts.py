"""The named queries stay within psycopg's statement cache, so a decision does not re-parse its SQL text."""

from __future__ import annotations

import pytest
from psycopg import _queries

from ironflow_py.store._sql import load_queries

QUERIES = load_queries("a_schema_name_as_long_as_postgres_allows_in_one_identifier_63by")


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_each_named_query_fits_psycopgs_statement_cache(name: str) -> None:
    """psycopg caches the conversion of a query text of at most 4,096 bytes with at most 50 parameters; a
    longer one is split with a regular expression on every execution (a third of a decision's client CPU when
    write_decision's comments pushed it past the limit). Shorten the query, or split it, if this fails."""
    text = QUERIES[name]
    assert len(text.encode()) <= _queries.MAX_CACHED_STATEMENT_LENGTH
    assert len(set(_params(text))) <= _queries.MAX_CACHED_STATEMENT_PARAMS


def _params(text: str) -> list[str]:
    return [part.split(")", 1)[0] for part in text.split("%(")[1:]]


def test_loaded_queries_keep_no_whole_line_comment() -> None:
    assert not any(line.lstrip().startswith("--") for q in QUERIES.values() for line in q.splitlines())
