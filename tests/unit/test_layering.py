"""Only `ironflow_py/store/` executes SQL: every other module asks the store (design/schema.md).

An AST check over the package source: outside `store/`, no module composes SQL (`psycopg.sql`), opens a
driver connection, takes a cursor, opens a transaction block, reads the store's named queries (`.q[...]`)
or calls `.execute(...)` on anything but the `WorkflowService` (whose `execute` runs an input, not SQL).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import ironflow_py

PACKAGE = Path(ironflow_py.__file__).parent

#: Receivers whose `.execute(...)` is not SQL: `WorkflowService.execute(input)`, the `CommandHandler` it
#: delegates to, and a service calling its own `execute` (`self.execute`, as `execute_and_wait` does; no
#: class of ours subclasses a driver connection). A receiver is matched by its last name (`service`,
#: `self.service`, `reg.handler`, `self`).
NOT_SQL_EXECUTE = {"service", "handler", "self"}

#: Methods that run SQL or open a session when called on a connection or cursor.
SQL_METHODS = {"execute", "executemany", "cursor", "transaction", "copy_from", "copy_to"}

#: Modules outside store/ allowed to break the rule, each with its reason. Keep it empty if you can.
ALLOWED: dict[str, str] = {}


def _receiver_name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def sql_outside_store(source: str) -> list[str]:
    """What in `source` runs or composes SQL, one line per finding ("line N: what")."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("psycopg.sql"):
                    found.append(f"line {node.lineno}: imports {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module.startswith("psycopg.sql") or (
                node.module == "psycopg" and any(a.name == "sql" for a in node.names)
            ):
                found.append(f"line {node.lineno}: imports psycopg.sql")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            method, receiver = node.func.attr, _receiver_name(node.func.value)
            if method == "connect" and receiver in {"psycopg", "AsyncConnection", "Connection"}:
                found.append(f"line {node.lineno}: opens a driver connection ({receiver}.connect)")
            elif method in SQL_METHODS and not (method == "execute" and receiver in NOT_SQL_EXECUTE):
                found.append(f"line {node.lineno}: calls {receiver}.{method}(...)")
        elif isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute) and node.value.attr == "q":
            found.append(f"line {node.lineno}: reads a named query ({_receiver_name(node.value.value)}.q[...])")
    return found


def _shell_modules() -> list[str]:
    return sorted(
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if path.relative_to(PACKAGE).parts[0] != "store"
    )


@pytest.mark.parametrize("module", _shell_modules())
def test_only_the_store_executes_sql(module: str) -> None:
    """A module outside store/ that runs SQL must move the statement into a store/ module instead."""
    if module in ALLOWED:
        pytest.skip(ALLOWED[module])
    findings = sql_outside_store((PACKAGE / module).read_text())
    assert not findings, f"ironflow_py/{module} runs SQL outside store/: " + "; ".join(findings)


@pytest.mark.parametrize(
    "source",
    [
        "from psycopg import sql",
        "from psycopg.sql import Identifier",
        "import psycopg.sql",
        "conn.execute('SELECT 1')",
        "self._conn.execute(q)",
        "cur = conn.cursor()",
        "with conn.transaction(): pass",
        "psycopg.connect(url)",
        "store.q['history']",
        "self.store.q['history']",
    ],
)
def test_the_check_catches(source: str) -> None:
    """Each form of running SQL is reported, so the test above can fail."""
    assert sql_outside_store(source)


@pytest.mark.parametrize(
    "source",
    [
        "service.execute(input)",
        "self.service.execute(input, settle=s)",
        "reg.handler.execute(i)",
        "self.execute(input)",
        "import psycopg",
    ],
)
def test_the_check_allows(source: str) -> None:
    """Running an input through the service is not SQL, and importing psycopg for its error types is fine."""
    assert not sql_outside_store(source)
