"""`worker`: run the app's effect handlers and fire timers until SIGTERM/SIGINT."""

from __future__ import annotations

import os
import sys

import click

from ironflow_py.cli._base import Command, Settings, option, pass_settings
from ironflow_py.cli._telemetry import metrics_host, metrics_port, observed
from ironflow_py.clock import SystemClock
from ironflow_py.effects._runtime import DEFAULT_PREFETCH_BYTES, EffectRuntime


@click.command(cls=Command)
@option("--concurrency", type=int, default=8, show_default=True, help="Handlers running at once.")
@option("--batch-size", type=int, default=100, show_default=True, help="Rows claimed per round.")
@option("--lease", type=float, default=60.0, show_default=True, help="Seconds a claim holds without a heartbeat.")
@option("--poll-interval", type=float, default=1.0, show_default=True, help="Seconds between polls when idle.")
@option("--grace", type=float, default=30.0, show_default=True, help="Seconds shutdown waits for handlers.")
@option(
    "--prefetch-bytes",
    type=int,
    default=DEFAULT_PREFETCH_BYTES,
    show_default=True,
    help="Most payload bytes held claimed (running and queued); 0: no byte bound.",
)
@metrics_port
@metrics_host
@pass_settings
def worker(
    settings: Settings,
    concurrency: int,
    batch_size: int,
    lease: float,
    poll_interval: float,
    grace: float,
    prefetch_bytes: int,
    metrics_port: int | None,
    metrics_host: str,
) -> None:
    """Run the app's effect handlers and fire timers until SIGTERM/SIGINT (and prune by the app's retention)."""
    app = settings.app()
    with (
        settings.store(pool_size=concurrency + 4) as store,
        observed(
            app,
            store,
            SystemClock().now,
            loop="effects",
            port=metrics_port,
            host=metrics_host,
            stale_after=max(30.0, 5 * poll_interval),
        ) as observer,
    ):
        runtime = EffectRuntime(
            app.service(store, observer=observer),
            app.effects,
            concurrency=concurrency,
            batch_size=batch_size,
            lease=lease,
            poll_interval=poll_interval,
            grace=grace,
            prefetch_bytes=prefetch_bytes or None,
            retention=app.retention,
            projections=[p.name for p in app.projections],
        )
        runtime.run()
        if runtime.abandoned:
            # Handlers that outlived the grace period still run on pool threads; their claims are released,
            # so leave without joining them.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)
