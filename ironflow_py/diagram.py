"""State-machine diagrams: a workflow's declared states and transitions, and the path one instance took.

A workflow opts in by returning a `StateMachine` from `describe()`; `state_name(state)` names the state an
instance is in, which is how the per-instance path is read off its history. Rendering is pure text:
Mermaid `stateDiagram-v2` and Graphviz DOT.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

import attrs

from ironflow_py.lifecycle import RESERVED_PREFIX
from ironflow_py.workflow import AnyWorkflow


@attrs.frozen
class Transition:
    """`source` --on--> `target`, emitting these effects, scheduling / cancelling these timers, starting
    these children and sending these messages (each named as the label should show it)."""

    source: str
    target: str
    on: str
    effects: tuple[str, ...] = ()
    timers: tuple[str, ...] = ()
    cancels: tuple[str, ...] = ()
    children: tuple[str, ...] = ()
    messages: tuple[str, ...] = ()

    def label(self) -> str:
        parts = [self.on]
        extras = [
            *self.effects,
            *(f"timer {t}" for t in self.timers),
            *(f"cancel {t}" for t in self.cancels),
            *(f"child {c}" for c in self.children),
            *(f"send {m}" for m in self.messages),
        ]
        if extras:
            parts.append(" / " + ", ".join(extras))
        return "".join(parts)


@attrs.frozen
class StateMachine:
    initial: str
    transitions: tuple[Transition, ...]
    terminal: frozenset[str] = frozenset()

    @property
    def states(self) -> tuple[str, ...]:
        """Every state named anywhere, initial first, in order of first mention."""
        names = [self.initial]
        for t in self.transitions:
            names += [t.source, t.target]
        names += sorted(self.terminal)
        return tuple(dict.fromkeys(names))


@attrs.frozen
class Step:
    """One step of an instance's path: the event at `seq` moved it from `source` to `target`."""

    seq: int
    event_type: str
    source: str
    target: str


def _ident(name: str) -> str:
    return re.sub(r"\W", "_", name) or "_"


def _mermaid_text(text: str) -> str:
    # Mermaid ends a label at a newline, splits statements at ';' and labels at ':': use entity codes.
    return text.replace("\n", " ").replace(";", "#59;").replace(":", "#58;")


def _state_decls(names: Iterable[str]) -> list[str]:
    return [f'    state "{_mermaid_text(n)}" as {_ident(n)}' for n in names if _ident(n) != n]


def to_mermaid(machine: StateMachine) -> str:
    lines = ["stateDiagram-v2", *_state_decls(machine.states), f"    [*] --> {_ident(machine.initial)}"]
    for t in machine.transitions:
        lines.append(f"    {_ident(t.source)} --> {_ident(t.target)}: {_mermaid_text(t.label())}")
    lines += [f"    {_ident(s)} --> [*]" for s in sorted(machine.terminal)]
    return "\n".join(lines) + "\n"


def _dot_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(machine: StateMachine, name: str = "workflow") -> str:
    lines = [f"digraph {_dot_quote(name)} {{", "    rankdir=LR;", '    __start [shape=point, label=""];']
    for state in machine.states:
        shape = "doublecircle" if state in machine.terminal else "circle"
        lines.append(f"    {_dot_quote(state)} [shape={shape}];")
    lines.append(f"    __start -> {_dot_quote(machine.initial)};")
    for t in machine.transitions:
        lines.append(f"    {_dot_quote(t.source)} -> {_dot_quote(t.target)} [label={_dot_quote(t.label())}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def instance_path(workflow: AnyWorkflow, events: Sequence[tuple[int, str, Any]]) -> list[Step]:
    """Fold (seq, type name, event) triples and record each state change; events that keep the state are kept
    as self-steps so the path shows every event."""
    state = workflow.initial_state()
    current = workflow.state_name(state)
    steps = []
    for seq, event_type, event in events:
        if event_type.startswith(RESERVED_PREFIX):
            # A lifecycle event the engine wrote (`ironflow.terminated/1`): `evolve` never sees it; the
            # instance ends in the state it names.
            target = event_type[len(RESERVED_PREFIX) :].split("/", 1)[0]
        else:
            state = workflow.evolve(state, event)
            target = workflow.state_name(state)
        steps.append(Step(seq, event_type, current, target))
        current = target
    return steps


def path_to_mermaid(steps: Sequence[Step], initial: str, terminal: bool) -> str:
    names = [initial, *(s.target for s in steps)]
    lines = ["stateDiagram-v2", *_state_decls(dict.fromkeys(names)), f"    [*] --> {_ident(initial)}"]
    for s in steps:
        lines.append(f"    {_ident(s.source)} --> {_ident(s.target)}: #{s.seq} {_mermaid_text(s.event_type)}")
    if terminal and steps:
        lines.append(f"    {_ident(steps[-1].target)} --> [*]")
    return "\n".join(lines) + "\n"


def path_to_dot(steps: Sequence[Step], initial: str, terminal: bool, name: str = "instance") -> str:
    lines = [f"digraph {_dot_quote(name)} {{", "    rankdir=LR;", '    __start [shape=point, label=""];']
    last = steps[-1].target if steps else initial
    for state in dict.fromkeys([initial, *(s.target for s in steps)]):
        shape = "doublecircle" if terminal and state == last else "circle"
        lines.append(f"    {_dot_quote(state)} [shape={shape}];")
    lines.append(f"    __start -> {_dot_quote(initial)};")
    for s in steps:
        label = _dot_quote(f"#{s.seq} {s.event_type}")
        lines.append(f"    {_dot_quote(s.source)} -> {_dot_quote(s.target)} [label={label}];")
    lines.append("}")
    return "\n".join(lines) + "\n"
