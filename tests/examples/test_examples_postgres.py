"""Each reference workflow end to end on PostgreSQL: the real EffectRuntime, a ManualClock for timers."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from ironflow_py import ManualClock, OutcomeStatus, PostgresStore, WorkflowService
from ironflow_py.effects import EffectRegistry, EffectRuntime
from ironflow_py.examples.greeting import Approval, GreetingWorkflow, StartGreeting, greeting_effects, greeting_result
from ironflow_py.examples.onboarding import OnboardingWorkflow, StartOnboarding, onboarding_effects, onboarding_result
from ironflow_py.examples.order_saga import (
    ApprovalDecision,
    OrderSagaWorkflow,
    PaymentAttemptFailed,
    StartCheckout,
    saga_effects,
    saga_result,
)
from ironflow_py.workflow import AnyWorkflow
from tests.examples.fakes import RecordingServices

T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)


def runtime(service: WorkflowService, registry: EffectRegistry, worker: str) -> EffectRuntime:
    return EffectRuntime(
        service, registry, handle_signals=False, listen=False, rng=random.Random(0), worker_id=worker, concurrency=2
    )


def drain(rt: EffectRuntime) -> int:
    """Run what is due until nothing is: effects feed inputs back, which may enqueue more effects."""
    total = 0
    while (claimed := rt.run_once()) > 0:
        total += claimed
    return total


def setup(store: PostgresStore, workflow: type[AnyWorkflow]) -> tuple[WorkflowService, ManualClock]:
    clock = ManualClock(T0)
    return WorkflowService(store, workflows=[workflow], clock=clock), clock


def test_greeting_on_postgres(pg_store: PostgresStore) -> None:
    service, clock = setup(pg_store, GreetingWorkflow)
    rt = runtime(service, greeting_effects(), "w1")
    service.execute(StartGreeting("g1", "Grace"))
    drain(rt)
    service.execute(Approval("g1", True))
    assert drain(rt) == 0, "the wait timer is not due yet"
    clock.advance(timedelta(seconds=1))
    assert drain(rt) == 1
    state = service.state("greeting", "g1")
    assert greeting_result(state).greeting == "Hello, Grace!"
    assert service.execute(Approval("g1", False)).status is OutcomeStatus.ALREADY_COMPLETED
    assert [e.type_name for e in service.history("greeting", "g1")] == [
        "greeting.started/1",
        "greeting.greeted/1",
        "greeting.approval_noted/1",
        "greeting.completed/1",
    ]


def test_onboarding_on_postgres_calls_each_handler_once_across_a_worker_restart(pg_store: PostgresStore) -> None:
    services = RecordingServices()
    service, clock = setup(pg_store, OnboardingWorkflow)
    first = runtime(service, onboarding_effects(services), "before-restart")
    service.execute(StartOnboarding("u1", "ada@example.com", "req-1"))
    assert first.run_once() == 1  # the verification email only; its result enqueues the next effect
    # The worker restarts: a new runtime with a new worker id carries on from the database alone.
    second = runtime(service, onboarding_effects(services), "after-restart")
    drain(second)
    assert service.state("onboarding", "u1").status == "waiting"
    dup = service.execute(StartOnboarding("u1", "ada@example.com", "req-1"))
    assert dup.status is OutcomeStatus.DUPLICATE
    clock.advance(timedelta(days=1))
    drain(second)
    assert onboarding_result(service.state("onboarding", "u1")) == {"success": True, "user_id": "u1"}
    assert sorted(services.calls.values()) == [1, 1, 1], services.calls


def test_order_saga_on_postgres(pg_store: PostgresStore) -> None:
    services = RecordingServices(charge_failures=1)
    service, clock = setup(pg_store, OrderSagaWorkflow)
    rt = runtime(service, saga_effects(services), "w1")
    service.execute(StartCheckout("o1", 9_900))
    drain(rt)
    history = service.history("order-saga", "o1")
    assert [e.event for e in history if isinstance(e.event, PaymentAttemptFailed)] == [
        PaymentAttemptFailed(1, "card network timeout", 2.0)
    ]
    clock.advance(timedelta(seconds=2))
    drain(rt)
    assert service.state("order-saga", "o1").status == "awaiting_approval"
    service.execute(ApprovalDecision("o1", True))
    drain(rt)
    assert saga_result(service.state("order-saga", "o1"))["status"] == "shipped"
    assert pg_store.timers("order-saga", "o1") == []
    assert {e.status for e in pg_store.effects("order-saga", "o1")} == {"done"}
