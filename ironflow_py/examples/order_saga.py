"""Order saga: charge (retrying with a backoff the workflow computes and records), wait for approval with a
deadline, then ship, or refund and end cancelled.

The payment gateway reports failures as data (`PaymentResult`); a retryable failure is recorded with the
delay the workflow chose (`PaymentAttemptFailed.retry_in_seconds`) and retried by a durable timer. If the
charge effect itself is dead-lettered, `dead_letter_input` turns that into a final failed `PaymentResult`,
so the saga never waits forever.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol

import attrs

from ironflow_py import App, Decision, Workflow
from ironflow_py.diagram import StateMachine, Transition
from ironflow_py.effects import EffectContext, EffectRegistry, RetryPolicy
from ironflow_py.lifecycle import Cancelled, CancelRequest, Completed, RunOutcome

PAYMENT_ATTEMPTS = 4
RETRY_BASE = timedelta(seconds=2)
APPROVAL_TIMEOUT = timedelta(hours=48)


def payment_backoff(attempt: int) -> timedelta:
    """Delay after failed attempt `attempt`: 2 s, 4 s, 8 s ... (deterministic: it is part of a decision)."""
    return RETRY_BASE * (1 << (attempt - 1))


@attrs.frozen
class StartCheckout:
    order_id: str
    amount_cents: int


@attrs.frozen
class PaymentResult:
    """Returned by the charge handler (or by `dead_letter_input` when the charge effect died)."""

    order_id: str
    attempt: int
    ok: bool
    error: str | None = None
    retryable: bool = False


@attrs.frozen
class RetryPayment:
    order_id: str
    attempt: int


@attrs.frozen
class ApprovalDecision:
    order_id: str
    approved: bool
    reason: str = ""


@attrs.frozen
class ApprovalTimeout:
    order_id: str


@attrs.frozen
class Shipped:
    order_id: str
    tracking: str


@attrs.frozen
class Refunded:
    order_id: str


SagaInput = StartCheckout | PaymentResult | RetryPayment | ApprovalDecision | ApprovalTimeout | Shipped | Refunded


@attrs.frozen
class CheckoutStarted:
    amount_cents: int


@attrs.frozen
class PaymentAttemptFailed:
    attempt: int
    error: str
    retry_in_seconds: float | None  # None: no retry (not retryable, or out of attempts)


@attrs.frozen
class PaymentRetried:
    attempt: int


@attrs.frozen
class PaymentCaptured:
    attempt: int
    approve_by: datetime


@attrs.frozen
class OrderApproved:
    pass


@attrs.frozen
class OrderRejected:
    reason: str


@attrs.frozen
class ShipmentConfirmed:
    tracking: str


@attrs.frozen
class RefundIssued:
    pass


@attrs.frozen
class SagaFinished:
    outcome: str  # "shipped" or "cancelled"


SagaEvent = (
    CheckoutStarted
    | PaymentAttemptFailed
    | PaymentRetried
    | PaymentCaptured
    | OrderApproved
    | OrderRejected
    | ShipmentConfirmed
    | RefundIssued
    | SagaFinished
)


@attrs.frozen
class ChargePayment:
    order_id: str
    amount_cents: int
    attempt: int


@attrs.frozen
class ShipOrder:
    order_id: str


@attrs.frozen
class RefundPayment:
    order_id: str
    amount_cents: int


SagaEffect = ChargePayment | ShipOrder | RefundPayment


@attrs.frozen
class SagaState:
    status: str = "new"  # new, charging, awaiting_approval, shipping, refunding, shipped, cancelled
    amount_cents: int = 0
    attempt: int = 0
    failures: tuple[str, ...] = ()
    reason: str | None = None
    tracking: str | None = None


def saga_result(state: SagaState) -> dict[str, object]:
    return {"status": state.status, "attempts": state.attempt, "reason": state.reason, "tracking": state.tracking}


class OrderSagaWorkflow(Workflow[SagaState, SagaInput, SagaEvent, SagaEffect]):
    type = "order-saga"
    inputs = {
        "saga.start_checkout/1": StartCheckout,
        "saga.payment_result/1": PaymentResult,
        "saga.retry_payment/1": RetryPayment,
        "saga.approval_decision/1": ApprovalDecision,
        "saga.approval_timeout/1": ApprovalTimeout,
        "saga.shipped/1": Shipped,
        "saga.refunded/1": Refunded,
    }
    events = {
        "saga.checkout_started/1": CheckoutStarted,
        "saga.payment_attempt_failed/1": PaymentAttemptFailed,
        "saga.payment_retried/1": PaymentRetried,
        "saga.payment_captured/1": PaymentCaptured,
        "saga.order_approved/1": OrderApproved,
        "saga.order_rejected/1": OrderRejected,
        "saga.shipment_confirmed/1": ShipmentConfirmed,
        "saga.refund_issued/1": RefundIssued,
        "saga.finished/1": SagaFinished,
    }
    effects = {
        "saga.charge_payment/1": ChargePayment,
        "saga.ship_order/1": ShipOrder,
        "saga.refund_payment/1": RefundPayment,
    }

    def initial_state(self) -> SagaState:
        return SagaState()

    def workflow_id(self, input: SagaInput) -> str:
        return input.order_id

    def outcome(self, state: SagaState) -> RunOutcome | None:
        """Completed with the tracking number once shipped; Cancelled (with why) after a refund or a failed payment."""
        if state.status == "shipped":
            return Completed({"tracking": state.tracking})
        if state.status == "cancelled":
            return Cancelled(state.reason)
        return None

    def cancel_input(self, request: CancelRequest) -> SagaInput | None:
        """A cancel request is a rejection of the approval: the refund is the saga's ordinary compensation."""
        return ApprovalDecision(request.workflow_id, approved=False, reason=request.reason)

    def dead_letter_input(self, effect: SagaEffect, error: str) -> SagaInput | None:
        if isinstance(effect, ChargePayment):
            return PaymentResult(effect.order_id, effect.attempt, ok=False, error=error, retryable=False)
        return None

    def evolve(self, state: SagaState, event: SagaEvent) -> SagaState:
        match event:
            case CheckoutStarted(amount_cents=amount):
                return attrs.evolve(state, status="charging", amount_cents=amount, attempt=1)
            case PaymentAttemptFailed(error=error, retry_in_seconds=retry):
                status = state.status if retry is not None else "cancelled"
                reason = None if retry is not None else f"payment failed: {error}"
                return attrs.evolve(state, status=status, failures=(*state.failures, error), reason=reason)
            case PaymentRetried(attempt=attempt):
                return attrs.evolve(state, attempt=attempt)
            case PaymentCaptured():
                return attrs.evolve(state, status="awaiting_approval")
            case OrderApproved():
                return attrs.evolve(state, status="shipping")
            case OrderRejected(reason=reason):
                return attrs.evolve(state, status="refunding", reason=reason)
            case ShipmentConfirmed(tracking=tracking):
                return attrs.evolve(state, tracking=tracking)
            case RefundIssued():
                return state
            case SagaFinished(outcome=outcome):
                return attrs.evolve(state, status=outcome)
        raise TypeError(f"unexpected event {event!r}")

    def decide(self, now: datetime, state: SagaState, input: SagaInput) -> Decision[SagaEvent, SagaEffect]:
        oid = input.order_id
        match input:
            case StartCheckout(amount_cents=amount):
                if state.status != "new":
                    return Decision.reject(f"checkout {oid} already started")
                return Decision.accept(CheckoutStarted(amount)).with_effect(ChargePayment(oid, amount, 1))
            case PaymentResult(attempt=attempt) if state.status != "charging" or attempt != state.attempt:
                return Decision.accept()  # a stale or repeated result: already applied
            case PaymentResult(ok=True, attempt=attempt):
                approve_by = now + APPROVAL_TIMEOUT
                return Decision.accept(PaymentCaptured(attempt, approve_by)).with_timer(
                    "approval-deadline", approve_by, ApprovalTimeout(oid)
                )
            case PaymentResult(attempt=attempt, error=error, retryable=retryable):
                if retryable and attempt < PAYMENT_ATTEMPTS:
                    delay = payment_backoff(attempt)
                    return Decision.accept(
                        PaymentAttemptFailed(attempt, error or "unknown", delay.total_seconds())
                    ).with_timer("retry-payment", now + delay, RetryPayment(oid, attempt + 1))
                return Decision.accept(PaymentAttemptFailed(attempt, error or "unknown", None))
            case RetryPayment(attempt=attempt):
                if state.status != "charging" or attempt != state.attempt + 1:
                    return Decision.accept()
                return Decision.accept(PaymentRetried(attempt)).with_effect(
                    ChargePayment(oid, state.amount_cents, attempt)
                )
            case ApprovalDecision(approved=approved, reason=reason):
                if state.status != "awaiting_approval":
                    return Decision.reject(f"order {oid} is not awaiting approval (status {state.status})")
                if approved:
                    return (
                        Decision.accept(OrderApproved()).with_effect(ShipOrder(oid)).cancel_timer("approval-deadline")
                    )
                return (
                    Decision.accept(OrderRejected(reason or "rejected"))
                    .with_effect(RefundPayment(oid, state.amount_cents))
                    .cancel_timer("approval-deadline")
                )
            case ApprovalTimeout() if state.status == "awaiting_approval":
                return Decision.accept(OrderRejected("approval deadline passed")).with_effect(
                    RefundPayment(oid, state.amount_cents)
                )
            case Shipped(tracking=tracking) if state.status == "shipping":
                return Decision.accept(ShipmentConfirmed(tracking), SagaFinished("shipped"))
            case Refunded() if state.status == "refunding":
                return Decision.accept(RefundIssued(), SagaFinished("cancelled"))
        return Decision.accept()

    def describe(self) -> StateMachine:
        return StateMachine(
            initial="new",
            transitions=(
                Transition("new", "charging", "StartCheckout", ("ChargePayment",)),
                Transition("charging", "charging", "PaymentResult(retryable failure)", timers=("retry-payment",)),
                Transition("charging", "charging", "RetryPayment", ("ChargePayment",)),
                Transition("charging", "awaiting_approval", "PaymentResult(ok)", timers=("approval-deadline",)),
                Transition("charging", "cancelled", "PaymentResult(final failure)"),
                Transition(
                    "awaiting_approval",
                    "shipping",
                    "ApprovalDecision(yes)",
                    ("ShipOrder",),
                    cancels=("approval-deadline",),
                ),
                Transition(
                    "awaiting_approval",
                    "refunding",
                    "ApprovalDecision(no)",
                    ("RefundPayment",),
                    cancels=("approval-deadline",),
                ),
                Transition("awaiting_approval", "refunding", "ApprovalTimeout", ("RefundPayment",)),
                Transition("shipping", "shipped", "Shipped"),
                Transition("refunding", "cancelled", "Refunded"),
            ),
            terminal=frozenset({"shipped", "cancelled"}),
        )


