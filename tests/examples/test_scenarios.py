"""The reference workflows' whole lives, in memory, with the scenario runner (no database, fake clock)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ironflow_py import OutcomeStatus, WorkflowFailed
from ironflow_py.effects import RetryPolicy
from ironflow_py.examples.greeting import (
    Approval,
    GreetingComposed,
    GreetingResult,
    GreetingWorkflow,
    StartGreeting,
    greeting_effects,
    greeting_result,
)
from ironflow_py.examples.onboarding import (
    OnboardingWorkflow,
    StartOnboarding,
    WakeUp,
    onboarding_effects,
    onboarding_result,
)
from ironflow_py.examples.order_saga import (
    ApprovalDecision,
    OrderSagaWorkflow,
    PaymentAttemptFailed,
    StartCheckout,
    saga_effects,
    saga_result,
)
from ironflow_py.lifecycle import Cancelled, Completed, Failed, Terminated
from ironflow_py.testing import Scenario
from tests.examples.fakes import RecordingServices

SECOND = timedelta(seconds=1)


def greeting() -> Scenario:
    return Scenario(GreetingWorkflow, effects=greeting_effects())


def test_greeting_approved_during_the_wait_completes_when_the_wait_ends() -> None:
    s = greeting()
    s.send(StartGreeting("g1", "Ada"))
    assert s.state("greeting", "g1").status == "waiting"
    assert s.send(Approval("g1", True)).status is OutcomeStatus.ACCEPTED
    assert s.state("greeting", "g1").status == "waiting", "kept, not applied before the wait ends"
    s.advance(SECOND)
    assert greeting_result(s.state("greeting", "g1")) == GreetingResult("completed", "Hello, Ada!", None)
    assert s.result("greeting", "g1") == Completed("Hello, Ada!")


def test_greeting_refused_after_the_wait_fails() -> None:
    s = greeting()
    s.send(StartGreeting("g1", "Ada"))
    s.advance(SECOND)
    assert greeting_result(s.state("greeting", "g1")).status == "awaiting_approval"
    s.send(Approval("g1", False))
    assert greeting_result(s.state("greeting", "g1")) == GreetingResult("failed", None, "not approved")
    outcome = s.result("greeting", "g1")
    assert outcome == Failed("not_approved", "not approved")
    with pytest.raises(WorkflowFailed, match="'greeting' instance 'g1': failed: not_approved"):
        outcome.unwrap()


def test_greeting_refused_during_the_wait_fails_when_the_wait_ends() -> None:
    s = greeting()
    s.send(StartGreeting("g1", "Ada"))
    s.send(Approval("g1", False))
    assert s.result("greeting", "g1") is None, "kept until the wait ends"
    s.advance(SECOND)
    assert s.result("greeting", "g1") == Failed("not_approved", "not approved")


def test_greeting_refuses_late_approval_and_redelivered_results() -> None:
    s = greeting()
    s.send(StartGreeting("g1", "Ada"))
    before = len(s.history("greeting", "g1"))
    assert s.send(GreetingComposed("g1", "Hello again")).events == ()
    assert len(s.history("greeting", "g1")) == before
    s.send(Approval("g1", True))
    s.advance(SECOND)
    done = len(s.history("greeting", "g1"))
    late = s.send(Approval("g1", False))
    assert late.status is OutcomeStatus.ALREADY_COMPLETED and late.events == ()
    assert len(s.history("greeting", "g1")) == done


def test_onboarding_waits_a_day_then_sends_tips_and_completes() -> None:
    services = RecordingServices()
    s = Scenario(OnboardingWorkflow, effects=onboarding_effects(services))
    s.send(StartOnboarding("u1", "ada@example.com", "req-1"))
    assert s.state("onboarding", "u1").status == "waiting"
    assert services.count("usage-tips") == 0
    s.advance(timedelta(hours=23))
    assert onboarding_result(s.state("onboarding", "u1")) is None
    s.advance(timedelta(hours=1))
    assert onboarding_result(s.state("onboarding", "u1")) == {"success": True, "user_id": "u1"}
    assert s.result("onboarding", "u1") == Completed({"success": True, "user_id": "u1"})
    assert sorted(n for n in services.calls.values()) == [1, 1, 1]


def test_onboarding_start_is_idempotent_and_wake_up_skips_the_wait() -> None:
    services = RecordingServices()
    s = Scenario(OnboardingWorkflow, effects=onboarding_effects(services))
    s.send(StartOnboarding("u1", "ada@example.com", "req-1"))
    again = s.send(StartOnboarding("u1", "ada@example.com", "req-1"))
    assert again.status is OutcomeStatus.DUPLICATE and again.first_status is OutcomeStatus.ACCEPTED
    assert len(s.timers("onboarding", "u1")) == 1
    s.send(WakeUp("u1"))
    assert s.timers("onboarding", "u1") == []
    assert onboarding_result(s.state("onboarding", "u1")) == {"success": True, "user_id": "u1"}
    s.advance(timedelta(days=2))
    assert services.count("usage-tips") == 1 and services.count("verify") == 1


def saga(services: RecordingServices) -> Scenario:
    return Scenario(OrderSagaWorkflow, effects=saga_effects(services))


def test_saga_retries_payment_with_recorded_backoff_then_ships_on_approval() -> None:
    services = RecordingServices(charge_failures=1)
    s = saga(services)
    s.send(StartCheckout("o1", 4_200))
    failed = [e for e in s.events("order-saga", "o1") if isinstance(e, PaymentAttemptFailed)]
    assert failed == [PaymentAttemptFailed(1, "card network timeout", 2.0)]
    assert s.state("order-saga", "o1").status == "charging"
    s.advance(2 * SECOND)
    assert s.state("order-saga", "o1").status == "awaiting_approval"
    s.send(ApprovalDecision("o1", True))
    assert saga_result(s.state("order-saga", "o1")) == {
        "status": "shipped",
        "attempts": 2,
        "reason": None,
        "tracking": "TRK-o1",
    }
    assert s.result("order-saga", "o1") == Completed({"tracking": "TRK-o1"})
    assert services.count("charge") == 2 and services.count("ship") == 1 and services.count("refund") == 0


def test_saga_deadline_refunds_and_cancels() -> None:
    services = RecordingServices()
    s = saga(services)
    s.send(StartCheckout("o1", 4_200))
    s.advance(timedelta(hours=48))
    result = saga_result(s.state("order-saga", "o1"))
    assert (result["status"], result["reason"]) == ("cancelled", "approval deadline passed")
    assert s.result("order-saga", "o1") == Cancelled("approval deadline passed")
    assert services.count("refund") == 1


def test_saga_rejection_refunds_and_cancels() -> None:
    services = RecordingServices()
    s = saga(services)
    s.send(StartCheckout("o1", 4_200))
    s.send(ApprovalDecision("o1", False, "fraud check"))
    assert saga_result(s.state("order-saga", "o1"))["status"] == "cancelled"
    assert s.result("order-saga", "o1") == Cancelled("fraud check")
    assert s.timers("order-saga", "o1") == [], "the deadline was cancelled"
    assert services.count("refund") == 1 and services.count("ship") == 0


def test_saga_dead_lettered_charge_compensates_instead_of_waiting_forever() -> None:
    services = RecordingServices(charge_error=RuntimeError("gateway down"))
    registry = saga_effects(services, charge_policy=RetryPolicy(max_attempts=2, base_delay=1.0, jitter=False))
    s = Scenario(OrderSagaWorkflow, effects=registry)
    s.send(StartCheckout("o1", 4_200))
    s.advance(SECOND)
    state = s.state("order-saga", "o1")
    assert state.status == "cancelled"
    assert state.reason is not None and "gateway down" in state.reason
    assert [e.status for e in s.effects("order-saga", "o1")] == ["dead"]


def test_saga_cancel_request_refunds_as_an_ordinary_compensation() -> None:
    services = RecordingServices()
    s = saga(services)
    s.send(StartCheckout("o1", 4_200))
    assert s.cancel("order-saga", "o1", "customer changed their mind", request_id="c-1").accepted
    assert s.cancel("order-saga", "o1", "again", request_id="c-1").status is OutcomeStatus.DUPLICATE
    assert s.result("order-saga", "o1") == Cancelled("customer changed their mind")
    assert services.count("refund") == 1


def test_scenario_terminate_pause_and_resume() -> None:
    services = RecordingServices()
    s = saga(services)
    s.send(StartCheckout("o1", 4_200))
    assert s.pause("order-saga", "o1", request_id="p") is OutcomeStatus.ACCEPTED
    s.send(ApprovalDecision("o1", True))  # accepted while paused; its ShipOrder effect is held
    assert services.count("ship") == 0
    assert s.resume("order-saga", "o1", request_id="r") is OutcomeStatus.ACCEPTED
    assert services.count("ship") == 1 and s.result("order-saga", "o1") == Completed({"tracking": "TRK-o1"})
    s.send(StartCheckout("o2", 100))
    assert s.terminate("order-saga", "o2", "fraud").accepted
    s.advance(timedelta(hours=49))  # the approval deadline is gone with the terminate
    assert s.result("order-saga", "o2") == Terminated("fraud") and services.count("refund") == 0
