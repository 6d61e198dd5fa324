"""The README's example runs as written (against the test database)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_example_runs(pg_url: str, schema: str) -> None:
    block = re.search(r"```python\n(.*?)```", README.read_text(), re.S)
    assert block is not None
    code = block.group(1).replace('"postgresql://postgres@127.0.0.1/postgres"', repr(pg_url))
    code = code.replace(
        "PostgresStore.connect(" + repr(pg_url) + ")",
        "PostgresStore.connect(" + repr(pg_url) + ", schema=" + repr(schema) + ")",
    )
    assert repr(schema) in code, "the README example changed shape; update this test"
    namespace: dict[str, Any] = {"__name__": "readme_example"}
    exec(compile(code, str(README), "exec"), namespace)
    assert namespace["service"].execute(namespace["Deposit"]("acc-1", 250)).state == 750
    namespace["store"].close()
