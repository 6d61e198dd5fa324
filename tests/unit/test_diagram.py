"""Diagrams: declared state machines and instance paths render as Mermaid and DOT text."""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime

import pytest

from ironflow_py.diagram import (
    StateMachine,
    Step,
    Transition,
    instance_path,
    path_to_dot,
    path_to_mermaid,
    to_dot,
    to_mermaid,
)
from ironflow_py.examples.orders import Line, OrderApproved, OrderPlaced, OrderShipped, OrderWorkflow

MACHINE = StateMachine(
    initial="idle",
    transitions=(
        Transition("idle", "running", "Start", ("Notify",), ("deadline",)),
        Transition("running", "done", "Finish", cancels=("deadline",)),
    ),
    terminal=frozenset({"done"}),
)


def test_mermaid_lists_start_transitions_with_effects_and_timers_and_terminal_states() -> None:
    assert to_mermaid(MACHINE) == (
        "stateDiagram-v2\n"
        "    [*] --> idle\n"
        "    idle --> running: Start / Notify, timer deadline\n"
        "    running --> done: Finish / cancel deadline\n"
        "    done --> [*]\n"
    )


def test_state_names_that_are_not_identifiers_get_declared_labels() -> None:
    machine = StateMachine("waiting for: approval", (Transition("waiting for: approval", "ok", "Approve"),))
    text = to_mermaid(machine)
    assert 'state "waiting for#58; approval" as waiting_for__approval' in text
    assert "[*] --> waiting_for__approval" in text


def test_dot_marks_terminal_states_and_escapes_quotes() -> None:
    machine = StateMachine('say "hi"', (Transition('say "hi"', "end", "Go"),), frozenset({"end"}))
    text = to_dot(machine, "w")
    assert '"say \\"hi\\"" -> "end" [label="Go"];' in text
    assert '"end" [shape=doublecircle];' in text
    assert text.startswith('digraph "w" {') and text.endswith("}\n")


def test_instance_path_follows_the_history() -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    history = [
        (1, "order.placed/1", OrderPlaced("ada", (Line("x", 1, 1),), 1, at)),
        (2, "order.approved/1", OrderApproved("g")),
        (3, "order.shipped/1", OrderShipped("T")),
    ]
    steps = instance_path(OrderWorkflow(), history)
    assert steps == [
        Step(1, "order.placed/1", "new", "placed"),
        Step(2, "order.approved/1", "placed", "approved"),
        Step(3, "order.shipped/1", "approved", "shipped"),
    ]
    mermaid = path_to_mermaid(steps, "new", terminal=True)
    assert "    placed --> approved: #2 order.approved/1\n" in mermaid and mermaid.endswith("shipped --> [*]\n")
    assert '"shipped" [shape=doublecircle];' in path_to_dot(steps, "new", terminal=True)


def test_a_lifecycle_event_ends_the_path_without_calling_evolve() -> None:
    """`evolve` never sees `ironflow.terminated/1` (it would raise on it): the path ends in `terminated`."""
    from ironflow_py.lifecycle import TERMINATED_EVENT, InstanceTerminated

    at = datetime(2026, 1, 1, tzinfo=UTC)
    history = [
        (1, "order.placed/1", OrderPlaced("ada", (Line("x", 1, 1),), 1, at)),
        (2, TERMINATED_EVENT, InstanceTerminated("duplicate order")),
    ]
    assert instance_path(OrderWorkflow(), history)[-1] == Step(2, TERMINATED_EVENT, "placed", "terminated")


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is not installed on this machine")
def test_graphviz_accepts_the_dot_output() -> None:
    machine = OrderWorkflow().describe()
    assert machine is not None
    result = subprocess.run(
        ["dot", "-Tsvg"], input=to_dot(machine, "order"), capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "approval&#45;deadline" in result.stdout or "approval-deadline" in result.stdout


def test_a_transition_label_names_the_children_it_starts_and_the_messages_it_sends() -> None:
    t = Transition("new", "waiting", "FanOut", ("Audit",), children=("task per item",), messages=("Ping",))
    assert t.label() == "FanOut / Audit, child task per item, send Ping"
