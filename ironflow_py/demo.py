"""`ironflow-py demo`: one order taken end to end on a real PostgreSQL, then the whole loop (effects, a
durable timer, outcomes returned by `wait`) with the effect runtime running in-process."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from ironflow_py.effects import EffectRuntime
from ironflow_py.errors import WorkflowFailed
from ironflow_py.examples.greeting import Approval, GreetingWorkflow, StartGreeting, greeting_effects
from ironflow_py.examples.orders import (
    ApproveOrder,
    CancelOrder,
    Line,
    OrderWorkflow,
    PlaceOrder,
    ShipOrder,
)
from ironflow_py.lifecycle import RunOutcome
from ironflow_py.records import Outcome
from ironflow_py.service import WorkflowService
from ironflow_py.store.postgres import PostgresStore


def run_demo(store: PostgresStore, out: Callable[[str], None] = print) -> Outcome[Any, Any]:
    """Place, approve and ship one order, showing a rejection, a duplicate and the terminal state."""
    service = WorkflowService(store, workflows=[OrderWorkflow])
    order_id = f"order-{uuid.uuid4().hex[:8]}"
    lines = (Line("espresso-beans-1kg", 2, 1_850), Line("grinder-burr-set", 1, 4_900))
    steps: list[tuple[str, object]] = [
        ("place the order", PlaceOrder(order_id, "ada@example.com", lines, request_id="req-1")),
        ("ship before approval", ShipOrder(order_id, "TRK-1")),
        (
            "place it again (same request id)",
            PlaceOrder(order_id, "ada@example.com", lines, request_id="req-1"),
        ),
        ("approve", ApproveOrder(order_id, "grace")),
        ("ship", ShipOrder(order_id, "TRK-1")),
        ("cancel after shipping", CancelOrder(order_id, "changed my mind")),
    ]
    out(f"workflow 'order', instance {order_id!r}\n")
    outcome: Outcome[Any, Any] | None = None
    for label, command in steps:
        outcome = service.execute(command)
        detail = ""
        if outcome.events:
            detail = "events " + ", ".join(f"#{e.seq} {e.type_name}" for e in outcome.events)
            if outcome.effect_ids:
                detail += f"; effects queued {list(outcome.effect_ids)}"
        elif outcome.reason is not None:
            detail = f"reason {outcome.reason!r}"
        elif outcome.first_status is not None:
            detail = f"first outcome was {outcome.first_status.value}"
        out(f"  {label:<34} -> {outcome.status.value:<17} {detail}")
    out("\nhistory:")
    for event in service.history("order", order_id):
        out(
            f"  #{event.seq} pos {event.position:<6} {event.recorded_at:%H:%M:%S} {event.type_name:<20} {event.event!r}"
        )
    info = service.instance("order", order_id)
    out(f"\nstate ({info.status.value if info else 'unknown'}): {service.state('order', order_id)!r}")
    assert outcome is not None
    return outcome


def run_loop_demo(store: PostgresStore, out: Callable[[str], None] = print) -> tuple[RunOutcome, RunOutcome]:
    """Run the whole loop in-process: two greetings, the real effect runtime, a durable timer, `wait`.

    One greeting is approved and ends `completed` with its text as the result; the other is refused and
    ends `failed`. Effects run on an `EffectRuntime` in a thread of this process, against the same database;
    the one-second timer of each greeting fires through it too. Takes about two seconds.

    Args:
        store: a migrated store.
        out: where to print.

    Returns:
        The two outcomes, as `wait` returned them: (completed, failed).
    """
    service = WorkflowService(store, workflows=[GreetingWorkflow])
    runtime = EffectRuntime(service, greeting_effects(), handle_signals=False, poll_interval=0.2, grace=5.0)
    worker = threading.Thread(target=runtime.run, name="ironflow-demo-worker", daemon=True)
    worker.start()
    suffix = uuid.uuid4().hex[:6]
    ada, bob = f"greet-ada-{suffix}", f"greet-bob-{suffix}"
    out("\nthe whole loop: two greetings, effects run by an in-process worker, a 1 s durable timer each")
    try:
        for label, input in (
            ("start greeting Ada", StartGreeting(ada, "Ada")),
            ("approve Ada early (kept until the wait ends)", Approval(ada, True)),
            ("start greeting Bob", StartGreeting(bob, "Bob")),
            ("refuse Bob early", Approval(bob, False)),
        ):
            out(f"  {label:<46} -> {service.execute(input).status.value}")
        started = time.monotonic()
        completed = service.wait("greeting", ada, timeout=30)
        failed = service.wait("greeting", bob, timeout=30)
        out(f"  both closed after {time.monotonic() - started:.1f} s (wait returned on the close notification)")
    finally:
        runtime.stop()
        worker.join(10)
    for workflow_id, outcome in ((ada, completed), (bob, failed)):
        out(f"\n{workflow_id}: {outcome!r}")
        for event in service.history("greeting", workflow_id):
            out(f"  #{event.seq} {event.recorded_at:%H:%M:%S.%f} {event.type_name:<26} {event.event!r}")
    out(f"\n{ada}: wait(...).unwrap() -> {completed.unwrap()!r}")
    try:
        failed.unwrap()
    except WorkflowFailed as exc:
        out(f"{bob}: wait(...).unwrap() raised {type(exc).__name__}: {exc}")
    return completed, failed
