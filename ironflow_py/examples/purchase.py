"""Purchase by quotes: fan out one child workflow per supplier, join their quotes, buy from the cheapest.

`Purchase` (the parent) starts one `Quote` child per supplier in one decision, keeps a `Join` of the
suppliers in its state and folds each child's close notice into it (`child_closed_input`), so it needs no
counter and the order in which suppliers answer never changes the result. A `Quote` asks its supplier
through an effect; a supplier that refuses for good (`Permanent`) fails its quote, not the purchase. The
purchase has a run deadline that its children inherit, and cancelling it cancels the quotes still open
(their `on_parent_close` policy, `request_cancel` by default).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import attrs

from ironflow_py import App, Decision, Workflow
from ironflow_py.composition import ChildRef, Join
from ironflow_py.diagram import StateMachine, Transition
from ironflow_py.effects import EffectContext, EffectRegistry
from ironflow_py.lifecycle import Cancelled, CancelRequest, Completed, Failed, RunOutcome

#: How long a purchase may stay open; its quotes inherit the deadline (`deadline="inherit"`).
PURCHASE_TIMEOUT = timedelta(hours=1)


# -- the child: one supplier's quote -------------------------------------------------------------------------


@attrs.frozen
class RequestQuote:
    quote_id: str
    supplier: str
    item: str


@attrs.frozen
class QuoteReceived:
    """Returned by the `AskSupplier` effect's handler."""

    quote_id: str
    cents: int


@attrs.frozen
class QuoteUnavailable:
    """The `AskSupplier` effect died (the supplier refused for good): `dead_letter_input`."""

    quote_id: str
    error: str


@attrs.frozen
class WithdrawQuote:
    quote_id: str
    reason: str


QuoteInput = RequestQuote | QuoteReceived | QuoteUnavailable | WithdrawQuote


@attrs.frozen
class QuoteRequested:
    supplier: str
    item: str


@attrs.frozen
class QuoteAnswered:
    cents: int


@attrs.frozen
class QuoteFailed:
    error: str


@attrs.frozen
class QuoteWithdrawn:
    reason: str


QuoteEvent = QuoteRequested | QuoteAnswered | QuoteFailed | QuoteWithdrawn


@attrs.frozen
class AskSupplier:
    quote_id: str
    supplier: str
    item: str


@attrs.frozen
class QuoteState:
    status: str = "new"  # new, asking, answered, failed, withdrawn
    cents: int | None = None
    error: str | None = None


class QuoteWorkflow(Workflow[QuoteState, QuoteInput, QuoteEvent, AskSupplier]):
    type = "quote"
    inputs = {
        "quote.request/1": RequestQuote,
        "quote.received/1": QuoteReceived,
        "quote.unavailable/1": QuoteUnavailable,
        "quote.withdraw/1": WithdrawQuote,
    }
    events = {
        "quote.requested/1": QuoteRequested,
        "quote.answered/1": QuoteAnswered,
        "quote.failed/1": QuoteFailed,
        "quote.withdrawn/1": QuoteWithdrawn,
    }
    effects = {"quote.ask_supplier/1": AskSupplier}
    result_type = int

    def initial_state(self) -> QuoteState:
        return QuoteState()

    def workflow_id(self, input: QuoteInput) -> str:
        return input.quote_id

    def evolve(self, state: QuoteState, event: QuoteEvent) -> QuoteState:
        match event:
            case QuoteRequested():
                return QuoteState("asking")
            case QuoteAnswered(cents):
                return QuoteState("answered", cents=cents)
            case QuoteFailed(error):
                return QuoteState("failed", error=error)
            case QuoteWithdrawn(reason):
                return QuoteState("withdrawn", error=reason)
        raise TypeError(f"unexpected event {event!r}")

    def outcome(self, state: QuoteState) -> RunOutcome | None:
        """Completed with the price in cents, Failed("unavailable"), or Cancelled when withdrawn."""
        if state.status == "answered":
            return Completed(state.cents)
        if state.status == "failed":
            return Failed("unavailable", state.error)
        if state.status == "withdrawn":
            return Cancelled(state.error)
        return None

    def cancel_input(self, request: CancelRequest) -> QuoteInput:
        return WithdrawQuote(request.workflow_id, request.reason)

    def dead_letter_input(self, effect: AskSupplier, error: str) -> QuoteInput:
        return QuoteUnavailable(effect.quote_id, error)

    def decide(self, now: datetime, state: QuoteState, input: QuoteInput) -> Decision[QuoteEvent, AskSupplier]:
        match input:
            case RequestQuote(quote_id, supplier, item):
                if state.status != "new":
                    return Decision.reject("already requested")
                return Decision.accept(QuoteRequested(supplier, item)).with_effect(
                    AskSupplier(quote_id, supplier, item)
                )
            case QuoteReceived(_, cents):
                return Decision.accept(QuoteAnswered(cents))
            case QuoteUnavailable(_, error):
                return Decision.accept(QuoteFailed(error))
            case WithdrawQuote(_, reason):
                return Decision.accept(QuoteWithdrawn(reason))
        raise TypeError(f"unexpected input {input!r}")


