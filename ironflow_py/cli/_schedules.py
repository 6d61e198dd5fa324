"""`schedules list|show|pause|resume|trigger|backfill`: the app's declared schedules (design/schedules.md)."""

from __future__ import annotations

from datetime import datetime

import attrs
import click

from ironflow_py.cli._base import Group, Settings, option, pass_settings
from ironflow_py.errors import ConfigurationError
from ironflow_py.scheduling import ScheduleInfo


@click.group(cls=Group)
def schedules() -> None:
    """Look after the app's schedules."""


def _when(value: datetime | None) -> str:
    return "-" if value is None else f"{value:%Y-%m-%d %H:%M:%S}Z"


def _line(s: ScheduleInfo) -> str:
    status = s.status + (
        " (declaration changed: a worker's start replans it)" if s.changed and s.status != "not reconciled" else ""
    )
    return (
        f"{s.name:<24} {status:<14} next {_when(s.next_fire):<21} started {s.started:<6} missed {s.missed:<6} "
        f"open {len(s.open_runs):<3} {s.timing}"
    )


@schedules.command("list")
@pass_settings
def list_(settings: Settings) -> None:
    """Every declared schedule: status, next fire time, runs started and missed."""
    app = settings.app()
    with settings.store() as store:
        rows = app.service(store).schedules.list()
    settings.emit([attrs.asdict(r) for r in rows], "\n".join(_line(r) for r in rows) or "no schedules declared")


@schedules.command()
@click.argument("name")
@pass_settings
def show(settings: Settings, name: str) -> None:
    """One schedule: declaration, status, open and buffered runs, and its recent events."""
    app = settings.app()
    with settings.store() as store:
        control = app.service(store).schedules
        info = control.show(name)
        events = control.history(name)[-20:]
    lines = [
        f"{info.name}: {info.status}" + (f" ({info.pause_reason})" if info.pause_reason else ""),
        f"  timing   {info.timing}",
        f"  overlap  {info.overlap}; catch-up {info.catchup}",
        f"  next     {_when(info.next_fire)} (+{info.jitter_seconds:.3f}s jitter)",
        f"  runs     started {info.started}, missed {info.missed}, last {info.last_run_id or '-'}",
        f"  open     {', '.join(info.open_runs) or '-'}",
        f"  buffered {', '.join(_when(t) for t in info.buffered) or '-'}",
        "",
        "recent events:",
        *(f"  #{e.seq:<5} {e.recorded_at:%Y-%m-%d %H:%M:%S} {e.type_name:<26} {e.event}" for e in events),
    ]
    data = attrs.asdict(info) | {
        "events": [{"seq": e.seq, "type": e.type_name, "event": repr(e.event)} for e in events]
    }
    settings.emit(data, "\n".join(lines))


@schedules.command()
@click.argument("name")
@option("--reason", default=None, help="Why (shown by list and show).")
@option("--request-id", default=None, help="Makes the request idempotent.")
@pass_settings
def pause(settings: Settings, name: str, reason: str | None, request_id: str | None) -> None:
    """Stop a schedule ticking; runs already started go on."""
    with settings.store() as store:
        status = settings.app().service(store).schedules.pause(name, reason, request_id=request_id)
    settings.emit({"name": name, "status": status.value}, f"{name}: paused ({status.value})")


@schedules.command()
@click.argument("name")
@option("--request-id", default=None, help="Makes the request idempotent.")
@pass_settings
def resume(settings: Settings, name: str, request_id: str | None) -> None:
    """Tick again from the next fire time after now."""
    with settings.store() as store:
        status = settings.app().service(store).schedules.resume(name, request_id=request_id)
    settings.emit({"name": name, "status": status.value}, f"{name}: resumed ({status.value})")


@schedules.command()
@click.argument("name")
@option("--request-id", default=None, help="Makes the request idempotent (a repeat starts nothing).")
@pass_settings
def trigger(settings: Settings, name: str, request_id: str | None) -> None:
    """Start one run now, whatever the overlap policy."""
    with settings.store() as store:
        run_id = settings.app().service(store).schedules.trigger(name, request_id=request_id)
    settings.emit({"name": name, "run_id": run_id}, f"{name}: started {run_id}")


def _time(value: str, what: str) -> datetime:
    try:
        return datetime.fromisoformat(value)
    except ValueError as exc:
        raise ConfigurationError(f"{what} is not an ISO 8601 time: {exc}") from exc


@schedules.command()
@click.argument("name")
@option("--start", required=True, help="The first fire time to run (ISO 8601 with an offset).")
@option("--end", required=True, help="The last fire time to run (ISO 8601 with an offset).")
@option("--request-id", default=None, help="Makes the request idempotent (a repeat starts nothing).")
@pass_settings
def backfill(settings: Settings, name: str, start: str, end: str, request_id: str | None) -> None:
    """Start the runs of the fire times between --start and --end, each with its usual id."""
    begin, finish = _time(start, "--start"), _time(end, "--end")
    with settings.store() as store:
        run_ids = settings.app().service(store).schedules.backfill(name, begin, finish, request_id=request_id)
    settings.emit({"name": name, "run_ids": run_ids}, "\n".join(run_ids) or f"{name}: no fire time in that range")
