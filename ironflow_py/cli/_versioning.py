"""`events upgrade`, `history export`, `snapshots verify`: changing a running workflow (design/versioning.md)."""

from __future__ import annotations

import json

import attrs
import click

from ironflow_py.cli._base import Group, Settings, option, pass_settings
from ironflow_py.upgrade import SnapshotStatus, export_history, upgrade_events, verify_snapshots

#: `snapshots verify`'s exit status when a snapshot is left that does not match (or a history is unreadable).
MISMATCH_EXIT = 3


@click.group(cls=Group)
def events() -> None:
    """Rewrite stored events (opt-in; upcasters already apply on every read)."""


@events.command("upgrade")
@click.argument("workflow_type")
@option("--batch", type=click.IntRange(min=1), default=500, show_default=True, help="Rows per locked transaction.")
@pass_settings
def upgrade(settings: Settings, workflow_type: str, batch: int) -> None:
    """Rewrite the events stored under old (upcast) names into the current names and shapes.

    Each instance is rewritten under its lock by the code of the version it records, at most --batch rows
    per transaction; workers may keep running. Instances of a version the app does not register are left
    as stored and counted as skipped. A row that does not decode stops the command before its batch writes
    anything.
    """
    with settings.store() as store:
        report = upgrade_events(settings.app().service(store), workflow_type, batch=batch)
    skipped = (
        f"; skipped {report.skipped} instances of versions {', '.join(report.skipped_versions)} "
        "(not registered by this app)"
        if report.skipped
        else ""
    )
    settings.emit(
        attrs.asdict(report),
        f"{workflow_type}: rewrote {report.events} events of {report.instances} instances "
        f"in {report.transactions} transactions{skipped}",
    )


@click.group(cls=Group)
def history() -> None:
    """Export stored histories (golden histories for `check_history_compat`)."""


@history.command("export")
@click.argument("workflow_type")
@click.argument("workflow_id")
@pass_settings
def export(settings: Settings, workflow_type: str, workflow_id: str) -> None:
    """Print one instance's events as stored, as JSON: `history export TYPE ID > tests/histories/ID.json`."""
    with settings.store() as store:
        document = export_history(settings.app().service(store), workflow_type, workflow_id)
    click.echo(json.dumps(document, indent=2, ensure_ascii=False))


@click.group(cls=Group)
def snapshots() -> None:
    """Check snapshots against the current `evolve`."""


@snapshots.command("verify")
@click.argument("workflow_type")
@option(
    "--drop",
    is_flag=True,
    default=False,
    help="Replace each snapshot that does not match by a fresh fold at the last event.",
)
@pass_settings
def verify(settings: Settings, workflow_type: str, drop: bool) -> int:
    """Fold every instance with a snapshot from its first event and compare with the snapshot.

    Reports ok, mismatch (the fields that differ), other_version, unreadable or version_not_loaded per
    instance; each instance is folded by its own version's code. Exits 3 when a mismatching snapshot is left
    (not dropped), a history is unreadable, or an instance's version is not registered by the app (its
    snapshot was not checked). --drop replaces each mismatching
    snapshot with the state folded from scratch at the last event; running workers pick it up.
    """
    with settings.store() as store:
        checks = list(verify_snapshots(settings.app().service(store), workflow_type, drop=drop))
    counts = {s.value: sum(c.status is s for c in checks) for s in SnapshotStatus}
    lines = [
        f"{c.workflow_id} @{c.seq}: {c.status.value}"
        + (f" ({c.detail})" if c.detail else "")
        + (" dropped" if c.dropped else "")
        for c in checks
        if c.status is not SnapshotStatus.OK
    ]
    summary = f"{workflow_type}: {len(checks)} snapshots: " + ", ".join(f"{n} {k}" for k, n in counts.items() if n)
    settings.emit(
        {"counts": counts, "checks": [{**attrs.asdict(c), "status": c.status.value} for c in checks]},
        "\n".join([*lines, summary]),
    )
    left = any(
        (c.status is SnapshotStatus.MISMATCH and not c.dropped)
        or c.status in (SnapshotStatus.UNREADABLE, SnapshotStatus.VERSION_NOT_LOADED)
        for c in checks
    )
    return MISMATCH_EXIT if left else 0
