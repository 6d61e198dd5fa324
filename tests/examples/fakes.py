"""Recording stand-ins for the outside world the example handlers call (mail, directory, payments)."""

from __future__ import annotations

from collections import Counter

from ironflow_py.examples.order_saga import PaymentDeclined


class RecordingServices:
    """Counts every call by (what, key): a repeated idempotency key would show up as a count of 2."""

    def __init__(self, charge_failures: int = 0, charge_error: Exception | None = None) -> None:
        self.calls: Counter[tuple[str, str]] = Counter()
        self.charge_failures = charge_failures
        self.charge_error = charge_error

    def send_email(self, to: str, template: str, idempotency_key: str) -> str:
        self.calls[(template, idempotency_key)] += 1
        return f"msg-{template}"

    def mark_verified(self, user_id: str, idempotency_key: str) -> None:
        self.calls[("mark_verified", idempotency_key)] += 1

    def charge(self, order_id: str, amount_cents: int, idempotency_key: str) -> None:
        self.calls[("charge", idempotency_key)] += 1
        if self.charge_error is not None:
            raise self.charge_error
        if self.charge_failures > 0:
            self.charge_failures -= 1
            raise PaymentDeclined("card network timeout", retryable=True)

    def ship(self, order_id: str, idempotency_key: str) -> str:
        self.calls[("ship", idempotency_key)] += 1
        return f"TRK-{order_id}"

    def refund(self, order_id: str, amount_cents: int, idempotency_key: str) -> None:
        self.calls[("refund", idempotency_key)] += 1

    def count(self, what: str) -> int:
        return sum(n for (kind, _), n in self.calls.items() if kind == what)
