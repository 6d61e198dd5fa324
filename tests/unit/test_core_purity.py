"""The pure core imports no I/O: no driver, no logging, no clock, no randomness."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import ironflow_py

CORE = [
    "_names.py",
    "workflow.py",
    "decision.py",
    "composition.py",
    "decider.py",
    "codec.py",
    "upcasting.py",
    "values.py",
    "errors.py",
    "lifecycle.py",
    "records.py",
    "retention.py",
    "schedule.py",
    "diagram.py",
    "effects/_registry.py",
    "store/base.py",
    "testing/harness.py",
    "testing/replay.py",
    "asl/__init__.py",
    "asl/_choice.py",
    "asl/_definition.py",
    "asl/_errors.py",
    "asl/_history.py",
    "asl/_interpreter.py",
    "asl/_intrinsics.py",
    "asl/_model.py",
    "asl/_paths.py",
    "asl/_workflow.py",
]
BANNED = {"psycopg", "psycopg_pool", "structlog", "time", "random", "uuid", "os", "socket", "threading"}


@pytest.mark.parametrize("module", CORE)
def test_core_module_imports_no_io(module: str) -> None:
    path = Path(ironflow_py.__file__).parent / module
    tree = ast.parse(path.read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
            if node.module.startswith("ironflow_py"):
                target = node.module.removeprefix("ironflow_py.").replace(".", "/")
                assert target + ".py" in CORE or target + "/__init__.py" in CORE, node.module
    assert not imported & BANNED, f"{module} imports {imported & BANNED}"
