"""The test harness with continue-as-new and versions: WorkflowSpec sees the continuation, Scenario runs
several versions of a type side by side and moves an instance between them."""

from __future__ import annotations

import pytest

from ironflow_py import EffectContext, EffectRegistry, OutcomeStatus
from ironflow_py.lifecycle import Completed
from ironflow_py.testing import Scenario, WorkflowSpec
from tests.version_workflows import (
    Charge,
    Charged,
    CloseLedger,
    Deposit,
    Deposited,
    Expedite,
    Ledger,
    LedgerState,
    OrderV1,
    OrderV2,
    Paid,
    Place,
    Placed,
)


def test_workflow_spec_shows_a_continuing_decision_without_the_engines_marker() -> None:
    spec = WorkflowSpec(Ledger)
    spec.given(Deposited(1), Deposited(1)).when(Deposit("l1", 1)).then(
        events=[Deposited(1)], continued=True, state=LedgerState(3, 3)
    )
    spec.given(Deposited(1)).when(Deposit("l1", 1)).then(events=[Deposited(1)], continued=False)
    with pytest.raises(AssertionError, match="expected the decision to continue the run as new, it did not"):
        spec.given().when(Deposit("l1", 1)).then(continued=True)


def test_a_spec_per_version_class() -> None:
    WorkflowSpec(OrderV1).given(Placed(10)).when(Charged("o1")).then(events=[Paid(10)])
    WorkflowSpec(OrderV2).given(Placed(10)).when(Charged("o1")).then(events=[Paid(9)])


def test_scenario_runs_versions_side_by_side_and_moves_one() -> None:
    effects = EffectRegistry()

    @effects.handler(Charge)
    def charge(effect: Charge, ctx: EffectContext) -> Charged | None:
        return None  # the test feeds Charged itself

    scenario = Scenario(OrderV1, OrderV2, effects=effects, default_version={"vorder": "1"})
    scenario.send(Place("o1", 10))
    moved = scenario.service.migrate_version("vorder", "o1", to="2", input=Expedite("o1"))
    assert moved.status is OutcomeStatus.ACCEPTED
    scenario.send(Charged("o1"))
    assert scenario.service.result("vorder", "o1") == Completed(9)


def test_scenario_follows_a_long_lived_id_through_its_runs() -> None:
    scenario = Scenario(Ledger)
    for _ in range(7):
        scenario.send(Deposit("l1", 1))
    scenario.send(CloseLedger("l1"))
    assert scenario.service.wait("ledger", "l1", timeout=1) == Completed(7)
    info = scenario.service.instance("ledger", "l1")
    assert info is not None and info.run == 3