# -- the parent: fan out, join, choose --------------------------------------------------------------------------


@attrs.frozen
class StartPurchase:
    purchase_id: str
    item: str
    suppliers: tuple[str, ...]


@attrs.frozen
class QuoteClosed:
    """What a purchase receives when one of its quotes closes (`child_closed_input`)."""

    purchase_id: str
    supplier: str
    cents: int | None
    error: str | None = None


@attrs.frozen
class CancelPurchase:
    purchase_id: str
    reason: str


PurchaseInput = StartPurchase | QuoteClosed | CancelPurchase


@attrs.frozen
class QuotesRequested:
    item: str
    suppliers: tuple[str, ...]


@attrs.frozen
class QuoteCollected:
    supplier: str
    cents: int | None
    error: str | None


@attrs.frozen
class PurchaseCancelled:
    reason: str


PurchaseEvent = QuotesRequested | QuoteCollected | PurchaseCancelled


@attrs.frozen
class Choice:
    """The purchase's result: the cheapest supplier and its price."""

    supplier: str
    cents: int


@attrs.frozen
class PurchaseState:
    status: str = "new"  # new, quoting, chosen, no_quote, cancelled
    item: str = ""
    quotes: Join[int] = attrs.field(factory=Join)
    reason: str | None = None


def quote_id(purchase_id: str, supplier: str) -> str:
    """The id of the quote child a purchase starts for one supplier."""
    return f"{purchase_id}/{supplier}"


def cheapest(quotes: Join[int]) -> Choice | None:
    """The lowest quote, first supplier on a tie (suppliers in the order the purchase listed them)."""
    answered = [(r.value, quotes.keys.index(r.key), r.key) for r in quotes.resolved if r.ok and r.value is not None]
    if not answered:
        return None
    cents, _, supplier = min(answered)
    return Choice(supplier, cents)


