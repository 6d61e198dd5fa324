"""An instance's path drawn as a small SVG: one box per state visited, arrows labelled with the events.

The machine has no network and the page loads nothing from a CDN, so the Mermaid text from
`ironflow_py.diagram` is shown as source next to this drawing, which needs no script at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

import attrs

from ironflow_py.diagram import Step

_WIDTH = 640
_BOX_W = 260
_BOX_H = 34
_LINE = 16
_GAP = 30


@attrs.frozen
class Visit:
    """A stay in one state: the event that led there (None for the initial state) and the events that
    happened while it stayed."""

    state: str
    arrived_by: str | None
    stayed: tuple[str, ...] = ()


def visits(steps: Sequence[Step], initial: str) -> list[Visit]:
    """Group a path into visits: a step into a different state starts a new visit, a step that keeps the
    state is listed under the current one."""
    out = [Visit(initial, None)]
    for step in steps:
        label = f"#{step.seq} {step.event_type}"
        if step.target == out[-1].state and step.source == step.target:
            out[-1] = attrs.evolve(out[-1], stayed=(*out[-1].stayed, label))
        else:
            out.append(Visit(step.target, label))
    return out


def path_svg(steps: Sequence[Step], initial: str, terminal: bool) -> str:
    """The path as an SVG document fragment (safe to embed: every text is escaped).

    Args:
        steps: the instance's path, from `diagram.instance_path`.
        initial: the initial state's name.
        terminal: whether the instance has ended (its last state is drawn with a double border).

    Returns:
        An `<svg>` element as text.
    """
    parts: list[str] = []
    x = (_WIDTH - _BOX_W) // 2
    y = 10
    all_visits = visits(steps, initial)
    for i, visit in enumerate(all_visits):
        if visit.arrived_by is not None:
            top = y
            y += _GAP + _LINE
            mid = x + _BOX_W // 2
            parts.append(
                f'<line x1="{mid}" y1="{top}" x2="{mid}" y2="{y - 4}" class="edge" marker-end="url(#arrow)"/>'
                f'<text x="{mid + 10}" y="{top + _GAP // 2 + 10}" class="edge-label">{escape(visit.arrived_by)}</text>'
            )
        last = i == len(all_visits) - 1
        height = _BOX_H + _LINE * len(visit.stayed)
        css = "state current" if last else "state"
        parts.append(f'<rect x="{x}" y="{y}" width="{_BOX_W}" height="{height}" rx="8" class="{css}"/>')
        if last and terminal:
            parts.append(
                f'<rect x="{x + 4}" y="{y + 4}" width="{_BOX_W - 8}" height="{height - 8}" rx="6" class="terminal"/>'
            )
        parts.append(
            f'<text x="{x + _BOX_W // 2}" y="{y + 22}" class="state-name" text-anchor="middle">'
            f"{escape(visit.state)}</text>"
        )
        for j, label in enumerate(visit.stayed):
            parts.append(
                f'<text x="{x + _BOX_W // 2}" y="{y + _BOX_H + 10 + j * _LINE}" class="stay" text-anchor="middle">'
                f"{escape(label)}</text>"
            )
        y += height
    total = y + 10
    defs = (
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="8" markerHeight="8" '
        'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" class="arrow-head"/></marker></defs>'
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="path" width="100%" style="max-width: {_WIDTH}px" '
        f'viewBox="0 0 {_WIDTH} {total}" role="img" aria-label="path of this instance">{defs}{"".join(parts)}</svg>'
    )
