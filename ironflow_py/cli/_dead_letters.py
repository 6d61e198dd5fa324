"""`dead-letters list|count|retry|discard`: effects that failed for good."""

from __future__ import annotations

import attrs
import click

from ironflow_py.cli._base import Group, Settings, indented, option, pass_settings
from ironflow_py.effects._dead_letters import DeadLetters


@click.group("dead-letters", cls=Group)
def dead_letters() -> None:
    """Dead-lettered effects."""


@dead_letters.command("list")
@option("--limit", type=int, default=50, show_default=True, help="At most this many.")
@pass_settings
def list_(settings: Settings, limit: int) -> None:
    """List dead letters, oldest first, each with its error and the traceback of its last attempt."""
    with settings.store() as store:
        rows = DeadLetters(store).list(limit=limit)
    lines: list[str] = []
    for r in rows:
        lines.append(
            f"{r.id:<8} {r.workflow_type}/{r.workflow_id} {r.effect_type} attempts {r.attempts}: {r.last_error}"
        )
        if r.last_traceback:
            lines += indented(r.last_traceback, "    ")
    settings.emit([attrs.asdict(r) for r in rows], "\n".join(lines) or "no dead letters")


@dead_letters.command()
@pass_settings
def count(settings: Settings) -> None:
    """How many effects are dead."""
    with settings.store() as store:
        n = DeadLetters(store).count()
    settings.emit({"count": n}, str(n))


@dead_letters.command()
@click.argument("effect_id", type=int)
@pass_settings
def retry(settings: Settings, effect_id: int) -> None:
    """Run a dead effect again with a fresh attempt count."""
    with settings.store() as store:
        DeadLetters(store).retry(effect_id)
    settings.emit({"retried": effect_id}, f"effect {effect_id} is pending again")


@dead_letters.command()
@click.argument("effect_id", type=int)
@pass_settings
def discard(settings: Settings, effect_id: int) -> None:
    """Delete a dead effect for good."""
    with settings.store() as store:
        DeadLetters(store).discard(effect_id)
    settings.emit({"discarded": effect_id}, f"effect {effect_id} discarded")
