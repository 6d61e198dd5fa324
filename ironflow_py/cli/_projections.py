"""`projections run|status|rebuild`: keep the app's read models and look after them."""

from __future__ import annotations

import attrs
import click

from ironflow_py.cli._base import Group, Settings, option, pass_settings
from ironflow_py.cli._telemetry import metrics_host, metrics_port, observed
from ironflow_py.clock import SystemClock
from ironflow_py.errors import ConfigurationError
from ironflow_py.projections._control import ProjectionControl
from ironflow_py.projections._projection import OnError
from ironflow_py.projections._worker import ProjectionRetry, ProjectionWorker


@click.group(cls=Group)
def projections() -> None:
    """Run and look after projections."""


@projections.command()
@click.argument("names", nargs=-1, metavar="[NAME]...")
@option(
    "--batch-size", "projection_batch_size", type=int, default=1000, show_default=True, help="Events per transaction."
)
@option(
    "--poll-interval",
    "projection_poll_interval",
    type=float,
    default=5.0,
    show_default=True,
    help="Seconds between polls when no NOTIFY arrives.",
)
@option(
    "--lease",
    "projection_lease",
    type=click.FloatRange(min=0.1),
    default=10.0,
    show_default=True,
    help="Seconds a lead lasts unless renewed; a standby takes over a frozen leader within about this.",
)
@option(
    "--standby-interval",
    "projection_standby_interval",
    type=click.FloatRange(min=0.01),
    default=1.0,
    show_default=True,
    help="Seconds between a standby's tries to take the lead.",
)
@option(
    "--max-attempts",
    "projection_max_attempts",
    type=int,
    default=5,
    show_default=True,
    help="Failures on one event before --on-error applies.",
)
@option(
    "--on-error",
    "projection_on_error",
    type=click.Choice([o.value for o in OnError]),
    default=OnError.STOP.value,
    show_default=True,
    help="Stop the worker, or record the event as a dead letter and go on.",
)
@metrics_port
@metrics_host
@pass_settings
def run(
    settings: Settings,
    names: tuple[str, ...],
    projection_batch_size: int,
    projection_poll_interval: float,
    projection_lease: float,
    projection_standby_interval: float,
    projection_max_attempts: int,
    projection_on_error: str,
    metrics_port: int | None,
    metrics_host: str,
) -> None:
    """Run projection workers until SIGTERM (default: every projection of the app)."""
    app = settings.app()
    if not app.projections:
        raise ConfigurationError(f"{settings.app_spec} declares no projections")
    selected = app.select_projections(names)
    wanted = [p.name for p in selected]
    with settings.store(pool_size=6) as store:
        control = ProjectionControl(store)

        def lag() -> list[tuple[str, int, float | None]]:
            return [(r.name, r.lag_events, r.lag_seconds) for r in control.status(wanted)]

        with observed(
            app,
            store,
            SystemClock().now,
            loop="projections",
            port=metrics_port,
            host=metrics_host,
            stale_after=max(30.0, 5 * projection_poll_interval),
            lag=lag,
        ) as observer:
            worker = ProjectionWorker(
                app.service(store, observer=observer),
                selected,
                batch_size=projection_batch_size,
                poll_interval=projection_poll_interval,
                lease=projection_lease,
                standby_interval=projection_standby_interval,
                retry=ProjectionRetry(max_attempts=projection_max_attempts, on_error=OnError(projection_on_error)),
            )
            worker.run(handle_signals=True)


@projections.command()
@click.argument("names", nargs=-1, metavar="[NAME]...")
@pass_settings
def status(settings: Settings, names: tuple[str, ...]) -> None:
    """Checkpoint, lag and horizon of projections."""
    wanted = [p.name for p in settings.app().select_projections(names)]
    with settings.store() as store:
        control = ProjectionControl(store)
        rows = control.status(wanted)
        horizon = control.horizon()
    lines = [
        f"{r.name:<24} position {r.position:<12} applied {r.applied:<10} lag {r.lag_events} events"
        + (f", {r.lag_seconds:.1f}s" if r.lag_seconds is not None else "")
        + (f"\n{'':<24} led by {r.leader} until {r.lease_ends:%H:%M:%S}" if r.leader and r.lease_ends else "")
        + (f"\n{'':<24} no leader (no live lease)" if not r.leader else "")
        + (f"\n{'':<24} FAILED at position {r.failed_position}: {r.failed_error}" if r.failed_at else "")
        for r in rows
    ]
    started = {r.name for r in rows}
    lines += [f"{name:<24} not started" for name in wanted if name not in started]
    if horizon.held_back:
        age = horizon.blocker_age_seconds or 0.0
        lines.append(
            f"horizon held back: {horizon.held_back_events} committed events wait for the transaction of pid "
            f"{horizon.blocker_pid} ({horizon.blocker_application}, open {age:.1f}s)"
        )
    settings.emit(
        {"projections": [attrs.asdict(r) for r in rows], "horizon": attrs.asdict(horizon)},
        "\n".join(lines) or "the app declares no projections",
    )


@projections.command()
@click.argument("name", metavar="NAME")
@pass_settings
def rebuild(settings: Settings, name: str) -> None:
    """Reset a projection's checkpoint and read model: it replays from the start."""
    projection = settings.app().select_projections([name])[0]
    with settings.store() as store:
        ProjectionControl(store).rebuild(projection)
    settings.emit({"rebuilt": projection.name}, f"projection {projection.name} will replay from the start")
