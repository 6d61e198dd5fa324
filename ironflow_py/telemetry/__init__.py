"""Telemetry: an `Observer` the engine reports to, Prometheus `Metrics`, OpenTelemetry `Tracing`, and the
`HealthServer` that serves `/metrics`, `/healthz` and `/readyz` for the daemons.

`Metrics` needs the `metrics` extra (prometheus-client) and `Tracing` the `otel` extra (opentelemetry-api);
both are imported only when asked for, so `Observer` works without either (and, like the in-memory path of
the engine, without psycopg; `HealthServer` needs it for the readiness check's types).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ironflow_py.telemetry._observer import Observer, Probe

if TYPE_CHECKING:
    from ironflow_py.telemetry._health import HealthServer
    from ironflow_py.telemetry._metrics import Metrics
    from ironflow_py.telemetry._tracing import Tracing, current_log_fields

__all__ = ["HealthServer", "Metrics", "Observer", "Probe", "Tracing", "current_log_fields"]

_LAZY = {
    "HealthServer": ("ironflow_py.telemetry._health", "the PostgreSQL driver"),
    "Metrics": ("ironflow_py.telemetry._metrics", "metrics"),
    "Tracing": ("ironflow_py.telemetry._tracing", "otel"),
    "current_log_fields": ("ironflow_py.telemetry._tracing", "otel"),
}


_NEEDS = {
    "metrics": "`pip install 'ironflow_py[metrics]'`",
    "otel": "`pip install 'ironflow_py[otel]'`",
    "the PostgreSQL driver": "psycopg",
}


def __getattr__(name: str) -> Any:
    """Import `Metrics`, `Tracing` and `HealthServer` on first use: their libraries are optional.

    Args:
        name: the attribute asked for.

    Returns:
        The class or function.

    Raises:
        AttributeError: no such name.
        ImportError: its optional library is not installed (the message names the extra).
    """
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, extra = _LAZY[name]
    try:
        return getattr(importlib.import_module(module), name)
    except ImportError as exc:
        raise ImportError(f"{name} needs {_NEEDS[extra]}: {exc}") from exc
