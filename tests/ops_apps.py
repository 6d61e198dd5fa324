"""Apps for the operations CLI tests: `saga` (the order saga with a flaky gateway) and `both` (the apps of
tests/ops_fixtures.py), plus authorize hooks for `ironflow-py web --authorize`."""

from __future__ import annotations

from typing import Any

from ironflow_py import App
from ironflow_py.effects import RetryPolicy
from ironflow_py.examples.greeting import GreetingWorkflow
from ironflow_py.examples.order_saga import OrderSagaWorkflow, PaymentDeclined, saga_effects
from tests.ops_fixtures import effects


class FlakyGateway:
    """The first charge call fails like a network error (the effect is retried by its RetryPolicy), the
    second is declined with a retryable error (the saga retries it with a durable timer), the rest pass."""

    def __init__(self) -> None:
        self.charges = 0

    def charge(self, order_id: str, amount_cents: int, idempotency_key: str) -> None:
        self.charges += 1
        if self.charges == 1:
            raise ConnectionError("gateway connection reset")
        if self.charges == 2:
            raise PaymentDeclined("card network timeout", retryable=True)

    def ship(self, order_id: str, idempotency_key: str) -> str:
        return f"TRK-{order_id}"

    def refund(self, order_id: str, amount_cents: int, idempotency_key: str) -> None:
        pass


CHARGE_POLICY = RetryPolicy(max_attempts=5, base_delay=0.05, jitter=False)

saga = App(workflows=[OrderSagaWorkflow], effects=saga_effects(FlakyGateway(), charge_policy=CHARGE_POLICY))
both = App(workflows=[OrderSagaWorkflow, GreetingWorkflow], effects=effects())


def allow_all(request: Any, action: str) -> bool:
    """An authorize hook that lets every action through."""
    return True