class SagaServices(Protocol):
    """Payment gateway and warehouse, as the handlers see them."""

    def charge(self, order_id: str, amount_cents: int, idempotency_key: str) -> None:
        """Raises `PaymentDeclined` (retryable or not) when the charge fails."""
        ...

    def ship(self, order_id: str, idempotency_key: str) -> str: ...

    def refund(self, order_id: str, amount_cents: int, idempotency_key: str) -> None: ...


class PaymentDeclined(Exception):
    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


def saga_effects(services: SagaServices, *, charge_policy: RetryPolicy | None = None) -> EffectRegistry:
    """Handlers for the saga's effects; `charge_policy` governs how often a raising charge is retried before
    it is dead-lettered (declines are data, not exceptions, and never count here)."""
    registry = EffectRegistry()

    @registry.handler(ChargePayment, policy=charge_policy)
    def charge(effect: ChargePayment, ctx: EffectContext) -> PaymentResult:
        try:
            services.charge(effect.order_id, effect.amount_cents, ctx.idempotency_key)
        except PaymentDeclined as exc:
            return PaymentResult(effect.order_id, effect.attempt, ok=False, error=str(exc), retryable=exc.retryable)
        return PaymentResult(effect.order_id, effect.attempt, ok=True)

    @registry.handler(ShipOrder)
    def ship(effect: ShipOrder, ctx: EffectContext) -> Shipped:
        return Shipped(effect.order_id, services.ship(effect.order_id, ctx.idempotency_key))

    @registry.handler(RefundPayment)
    def refund(effect: RefundPayment, ctx: EffectContext) -> Refunded:
        services.refund(effect.order_id, effect.amount_cents, ctx.idempotency_key)
        return Refunded(effect.order_id)

    return registry


class FlakyGateway:
    """Demo services: the first charge of each order fails with a retryable error, the rest succeed."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []
        self._failed: set[str] = set()

    def charge(self, order_id: str, amount_cents: int, idempotency_key: str) -> None:
        self.calls.append(("charge", order_id, idempotency_key))
        if order_id not in self._failed:
            self._failed.add(order_id)
            raise PaymentDeclined("card network timeout", retryable=True)

    def ship(self, order_id: str, idempotency_key: str) -> str:
        self.calls.append(("ship", order_id, idempotency_key))
        return f"TRK-{order_id}"

    def refund(self, order_id: str, amount_cents: int, idempotency_key: str) -> None:
        self.calls.append(("refund", order_id, idempotency_key))


app = App(workflows=[OrderSagaWorkflow], effects=saga_effects(FlakyGateway()))
