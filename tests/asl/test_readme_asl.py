"""The README's ASL example runs as written."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_asl_example_runs(capsys: Any) -> None:
    text = README.read_text()
    section = text.split("## Amazon States Language workflows", 1)[1]
    block = re.search(r"```python\n(.*?)```", section, re.S)
    assert block is not None
    exec(compile(block.group(1), str(README), "exec"), {"__name__": "readme_asl"})
    printed = capsys.readouterr().out.strip()
    expected = re.search(r"# (ExecutionResult\(.*\))", block.group(1))
    assert expected is not None
    assert printed == expected.group(1)
