"""What `--metrics-port` adds to a daemon (`worker`, `projections run`): an Observer with Prometheus metrics
(and the App's tracer provider, if it has one) and the HealthServer serving `/metrics`, `/healthz` and
`/readyz`."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING

from ironflow_py.app import App
from ironflow_py.cli._base import option
from ironflow_py.errors import ConfigurationError
from ironflow_py.store.postgres import PostgresStore
from ironflow_py.store.postgres_ops import StoreOps
from ironflow_py.telemetry import HealthServer, Observer

if TYPE_CHECKING:
    from ironflow_py.telemetry._tracing import Tracing

LagRows = Callable[[], Sequence[tuple[str, int, float | None]]]

metrics_port = option(
    "--metrics-port",
    type=int,
    default=None,
    help="Serve /metrics, /healthz and /readyz on this port (needs ironflow_py[metrics]).",
)
metrics_host = option(
    "--metrics-host", default="127.0.0.1", show_default=True, help="Interface the --metrics-port server binds."
)


def _tracing(app: App) -> Tracing | None:
    if app.tracer_provider is None:
        return None
    try:
        from ironflow_py.telemetry._tracing import Tracing
    except ImportError as exc:
        raise ConfigurationError(f"the app has a tracer_provider but {exc}") from exc
    return Tracing(app.tracer_provider)


@contextmanager
def observed(
    app: App,
    store: PostgresStore,
    now: Callable[[], datetime],
    *,
    loop: str,
    port: int | None,
    host: str,
    stale_after: float,
    lag: LagRows | None = None,
) -> Iterator[Observer]:
    """An Observer for one daemon, and while the block runs the health server on `port` (None: none).

    Args:
        app: the App (its `tracer_provider`, if set, makes the daemon trace).
        store: the daemon's store (outbox gauges and readiness read it).
        now: the service's clock, for the outbox gauges.
        loop: `effects` or `projections`, the loop `/healthz` watches.
        port: the TCP port; None: no server and no metrics.
        host: the interface to bind.
        stale_after: seconds without a loop turn before `/healthz` answers 503.
        lag: projection lag rows for the lag gauges (the projection daemon).

    Raises:
        ConfigurationError: `--metrics-port` without prometheus-client installed.
    """
    tracing = _tracing(app)
    if port is None:
        yield Observer(tracing=tracing)
        return
    try:
        from ironflow_py.telemetry import Metrics
    except ImportError as exc:
        raise ConfigurationError(f"--metrics-port: {exc}") from exc
    metrics = Metrics()
    metrics.watch_outbox(store, now)
    if lag is not None:
        metrics.watch_projections(lag)
    observer = Observer(metrics=metrics, tracing=tracing)
    server = HealthServer(
        observer, loop=loop, ready=StoreOps(store).readiness, port=port, host=host, stale_after=stale_after
    )
    with server:
        yield observer
