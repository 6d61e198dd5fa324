"""A database holding instances in every state an operator looks for, for the web view's tests.

Order saga and greeting instances on a ManualClock, driven by the real EffectRuntime:
- `order-saga/o-shipped`: completed, every effect done;
- `order-saga/o-dead`: its charge effect is dead (the gateway raised, one attempt allowed), and the
  saga was told through `dead_letter_input`, so it ended cancelled;
- `order-saga/o-overdue`: a declined charge scheduled `retry-payment`, and no worker fired it: overdue;
- `order-saga/o-pending`: its charge effect waits for a worker;
- `greeting/g-waiting`: greeted, wait over, nothing pending: it waits for an Approval from outside.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import attrs

from ironflow_py import ManualClock, PostgresStore, WorkflowService
from ironflow_py.effects import EffectRegistry, EffectRuntime, RetryPolicy
from ironflow_py.examples.greeting import Greet, GreetingWorkflow, StartGreeting, greet
from ironflow_py.examples.order_saga import (
    ApprovalDecision,
    OrderSagaWorkflow,
    PaymentDeclined,
    StartCheckout,
    saga_effects,
)

T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)


class ScriptedGateway:
    """Charges succeed, except: order ids starting `o-dead` raise (a crash, not a decline), and `o-overdue`
    is declined once with a retryable error."""

    def __init__(self) -> None:
        self.declined: set[str] = set()

    def charge(self, order_id: str, amount_cents: int, idempotency_key: str) -> None:
        if order_id.startswith("o-dead"):
            raise RuntimeError("gateway exploded")
        if order_id == "o-overdue" and order_id not in self.declined:
            self.declined.add(order_id)
            raise PaymentDeclined("card network timeout", retryable=True)

    def ship(self, order_id: str, idempotency_key: str) -> str:
        return f"TRK-{order_id}"

    def refund(self, order_id: str, amount_cents: int, idempotency_key: str) -> None:
        pass


def effects() -> EffectRegistry:
    registry = saga_effects(ScriptedGateway(), charge_policy=RetryPolicy(max_attempts=1))
    registry.register(Greet, greet)
    return registry


@attrs.frozen
class Populated:
    service: WorkflowService
    clock: ManualClock
    runtime: EffectRuntime


def drain(rt: EffectRuntime) -> None:
    while rt.run_once() > 0:
        pass


def populate(store: PostgresStore) -> Populated:
    """Write the instances listed in the module docstring; the clock ends 10 minutes after the last step."""
    clock = ManualClock(T0)
    service = WorkflowService(store, workflows=[OrderSagaWorkflow, GreetingWorkflow], clock=clock)
    rt = EffectRuntime(
        service, effects(), handle_signals=False, listen=False, rng=random.Random(0), worker_id="w1", concurrency=2
    )
    service.execute(StartCheckout("o-shipped", 1_000))
    service.execute(StartCheckout("o-dead", 2_000))
    service.execute(StartGreeting("g-waiting", "Grace"))
    drain(rt)
    clock.advance(timedelta(seconds=2))
    drain(rt)  # the greeting's one-second wait ends: it now waits for an Approval
    service.execute(ApprovalDecision("o-shipped", True))
    drain(rt)
    service.execute(StartCheckout("o-overdue", 3_000))
    drain(rt)  # declined once: `retry-payment` is due in 2 s, and no worker will fire it
    service.execute(StartCheckout("o-pending", 4_000))
    clock.advance(timedelta(minutes=10))
    return Populated(service, clock, rt)
