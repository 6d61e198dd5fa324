"""Telemetry: an `Observer` the engine reports to, Prometheus `Metrics`, OpenTelemetry `Tracing`, and the
`HealthServer` that serves `/metrics`, `/healthz` and `/readyz` for the daemons.

`Metrics` needs the `metrics` extra (prometheus-client) and `Tracing` the `otel` extra (opentelemetry-api);
both are imported only when asked for, so `Observer` and `HealthServer` work without either.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ironflow_py.telemetry._health import HealthServer
from ironflow_py.telemetry._observer import Observer, Probe

if TYPE_CHECKING:
    from ironflow_py.telemetry._metrics import Metrics
    from ironflow_py.telemetry._tracing import Tracing, current_log_fields

__all__ = ["HealthServer", "Metrics", "Observer", "Probe", "Tracing", "current_log_fields"]

_LAZY = {
    "Metrics": ("ironflow_py.telemetry._metrics", "metrics"),
    "Tracing": ("ironflow_py.telemetry._tracing", "otel"),
    "current_log_fields": ("ironflow_py.telemetry._tracing", "otel"),
}


def __getattr__(name: str) -> Any:
    """Import `Metrics` and `Tracing` on first use: their libraries are optional extras."""
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, extra = _LAZY[name]
    try:
        return getattr(importlib.import_module(module), name)
    except ImportError as exc:
        raise ImportError(f"{name} needs `pip install 'ironflow_py[{extra}]'`: {exc}") from exc
