"""Loads the store's SQL files and binds the schema name into them, once, through psycopg.sql."""

from __future__ import annotations

import itertools
import re
from importlib import resources

import attrs
from psycopg import sql

_NAME = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)
#: A line holding only an SQL comment (and its newline). Comments after code on the same line stay.
_COMMENT_LINE = re.compile(r"^[ \t]*--.*\n?", re.MULTILINE)
#: A line's indentation (no query holds a string literal that spans lines, so this is never inside one).
_INDENT = re.compile(r"^[ \t]+", re.MULTILINE)
_MIGRATION = re.compile(r"^(\d{3})_(\w+)\.sql$")


def _bind(text: str, schema: str) -> str:
    """Render `text` with `{schema}` replaced by the quoted identifier and `{schema_name}` by the name as a
    string literal (what advisory lock keys hash, so each schema has its own); literal braces are doubled."""
    return sql.SQL(text).format(schema=sql.Identifier(schema), schema_name=sql.Literal(schema)).as_string()


def load_queries(schema: str) -> dict[str, str]:
    """Every `-- name:` block of queries.sql, rendered for `schema`, without whole-line comments or indentation.

    Both stay in the file, for the reader. Dropping them keeps each query text under psycopg's
    statement-cache limit (`psycopg._queries.MAX_CACHED_STATEMENT_LENGTH`, 4,096 bytes): a longer text is
    re-split with a regular expression on every execution, which cost a third of the client CPU of a decision
    when write_decision's comments pushed it past the limit (design/decider.md).
    """
    text = resources.files("ironflow_py.store.sql").joinpath("queries.sql").read_text("utf-8")
    parts = _NAME.split(text)
    queries: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in queries:
            raise ValueError(f"queries.sql names {name!r} twice")
        queries[name] = _bind(_INDENT.sub("", _COMMENT_LINE.sub("", body)).strip(), schema)
    return queries


@attrs.frozen
class Migration:
    version: int
    name: str
    sql: str


def load_migrations(schema: str) -> list[Migration]:
    """The numbered migration files in version order.

    Gaps are allowed: migrations are applied as a set difference (those the schema has not recorded, in
    version order), so work developed in parallel can land its numbered file in any order. A version
    used twice is refused.
    """
    found: list[Migration] = []
    for entry in resources.files("ironflow_py.store.sql.migrations").iterdir():
        match = _MIGRATION.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], _bind(entry.read_text("utf-8"), schema)))
    found.sort(key=lambda m: m.version)
    for before, migration in itertools.pairwise(found):
        if migration.version == before.version:
            raise ValueError(f"migration {migration.version:03d} is defined twice ({before.name}, {migration.name})")
    return found
