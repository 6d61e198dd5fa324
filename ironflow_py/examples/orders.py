"""An order that must be approved before it ships, with an approval deadline timer.

Placing it starts a 24-hour approval deadline; approving cancels the deadline and charges the customer;
shipping completes it; cancelling, or the deadline passing, ends it cancelled. Out-of-order inputs are
rejected with a typed reason, and a repeated `PlaceOrder` with the same `request_id` is applied once.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import attrs

from ironflow_py import App, Decision, Workflow
from ironflow_py.diagram import StateMachine, Transition
from ironflow_py.lifecycle import Cancelled, CancelRequest, Completed, RunOutcome

APPROVAL_WINDOW = timedelta(hours=24)


@attrs.frozen
class Line:
    sku: str
    quantity: int
    unit_price_cents: int


# -- inputs ----------------------------------------------------------------------------------------------
@attrs.frozen
class PlaceOrder:
    order_id: str
    customer: str
    lines: tuple[Line, ...]
    request_id: str | None = None


@attrs.frozen
class ApproveOrder:
    order_id: str
    approver: str


@attrs.frozen
class ShipOrder:
    order_id: str
    tracking: str


@attrs.frozen
class CancelOrder:
    order_id: str
    reason: str


@attrs.frozen
class ApprovalDeadline:
    order_id: str


OrderInput = PlaceOrder | ApproveOrder | ShipOrder | CancelOrder | ApprovalDeadline


# -- events ----------------------------------------------------------------------------------------------
@attrs.frozen
class OrderPlaced:
    customer: str
    lines: tuple[Line, ...]
    total_cents: int
    approve_by: datetime


@attrs.frozen
class OrderApproved:
    approver: str


@attrs.frozen
class OrderShipped:
    tracking: str


@attrs.frozen
class OrderCancelled:
    reason: str


OrderEvent = OrderPlaced | OrderApproved | OrderShipped | OrderCancelled


# -- effects ---------------------------------------------------------------------------------------------
@attrs.frozen
class ChargeCustomer:
    order_id: str
    customer: str
    amount_cents: int


@attrs.frozen
class NotifyCustomer:
    order_id: str
    customer: str
    message: str


OrderEffect = ChargeCustomer | NotifyCustomer


@attrs.frozen
class OrderState:
    status: str = "new"  # new -> placed -> approved -> shipped, or -> cancelled
    customer: str = ""
    total_cents: int = 0
    approver: str | None = None
    tracking: str | None = None
    cancel_reason: str | None = None


@attrs.frozen
class OrderRejection:
    code: str
    message: str


class OrderWorkflow(Workflow[OrderState, OrderInput, OrderEvent, OrderEffect]):
    type = "order"
    inputs = {
        "order.place/1": PlaceOrder,
        "order.approve/1": ApproveOrder,
        "order.ship/1": ShipOrder,
        "order.cancel/1": CancelOrder,
        "order.approval_deadline/1": ApprovalDeadline,
    }
    events = {
        "order.placed/1": OrderPlaced,
        "order.approved/1": OrderApproved,
        "order.shipped/1": OrderShipped,
        "order.cancelled/1": OrderCancelled,
    }
    effects = {"order.charge_customer/1": ChargeCustomer, "order.notify_customer/1": NotifyCustomer}

    def initial_state(self) -> OrderState:
        return OrderState()

    def state_name(self, state: OrderState) -> str:
        return state.status

    def describe(self) -> StateMachine:
        """The diagram shown in the README (`ironflow-py diagram order`)."""
        return StateMachine(
            initial="new",
            transitions=(
                Transition("new", "placed", "PlaceOrder", ("NotifyCustomer",), ("approval-deadline",)),
                Transition("placed", "approved", "ApproveOrder", ("ChargeCustomer",), cancels=("approval-deadline",)),
                Transition("approved", "shipped", "ShipOrder", ("NotifyCustomer",)),
                Transition("placed", "cancelled", "CancelOrder", cancels=("approval-deadline",)),
                Transition("approved", "cancelled", "CancelOrder", cancels=("approval-deadline",)),
                Transition("placed", "cancelled", "ApprovalDeadline"),
            ),
            terminal=frozenset({"shipped", "cancelled"}),
        )

    def workflow_id(self, input: OrderInput) -> str:
        return input.order_id

    def input_key(self, input: OrderInput) -> str | None:
        return input.request_id if isinstance(input, PlaceOrder) else None

    def outcome(self, state: OrderState) -> RunOutcome | None:
        """Completed with the tracking number once shipped; Cancelled with the customer's reason."""
        if state.status == "shipped":
            return Completed(state.tracking)
        if state.status == "cancelled":
            return Cancelled(state.cancel_reason)
        return None

    def cancel_input(self, request: CancelRequest) -> OrderInput | None:
        """A cancel request is the customer's `CancelOrder` (refused once the order has shipped)."""
        return CancelOrder(request.workflow_id, request.reason)

    def evolve(self, state: OrderState, event: OrderEvent) -> OrderState:
        match event:
            case OrderPlaced(customer=customer, total_cents=total):
                return attrs.evolve(state, status="placed", customer=customer, total_cents=total)
            case OrderApproved(approver=approver):
                return attrs.evolve(state, status="approved", approver=approver)
            case OrderShipped(tracking=tracking):
                return attrs.evolve(state, status="shipped", tracking=tracking)
            case OrderCancelled(reason=reason):
                return attrs.evolve(state, status="cancelled", cancel_reason=reason)
        raise TypeError(f"unexpected event {event!r}")

    def decide(self, now: datetime, state: OrderState, input: OrderInput) -> Decision[OrderEvent, OrderEffect]:
        match input:
            case PlaceOrder(order_id=oid, customer=customer, lines=lines):
                if state.status != "new":
                    return Decision.reject(OrderRejection("already_placed", f"order {oid} is {state.status}"))
                if not lines or any(line.quantity <= 0 for line in lines):
                    return Decision.reject(OrderRejection("empty_order", "an order needs lines with quantity > 0"))
                total = sum(line.quantity * line.unit_price_cents for line in lines)
                approve_by = now + APPROVAL_WINDOW
                return (
                    Decision.accept(OrderPlaced(customer, lines, total, approve_by))
                    .with_effect(NotifyCustomer(oid, customer, "we received your order"))
                    .with_timer("approval-deadline", approve_by, ApprovalDeadline(oid))
                )
            case ApproveOrder(approver=approver):
                if state.status != "placed":
                    return Decision.reject(OrderRejection("not_awaiting_approval", f"order is {state.status}"))
                return (
                    Decision.accept(OrderApproved(approver))
                    .with_effect(ChargeCustomer(input.order_id, state.customer, state.total_cents))
                    .cancel_timer("approval-deadline")
                )
            case ShipOrder(tracking=tracking):
                if state.status != "approved":
                    return Decision.reject(
                        OrderRejection("not_approved", f"cannot ship an order that is {state.status}")
                    )
                return Decision.accept(OrderShipped(tracking)).with_effect(
                    NotifyCustomer(input.order_id, state.customer, f"shipped, tracking {tracking}")
                )
            case CancelOrder(reason=reason):
                if state.status not in ("placed", "approved"):
                    return Decision.reject(OrderRejection("not_cancellable", f"order is {state.status}"))
                return Decision.accept(OrderCancelled(reason)).cancel_timer("approval-deadline")
            case ApprovalDeadline():
                if state.status != "placed":
                    return Decision.reject(OrderRejection("not_awaiting_approval", f"order is {state.status}"))
                return Decision.accept(OrderCancelled("approval deadline passed"))
        raise TypeError(f"unexpected input {input!r}")


#: `ironflow-py --app ironflow_py.examples.orders:app ...`
app = App(workflows=[OrderWorkflow])
