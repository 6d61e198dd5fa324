"""`prune`: remove finished rows whose retention has passed (design/retention.md)."""

from __future__ import annotations

import re
import time
from datetime import timedelta
from typing import Any

import attrs
import click

from ironflow_py.cli._base import Command, Settings, option, pass_settings
from ironflow_py.retention import ClosedMode, RetentionPolicy

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhdw]?)$")
#: What `never` converts to (a duration option left out is None: the app's policy, or the default, applies).
NEVER = "never"


class Duration(click.ParamType[timedelta | str]):
    """A duration such as `45s`, `30m`, `12h`, `7d`, `2w` (a bare number is seconds), or `never`."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> timedelta | str:
        """Parse `value` into a timedelta (`NEVER` for `never`).

        Args:
            value: The option's text, or an already converted value.
            param: The option being parsed.
            ctx: The click context.

        Returns:
            The duration, or `NEVER` (keep forever).
        """
        if isinstance(value, timedelta):
            return value
        text = str(value).strip().lower()
        if text == NEVER:
            return NEVER
        match = _DURATION.match(text)
        if match is None:
            self.fail(f"{value!r} is not a duration (like 45s, 30m, 12h, 7d, 2w) or 'never'", param, ctx)
        return timedelta(seconds=float(match[1]) * _UNITS[match[2] or "s"])


DURATION = Duration()


@click.command(cls=Command)
@option("--done-effects", type=DURATION, help="Keep done and cancelled effects this long.")
@option("--dead-effects", type=DURATION, help="Keep dead effects this long (default: never prune).")
@option("--closed-instances", type=DURATION, help="Keep a closed instance's history this long.")
@option("--previous-runs", type=DURATION, help="Keep the events of an open instance's earlier runs this long.")
@option("--mode", type=click.Choice([m.value for m in ClosedMode]), help="What pruning does to a closed instance.")
@option("--batch-size", type=int, help="Most rows of each kind per batch (one transaction each).")
@option("--max-batches", type=int, help="Stop after this many batches (default: until nothing is due).")
@pass_settings
def prune(
    settings: Settings,
    done_effects: Any,
    dead_effects: Any,
    closed_instances: Any,
    previous_runs: Any,
    mode: str | None,
    batch_size: int | None,
    max_batches: int | None,
) -> None:
    """Remove finished rows whose retention has passed, in bounded batches.

    The policy is the app's `retention` (with --app) or the defaults (done effects 7d, dead effects never,
    closed instances 30d as tombstones, earlier runs of instances continued as new 30d), with these options
    on top. With --app, the app's projections
    hold pruning back until they have read an instance's events, even before their first run.
    """
    app = settings.app() if settings.app_spec else None
    policy = (app.retention if app is not None else None) or RetentionPolicy()
    changes: dict[str, Any] = {}
    for name, value in (
        ("done_effects", done_effects),
        ("dead_effects", dead_effects),
        ("closed_instances", closed_instances),
        ("previous_runs", previous_runs),
    ):
        if value is not None:
            changes[name] = None if value == NEVER else value
    if mode is not None:
        changes["closed_mode"] = ClosedMode(mode)
    if batch_size is not None:
        changes["batch_size"] = batch_size
    try:
        policy = attrs.evolve(policy, **changes)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    projections = [p.name for p in app.projections] if app is not None else []
    with settings.store() as store:
        started = time.monotonic()
        report = store.pruner(projections).prune_all(policy, max_batches=max_batches)
        seconds = time.monotonic() - started
    data = {**attrs.asdict(report), "rows": report.rows, "seconds": round(seconds, 3)}
    if report.busy and not report.batches:
        text = "another pruner is running; nothing done"
    else:
        text = (
            f"pruned {report.rows} rows in {report.batches} batches ({seconds:.2f} s): "
            f"{report.instances} instances ({policy.closed_mode.value}), {report.events} events, "
            f"{report.input_keys} input keys, {report.effects} done effects, {report.dead_effects} dead effects, "
            f"{report.timers} timers, {report.snapshots} snapshots; earlier runs of {report.runs} instances"
        )
    settings.emit(data, text)