class PurchaseWorkflow(Workflow[PurchaseState, PurchaseInput, PurchaseEvent, Any]):
    type = "purchase"
    inputs = {
        "purchase.start/1": StartPurchase,
        "purchase.quote_closed/1": QuoteClosed,
        "purchase.cancel/1": CancelPurchase,
    }
    events = {
        "purchase.quotes_requested/1": QuotesRequested,
        "purchase.quote_collected/1": QuoteCollected,
        "purchase.cancelled/1": PurchaseCancelled,
    }
    result_type = Choice
    run_timeout = PURCHASE_TIMEOUT

    def initial_state(self) -> PurchaseState:
        return PurchaseState()

    def workflow_id(self, input: PurchaseInput) -> str:
        return input.purchase_id

    def evolve(self, state: PurchaseState, event: PurchaseEvent) -> PurchaseState:
        match event:
            case QuotesRequested(item, suppliers):
                return PurchaseState("quoting", item, Join.of(suppliers))
            case QuoteCollected(supplier, cents, error):
                quotes = (
                    state.quotes.resolve(supplier, cents) if cents is not None else state.quotes.fail(supplier, error)
                )
                status = state.status
                if quotes.done:
                    status = "chosen" if cheapest(quotes) is not None else "no_quote"
                return attrs.evolve(state, status=status, quotes=quotes)
            case PurchaseCancelled(reason):
                return attrs.evolve(state, status="cancelled", reason=reason)
        raise TypeError(f"unexpected event {event!r}")

    def outcome(self, state: PurchaseState) -> RunOutcome | None:
        """Completed(Choice) with the cheapest quote, Failed("no_quote") if none came, or Cancelled."""
        if state.status == "chosen":
            return Completed(cheapest(state.quotes))
        if state.status == "no_quote":
            return Failed("no_quote", [r.error for r in state.quotes.failed])
        if state.status == "cancelled":
            return Cancelled(state.reason)
        return None

    def child_closed_input(self, child: ChildRef, outcome: RunOutcome) -> PurchaseInput:
        purchase_id, supplier = child.workflow_id.rsplit("/", 1)
        if isinstance(outcome, Completed):
            return QuoteClosed(purchase_id, supplier, outcome.result)
        return QuoteClosed(purchase_id, supplier, None, outcome.status.value)

    def cancel_input(self, request: CancelRequest) -> PurchaseInput:
        return CancelPurchase(request.workflow_id, request.reason)

    def decide(self, now: datetime, state: PurchaseState, input: PurchaseInput) -> Decision[PurchaseEvent, Any]:
        match input:
            case StartPurchase(purchase_id, item, suppliers):
                if state.status != "new":
                    return Decision.reject("already started")
                if not suppliers:
                    return Decision.reject("no suppliers")
                decision: Decision[PurchaseEvent, Any] = Decision.accept(QuotesRequested(item, suppliers))
                for supplier in dict.fromkeys(suppliers):
                    qid = quote_id(purchase_id, supplier)
                    decision = decision.start_child(RequestQuote(qid, supplier, item), id=qid)
                return decision
            case QuoteClosed(_, supplier, cents, error):
                return Decision.accept(QuoteCollected(supplier, cents, error))
            case CancelPurchase(_, reason):
                return Decision.accept(PurchaseCancelled(reason))
        raise TypeError(f"unexpected input {input!r}")

    def describe(self) -> StateMachine:
        return StateMachine(
            initial="new",
            transitions=(
                Transition("new", "quoting", "StartPurchase", children=("quote per supplier",)),
                Transition("quoting", "quoting", "QuoteClosed (more pending)"),
                Transition("quoting", "chosen", "QuoteClosed (the last, a quote came)"),
                Transition("quoting", "no_quote", "QuoteClosed (the last, no quote)"),
                Transition("quoting", "cancelled", "CancelPurchase (open quotes get request_cancel)"),
            ),
            terminal=frozenset({"chosen", "no_quote", "cancelled"}),
        )


def purchase_effects(ask: Callable[[str, str], int]) -> EffectRegistry:
    """The quote's one effect handler, around `ask(supplier, item) -> cents`, which may raise `Permanent`."""
    registry = EffectRegistry()

    @registry.handler(AskSupplier)
    def ask_supplier(effect: AskSupplier, ctx: EffectContext) -> QuoteReceived:
        return QuoteReceived(effect.quote_id, ask(effect.supplier, effect.item))

    return registry


def _demo_prices(supplier: str, item: str) -> int:
    return 1_000 + 7 * sum(map(ord, supplier + item)) % 500


app = App(workflows=[PurchaseWorkflow, QuoteWorkflow], effects=purchase_effects(_demo_prices))
