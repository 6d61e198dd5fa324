"""Metrics and traces of a whole order saga, through the real service, effect runtime and PostgreSQL."""

from __future__ import annotations

import json
import logging
import random
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families

from ironflow_py import ManualClock, PostgresStore, WorkflowService
from ironflow_py.effects import EffectRegistry, EffectRuntime
from ironflow_py.examples.order_saga import (
    ApprovalDecision,
    OrderSagaWorkflow,
    StartCheckout,
    saga_effects,
)
from ironflow_py.store.postgres_ops import StoreOps
from ironflow_py.telemetry import HealthServer, Metrics, Observer, Tracing
from tests.ops_apps import CHARGE_POLICY, FlakyGateway
from tests.ops_fixtures import T0

ORDER = "order-7f3a9c"


def registry(gateway: FlakyGateway) -> EffectRegistry:
    return saga_effects(gateway, charge_policy=CHARGE_POLICY)


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def scrape(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.fixture
def running(pg_store: PostgresStore) -> Iterator[tuple[WorkflowService, Metrics, HealthServer, EffectRuntime]]:
    """A service with metrics, a real worker loop on the system clock, and its health server."""
    metrics = Metrics()
    observer = Observer(metrics=metrics)
    service = WorkflowService(pg_store, workflows=[OrderSagaWorkflow], observer=observer)
    metrics.watch_outbox(pg_store, service.clock.now)
    runtime = EffectRuntime(service, registry(FlakyGateway()), handle_signals=False, poll_interval=0.2, concurrency=2)
    worker = threading.Thread(target=runtime.run, name="worker-under-test")
    worker.start()
    server = HealthServer(observer, loop="effects", ready=StoreOps(pg_store).readiness, stale_after=10).start()
    try:
        yield service, metrics, server, runtime
    finally:
        server.close()
        runtime.stop()
        worker.join(30)


def test_a_saga_under_a_real_worker_moves_the_retry_counter_and_no_label_names_an_instance(
    running: tuple[WorkflowService, Metrics, HealthServer, EffectRuntime],
) -> None:
    service, _, server, runtime = running
    service.execute(StartCheckout(ORDER, 4_200))
    # The payment-retry timer is 2 s of real time: the worker's timer loop fires it.
    wait_until(lambda: service.state("order-saga", ORDER).status == "awaiting_approval", "the payment")
    service.execute(ApprovalDecision(ORDER, True))
    wait_until(lambda: service.state("order-saga", ORDER).status == "shipped", "the shipment")

    status, text = scrape(server.port, "/metrics")
    assert status == 200
    samples = [s for family in text_string_to_metric_families(text) for s in family.samples]

    def value(name: str, **labels: str) -> float:
        return sum(s.value for s in samples if s.name == name and labels.items() <= s.labels.items())

    charge = "saga.charge_payment/1"
    assert value("ironflow_effect_attempts_total", effect_type=charge, outcome="retry") == 1
    assert value("ironflow_effect_attempts_total", effect_type=charge, outcome="done") == 2
    assert value("ironflow_effect_schedule_to_start_seconds_count", effect_type=charge) == 3
    assert value("ironflow_timer_firings_total", workflow_type="order-saga", outcome="accepted") == 1
    assert value("ironflow_timer_firing_delay_seconds_count", workflow_type="order-saga") == 1
    assert value("ironflow_workflows_closed_total", workflow_type="order-saga", outcome="completed") == 1
    assert value("ironflow_inputs_total", workflow_type="order-saga", outcome="accepted") >= 6
    assert value("ironflow_decision_duration_seconds_count", workflow_type="order-saga") >= 6
    assert value("ironflow_decision_replayed_events_count", workflow_type="order-saga") >= 6
    assert value("ironflow_worker_capacity", loop="effects") == 2
    assert value("ironflow_outbox_pending") == 0 and value("ironflow_outbox_dead") == 0

    label_values = {v for s in samples for v in s.labels.values()}
    for forbidden in (ORDER, runtime.worker_id):
        assert not any(forbidden in v for v in label_values), f"a label carries {forbidden!r}"
    assert not any(v.isdigit() for v in label_values if v), "no effect or timer id as a label"

    status, body = scrape(server.port, "/healthz")
    assert status == 200 and json.loads(body)["alive"] is True
    assert scrape(server.port, "/readyz")[0] == 200


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


def test_a_saga_is_one_connected_trace_across_effects_and_timers(
    pg_store: PostgresStore, exporter: InMemorySpanExporter, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, "ironflow_py")
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    clock = ManualClock(T0)
    service = WorkflowService(
        pg_store, workflows=[OrderSagaWorkflow], clock=clock, observer=Observer(tracing=Tracing(provider))
    )
    runtime = EffectRuntime(
        service,
        registry(FlakyGateway()),
        handle_signals=False,
        listen=False,
        rng=random.Random(0),
        worker_id="w1",
    )

    def drain() -> None:
        while runtime.run_once() > 0:
            clock.advance(timedelta(seconds=1))  # past the charge's retry delay

    service.execute(StartCheckout(ORDER, 4_200))
    drain()
    clock.advance(timedelta(seconds=5))  # the saga's payment-retry timer
    drain()
    service.execute(ApprovalDecision(ORDER, False))  # a second trace: the approval came from outside
    drain()
    assert service.state("order-saga", ORDER).status == "cancelled"

    spans = exporter.get_finished_spans()
    by_id = {s.context.span_id: s for s in spans}

    def chain(span: ReadableSpan) -> list[str]:
        names = [span.name]
        while span.parent is not None:
            span = by_id[span.parent.span_id]
            names.append(span.name)
        return names[::-1]

    roots = [s for s in spans if s.parent is None]
    assert [r.name for r in roots] == ["execute order-saga", "execute order-saga"]
    assert all(s.parent is None or s.parent.span_id in by_id for s in spans), "every parent was exported"
    checkout_trace = [s for s in spans if s.context.trace_id == roots[0].context.trace_id]
    # checkout -> charge (network error) and again as a child of the same checkout decision ...
    assert chain(next(s for s in checkout_trace if s.name == "timer order-saga")) == [
        "execute order-saga",
        "effect saga.charge_payment/1",
        "execute order-saga",
        "timer order-saga",
    ]
    # ... declined -> the retry timer -> the RetryPayment decision -> the third charge -> PaymentResult.
    deepest = max(checkout_trace, key=lambda s: len(chain(s)))
    assert chain(deepest) == [
        "execute order-saga",
        "effect saga.charge_payment/1",
        "execute order-saga",
        "timer order-saga",
        "execute order-saga",
        "effect saga.charge_payment/1",
        "execute order-saga",
    ]
    attempts = sorted(
        str((s.attributes or {}).get("ironflow.outcome")) for s in checkout_trace if s.name.startswith("effect")
    )
    assert attempts == ["done", "done", "retry"]
    refund_trace = [s for s in spans if s.context.trace_id == roots[1].context.trace_id]
    assert [s.name for s in refund_trace if s.name.startswith("effect")] == ["effect saga.refund_payment/1"]
    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider), "no global provider installed"

    # Log lines carry the ids of the span they were written in.
    span_ids = {f"{s.context.span_id:016x}": s for s in spans}
    logged = [r for r in caplog.records if getattr(r, "event", None) in ("effect_attempt", "timer_fired")]
    assert logged
    for record in logged:
        event, context = getattr(record, "event", ""), getattr(record, "context", {})
        if event == "effect_attempt" and context["outcome"] == "done" and "fed_back" not in context:
            continue  # a batched "done" is logged by the loop after the attempt's span ended
        span = span_ids[context["span_id"]]
        assert f"{span.context.trace_id:032x}" == context["trace_id"]
        assert span.name.split()[0] == ("effect" if event == "effect_attempt" else "timer")
    executed = [r for r in caplog.records if getattr(r, "event", None) == "input_executed"]
    assert executed
    assert all(span_ids[getattr(r, "context", {})["span_id"]].name == "execute order-saga" for r in executed)


def test_without_tracing_nothing_is_stored_on_the_rows(pg_store: PostgresStore, admin: object) -> None:
    import psycopg
    from psycopg import sql

    assert isinstance(admin, psycopg.Connection)
    service = WorkflowService(pg_store, workflows=[OrderSagaWorkflow])
    service.execute(StartCheckout(ORDER, 4_200))
    rows = admin.execute(sql.SQL("SELECT trace_context FROM {}.outbox").format(sql.Identifier(pg_store.schema)))
    assert [r[0] for r in rows] == [None]
