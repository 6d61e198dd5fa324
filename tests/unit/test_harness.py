"""The given/when/then harness: passes when the workflow does what is expected, fails readably otherwise."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest

from ironflow_py import Decision, EncodeError, Timer, Workflow
from ironflow_py.examples.orders import (
    APPROVAL_WINDOW,
    ApprovalDeadline,
    ApproveOrder,
    CancelOrder,
    ChargeCustomer,
    Line,
    NotifyCustomer,
    OrderApproved,
    OrderCancelled,
    OrderPlaced,
    OrderRejection,
    OrderShipped,
    OrderState,
    OrderWorkflow,
    PlaceOrder,
    ShipOrder,
)
from ironflow_py.testing import WorkflowSpec, check_codec_round_trip, check_replay_determinism

T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
LINES = (Line("beans", 2, 1_000),)
PLACED = OrderPlaced("ada", LINES, 2_000, T0 + APPROVAL_WINDOW)
spec = WorkflowSpec(OrderWorkflow)


def test_placing_an_order_emits_event_effect_and_deadline_timer() -> None:
    spec.given().when(PlaceOrder("o1", "ada", LINES), now=T0).then(
        events=[PLACED],
        effects=[NotifyCustomer("o1", "ada", "we received your order")],
        timers=[Timer("approval-deadline", T0 + APPROVAL_WINDOW, ApprovalDeadline("o1"))],
    ).then_state(OrderState("placed", "ada", 2_000))


def test_approval_charges_and_cancels_the_deadline() -> None:
    spec.given(PLACED).when(ApproveOrder("o1", "grace")).then(
        events=[OrderApproved("grace")],
        effects=[ChargeCustomer("o1", "ada", 2_000)],
        cancelled_timers=["approval-deadline"],
    ).then_state(lambda s: s.status == "approved")


def test_shipping_before_approval_is_rejected_with_a_reason() -> None:
    spec.given(PLACED).when(ShipOrder("o1", "T")).then_rejected(
        OrderRejection("not_approved", "cannot ship an order that is placed")
    )


def test_terminal_order_is_already_completed() -> None:
    spec.given(PLACED, OrderCancelled("x")).when(CancelOrder("o1", "again")).then_already_completed().then_nothing()


def test_deadline_cancels_a_placed_order_and_ends_it() -> None:
    spec.given(PLACED).when(ApprovalDeadline("o1"), now=T0 + timedelta(days=1)).then(
        events=[OrderCancelled("approval deadline passed")]
    ).then_terminal()


def test_a_wrong_expectation_fails_with_a_diff() -> None:
    with pytest.raises(AssertionError) as info:
        spec.given(PLACED).when(ApproveOrder("o1", "grace")).then(events=[OrderApproved("linus")])
    message = str(info.value)
    assert "events differ" in message
    assert "-[OrderApproved(approver='linus')]" in message and "+[OrderApproved(approver='grace')]" in message


def test_expecting_acceptance_of_a_rejected_input_fails() -> None:
    with pytest.raises(AssertionError, match="was rejected"):
        spec.given().when(ShipOrder("o1", "T")).then(events=[])
    with pytest.raises(AssertionError, match="was accepted"):
        spec.given(PLACED).when(ApproveOrder("o1", "g")).then_rejected()
    with pytest.raises(AssertionError, match="expected an already-completed"):
        spec.given(PLACED).when(ApproveOrder("o1", "g")).then_already_completed()
    with pytest.raises(AssertionError, match="decisions"):
        spec.given(PLACED).when(ApproveOrder("o1", "g")).then_nothing()


@attrs.frozen
class _Ping:
    pid: str


@attrs.frozen
class _Ponged:
    note: Any


class _Leaky(Workflow[int, _Ping, _Ponged, object]):
    """Emits an event holding a value JSON cannot store."""

    type = "leaky"
    inputs = {"ping/1": _Ping}
    events = {"ponged/1": _Ponged}

    def initial_state(self) -> int:
        return 0

    def workflow_id(self, input: _Ping) -> str:
        return input.pid

    def evolve(self, state: int, event: _Ponged) -> int:
        return state + 1

    def decide(self, now: datetime, state: int, input: _Ping) -> Decision[_Ponged, object]:
        return Decision.accept(_Ponged(note={1, 2} if input.pid == "set" else object()))


def test_harness_refuses_values_the_database_would_refuse() -> None:
    with pytest.raises(EncodeError, match="cannot serialize event"):
        WorkflowSpec(_Leaky).given().when(_Ping("object"))


def test_harness_reports_values_that_change_on_the_way_through_storage() -> None:
    with pytest.raises(AssertionError, match=r"does not survive its stored form(.|\n)*\+_Ponged\(note=\[1, 2\]\)"):
        WorkflowSpec(_Leaky).given().when(_Ping("set"))


def test_replay_determinism_and_codec_round_trip_hold_for_the_order_workflow() -> None:
    history = [PLACED, OrderApproved("grace"), OrderShipped("T-1")]
    assert check_replay_determinism(OrderWorkflow(), history).status == "shipped"
    assert check_codec_round_trip(OrderWorkflow(), max_examples=20) == 11


class _Clocky(OrderWorkflow):
    """`evolve` that depends on a mutable global: replay is not deterministic."""

    calls = 0

    def evolve(self, state: OrderState, event: object) -> OrderState:
        _Clocky.calls += 1
        return attrs.evolve(super().evolve(state, event), total_cents=_Clocky.calls)  # type: ignore[arg-type]


def test_replay_check_catches_nondeterministic_evolve() -> None:
    with pytest.raises(AssertionError, match="folding the same events twice"):
        check_replay_determinism(_Clocky(), [PLACED])
