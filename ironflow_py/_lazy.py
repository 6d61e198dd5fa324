"""PEP 562 lazy exports: a package's names whose modules import psycopg load on first use.

So the in-memory path (`MemoryStore`, `WorkflowSpec`, `Scenario`, and `import ironflow_py` itself) never
imports the database driver; `tests/unit/test_memory_path.py` checks it with psycopg made unimportable.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any


def load(package: str, lazy: Mapping[str, str], name: str, namespace: dict[str, Any]) -> Any:
    """Import `name` from the module `lazy` maps it to, cache it in the package's `namespace`, return it.

    Args:
        package: the package's `__name__` (for the error message).
        lazy: exported name -> the module that defines it.
        name: the attribute asked for.
        namespace: the package's `globals()`, so the next lookup does not come here.

    Raises:
        AttributeError: `name` is not one of the lazy exports.
    """
    module = lazy.get(name)
    if module is None:
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    namespace[name] = value
    return value
