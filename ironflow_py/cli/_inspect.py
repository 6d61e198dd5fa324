"""`inspect instances|show|versions|outbox` and `diagram`: read-only views of what the database holds."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import attrs
import click

from ironflow_py import diagram as diagrams
from ironflow_py import inspection
from ironflow_py.cli._base import Command, Group, Settings, indented, option, pass_settings
from ironflow_py.errors import ConfigurationError, NotFound
from ironflow_py.records import InstanceStatus
from ironflow_py.service import WorkflowService
from ironflow_py.store.memory import MemoryStore


@click.group(cls=Group)
def inspect() -> None:
    """Look at instances and the outbox."""


@inspect.command()
@option("--type", "workflow_type", help="Only this workflow type.")
@option("--status", type=click.Choice([s.value for s in InstanceStatus]), help="Only instances in this status.")
@option("--limit", type=int, default=50, show_default=True, help="At most this many.")
@pass_settings
def instances(settings: Settings, workflow_type: str | None, status: str | None, limit: int) -> None:
    """List instances."""
    app = settings.app()
    with settings.store() as store, settings.read_store(store) as reads:
        service = app.service(store, read_store=reads)
        rows = service.list_instances(workflow_type, InstanceStatus(status) if status else None, limit=limit)
        shown = [inspection.shown_status(reads, r) for r in rows]
    text = "\n".join(
        f"{r.workflow_type:<20} {r.workflow_id:<36} {shown_as:<10} seq {r.last_seq:<6} "
        f"updated {r.updated_at:%Y-%m-%d %H:%M:%S}" + (" paused" if r.paused_at else "")
        for r, shown_as in zip(rows, shown, strict=True)
    )
    data = [attrs.asdict(r) | {"shown_status": shown_as} for r, shown_as in zip(rows, shown, strict=True)]
    settings.emit(data, text or "no instances")


@inspect.command()
@click.argument("workflow_type")
@click.argument("workflow_id")
@pass_settings
def show(settings: Settings, workflow_type: str, workflow_id: str) -> None:
    """One instance: why it waits, its events, state, effects (with their last traceback) and timers."""
    app = settings.app()
    with settings.store() as store, settings.read_store(store) as reads:
        service = app.service(store, read_store=reads)
        _show(settings, service, workflow_type, workflow_id)


def _show(settings: Settings, service: WorkflowService, workflow_type: str, workflow_id: str) -> None:
    report = inspection.instance_report(service, workflow_type, workflow_id)
    if report.info is None and not report.events:
        raise NotFound(f"workflow {workflow_type!r} has no instance {workflow_id!r}")
    codec = report.decider.codec
    now = service.clock.now()
    lines = [f"{workflow_type} {workflow_id}: {report.diagnosis(now)}", "", "events:"]
    lines += [
        f"  #{e.seq:<4} {e.recorded_at:%Y-%m-%d %H:%M:%S} {e.type_name:<28} {codec.to_data(e.event)}"
        for e in report.events
    ]
    lines += ["", f"state: {report.state!r}", "", "effects:"]
    for e in report.effects:
        lines.append(
            f"  {e.id:<6} {e.effect_type:<28} {e.status:<8} attempts {e.attempts}"
            + (
                f" lease {e.locked_by} until {e.locked_until:%H:%M:%S}"
                if e.locked_until and e.locked_until > now
                else ""
            )
            + (f" next {e.available_at:%Y-%m-%d %H:%M:%S}" if e.status == "pending" else "")
            + (f" error: {e.last_error}" if e.last_error else "")
        )
        if e.last_traceback and e.status != "done":
            lines += indented(e.last_traceback, "      ")
    if not report.effects:
        lines.append("  none")
    lines += ["", "timers:"]
    lines += [
        f"  {t.key:<20} due {t.due_at:%Y-%m-%d %H:%M:%S} {t.input_type} attempts {t.attempts}" for t in report.timers
    ] or ["  none"]
    data = {
        "diagnosis": report.diagnosis(now),
        "instance": attrs.asdict(report.info) if report.info else None,
        "events": [
            {
                "seq": e.seq,
                "position": e.position,
                "type": e.type_name,
                "recorded_at": e.recorded_at,
                "payload": codec.to_data(e.event),
            }
            for e in report.events
        ],
        "state": codec.to_data(report.state),
        "state_name": report.state_name,
        "effects": [attrs.asdict(e) for e in report.effects],
        "timers": [attrs.asdict(t) for t in report.timers],
    }
    settings.emit(data, "\n".join(lines))


@inspect.command()
@click.argument("workflow_type")
@pass_settings
def versions(settings: Settings, workflow_type: str) -> None:
    """Open instances per workflow version, and whether this code has each version's class."""
    app = settings.app()
    with settings.store() as store:
        service = app.service(store)
        counts = service.open_versions(workflow_type)
        try:
            reg = service.registration(workflow_type)
            loaded, default = set(reg.versions), reg.workflow.version
        except NotFound:
            loaded, default = set(), None
    names = sorted(set(counts) | loaded)
    data = [{"version": v, "open": counts.get(v, 0), "registered": v in loaded, "default": v == default} for v in names]
    text = "\n".join(
        f"{row['version']:<12} open {row['open']:<8} "
        + ("registered" if row["registered"] else "NOT REGISTERED")
        + (" (default)" if row["default"] else "")
        for row in data
    )
    settings.emit(data, text or f"no versions of {workflow_type!r}")


