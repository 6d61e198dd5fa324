"""`ironflow-py demo`: one order taken end to end on a real PostgreSQL, printed as it goes."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from ironflow_py.examples.orders import (
    ApproveOrder,
    CancelOrder,
    Line,
    OrderWorkflow,
    PlaceOrder,
    ShipOrder,
)
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
