"""The fan-out/fan-in reference example: scenarios in memory, end to end on PostgreSQL, its README diagram."""

from __future__ import annotations

import itertools
import random
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ironflow_py import (
    Cancelled,
    ChildStart,
    Completed,
    Failed,
    ManualClock,
    Permanent,
    PostgresStore,
    Retryable,
    WorkflowService,
)
from ironflow_py.diagram import to_mermaid
from ironflow_py.effects import EffectRuntime
from ironflow_py.examples.purchase import (
    PURCHASE_TIMEOUT,
    Choice,
    PurchaseWorkflow,
    QuoteClosed,
    QuoteCollected,
    QuotesRequested,
    QuoteWorkflow,
    RequestQuote,
    StartPurchase,
    purchase_effects,
)
from ironflow_py.testing import Scenario, WorkflowSpec

PRICES = {"acme": 1_200, "globex": 990, "initech": 1_500}
T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)


def ask(supplier: str, item: str) -> int:
    if supplier not in PRICES:
        raise Permanent(f"{supplier} does not sell {item}")
    return PRICES[supplier]


def no_answer_yet(supplier: str, item: str) -> int:
    raise Retryable(f"{supplier} has not answered")


def test_a_purchase_starts_one_quote_child_per_supplier() -> None:
    spec = WorkflowSpec(PurchaseWorkflow, peers=[QuoteWorkflow])
    spec.given().when(StartPurchase("p1", "bolts", ("acme", "globex"))).then(
        events=[QuotesRequested("bolts", ("acme", "globex"))],
        children=[
            ChildStart(RequestQuote("p1/acme", "acme", "bolts"), "p1/acme", "request_cancel", "inherit"),
            ChildStart(RequestQuote("p1/globex", "globex", "bolts"), "p1/globex", "request_cancel", "inherit"),
        ],
    )


@pytest.mark.parametrize("order", list(itertools.permutations(["acme", "globex", "initech"])))
def test_the_cheapest_quote_wins_whatever_order_they_arrive_in(order: tuple[str, ...]) -> None:
    spec = WorkflowSpec(PurchaseWorkflow, peers=[QuoteWorkflow])
    history: list[object] = [QuotesRequested("bolts", ("acme", "globex", "initech"))]
    history += [QuoteCollected(s, PRICES[s], None) for s in order[:-1]]
    last = order[-1]
    spec.given(*history).when(QuoteClosed("p1", last, PRICES[last])).then_outcome(Completed(Choice("globex", 990)))


def test_scenario_buys_from_the_cheapest_and_a_refusing_supplier_fails_only_its_quote() -> None:
    s = Scenario(PurchaseWorkflow, QuoteWorkflow, effects=purchase_effects(ask))
    s.send(StartPurchase("p1", "bolts", ("acme", "umbrella", "globex")))
    assert s.result("purchase", "p1") == Completed(Choice("globex", 990))
    assert isinstance(s.result("quote", "p1/umbrella"), Failed)


def test_scenario_with_no_quote_fails() -> None:
    s = Scenario(PurchaseWorkflow, QuoteWorkflow, effects=purchase_effects(ask))
    s.send(StartPurchase("p1", "bolts", ("umbrella",)))
    outcome = s.result("purchase", "p1")
    assert isinstance(outcome, Failed)
    assert outcome.code == "no_quote"


def test_cancelling_a_purchase_withdraws_the_open_quotes() -> None:
    s = Scenario(PurchaseWorkflow, QuoteWorkflow, effects=purchase_effects(no_answer_yet))  # quotes stay open
    s.send(StartPurchase("p1", "bolts", ("acme", "globex")))
    s.cancel("purchase", "p1", "changed my mind")
    assert s.result("purchase", "p1") == Cancelled("changed my mind")
    assert s.result("quote", "p1/acme") == Cancelled("parent purchase/p1 cancelled")


def test_the_quotes_inherit_the_purchase_deadline() -> None:
    s = Scenario(PurchaseWorkflow, QuoteWorkflow, effects=purchase_effects(no_answer_yet))
    s.send(StartPurchase("p1", "bolts", ("acme",)))
    [deadline] = [t.due_at for t in s.timers("quote", "p1/acme")]
    assert deadline == s.clock.now() + PURCHASE_TIMEOUT


def test_the_purchase_end_to_end_on_postgres(pg_store: PostgresStore) -> None:
    service = WorkflowService(pg_store, workflows=[PurchaseWorkflow, QuoteWorkflow], clock=ManualClock(T0))
    rt = EffectRuntime(
        service, purchase_effects(ask), handle_signals=False, listen=False, rng=random.Random(0), concurrency=2
    )
    service.execute(StartPurchase("p1", "bolts", ("initech", "umbrella", "acme")))
    while rt.run_once() > 0:
        pass
    assert service.result("purchase", "p1") == Completed(Choice("acme", 1_200))
    assert [c.workflow_id for c in pg_store.children("purchase", "p1", open_only=False)] == [
        "p1/acme",
        "p1/initech",
        "p1/umbrella",
    ]
    assert service.wait("quote", "p1/initech", timeout=5) == Completed(1_500)
    assert pg_store.timers("purchase", "p1") == []  # closed: its run deadline went with it


def test_the_readme_shows_the_purchase_diagram() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme[readme.index("**Purchase by quotes**") :]
    block = re.search(r"```mermaid\n(.*?)```", section, re.S)
    assert block is not None
    assert block.group(1) == to_mermaid(PurchaseWorkflow().describe())