@inspect.command()
@pass_settings
def outbox(settings: Settings) -> None:
    """Effects pending, running, retrying and dead; timers; load per worker."""
    now = datetime.now(UTC)
    with settings.store() as store, settings.read_store(store) as reads:
        h = inspection.outbox_health(reads, now)
    age = f"{(now - h.oldest_pending_at).total_seconds():.1f}s" if h.oldest_pending_at else "-"
    lines = [
        f"effects pending {h.pending} (due now {h.due_now}, running {h.in_flight}, waiting to retry {h.retrying}), "
        f"oldest pending {age}, dead {h.dead}",
        *(
            f"  worker {w.worker}: {w.in_flight} in flight, earliest lease end {w.earliest_lease_end:%H:%M:%S}"
            for w in h.workers
        ),
        f"timers {h.timers} (overdue {h.timers_overdue}), next due "
        + (f"{h.next_timer_at:%Y-%m-%d %H:%M:%S}" if h.next_timer_at else "-"),
    ]
    settings.emit(attrs.asdict(h), "\n".join(lines))


@click.command(cls=Command)
@click.argument("workflow_type")
@option("--format", "format", type=click.Choice(["mermaid", "dot"]), default="mermaid", show_default=True)
@option("--instance", help="Draw the path this instance took (reads its history from the database).")
@option("--output", type=click.Path(dir_okay=False, path_type=Path), help="Write here instead of standard output.")
@pass_settings
def diagram(settings: Settings, workflow_type: str, format: str, instance: str | None, output: Path | None) -> None:
    """A workflow's state machine, or one instance's path, as Mermaid or Graphviz text."""
    app = settings.app()
    if instance is None:
        wf = app.service(MemoryStore()).registration(workflow_type).workflow
        machine = wf.describe()
        if machine is None:
            raise ConfigurationError(f"workflow {wf.type!r} does not describe its states (define describe())")
        text = diagrams.to_mermaid(machine) if format == "mermaid" else diagrams.to_dot(machine, wf.type)
    else:
        with settings.store() as store, settings.read_store(store) as reads:
            service = app.service(store, read_store=reads)
            wf = service.registration(workflow_type).workflow
            history = service.history(wf.type, instance)
            if not history:
                raise NotFound(f"workflow {wf.type!r} has no instance {instance!r}")
            info = service.instance(wf.type, instance)
            # Terminated (or otherwise closed by the engine) counts as an end even if the state is not terminal.
            terminal = (info is not None and info.status.closed) or wf.is_terminal(service.state(wf.type, instance))
        steps = diagrams.instance_path(wf, [(e.seq, e.type_name, e.event) for e in history])
        initial = wf.state_name(wf.initial_state())
        if format == "mermaid":
            text = diagrams.path_to_mermaid(steps, initial, terminal)
        else:
            text = diagrams.path_to_dot(steps, initial, terminal, f"{wf.type} {instance}")
    if output is not None:
        output.write_text(text)
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(text, nl=False)
