"""The Observer with the OpenTelemetry SDK's in-memory exporter and a private Prometheus registry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from ironflow_py.errors import LeaseLost
from ironflow_py.telemetry import Metrics, Observer, Tracing

NOW = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


def test_a_stored_trace_context_makes_the_later_attempt_a_child_of_the_decision(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    observer = Observer(tracing=Tracing(provider))
    with observer.decision("order-saga", "o1", "StartCheckout") as first:
        first.outcome = "accepted"
        stored = first.trace_context
    assert stored is not None and stored.startswith("00-")
    # Later, on a worker thread with no current span: the attempt starts from the stored context only.
    with observer.effect_attempt(
        effect_id=1,
        workflow_type="order-saga",
        workflow_id="o1",
        effect_type="saga.charge_payment/1",
        attempt=1,
        due_at=NOW,
        now=NOW,
        trace_context=stored,
    ) as attempt:
        with observer.decision("order-saga", "o1", "PaymentResult") as second:
            second.outcome = "accepted"
        attempt.outcome = "done"
    spans = {s.name: s for s in exporter.get_finished_spans()}
    execute = [s for s in exporter.get_finished_spans() if s.name == "execute order-saga"]
    effect = spans["effect saga.charge_payment/1"]
    assert len(execute) == 2
    assert {s.context.trace_id for s in exporter.get_finished_spans()} == {execute[0].context.trace_id}
    assert effect.parent is not None and effect.parent.span_id == execute[0].context.span_id
    assert execute[1].parent is not None and execute[1].parent.span_id == effect.context.span_id
    assert effect.attributes is not None and effect.attributes["ironflow.outcome"] == "done"
    assert trace.get_tracer_provider().__class__.__name__ == "ProxyTracerProvider", "no global provider installed"


def test_log_fields_carry_the_span_ids_and_are_empty_without_tracing(provider: TracerProvider) -> None:
    with Observer(tracing=Tracing(provider)).decision("t", "i", "X") as probe:
        fields = dict(probe.log_fields())
        ctx = trace.get_current_span().get_span_context()
    assert fields == {"trace_id": f"{ctx.trace_id:032x}", "span_id": f"{ctx.span_id:016x}"}
    with Observer().decision("t", "i", "X") as plain:
        assert plain.log_fields() == {} and plain.trace_context is None


def test_the_default_tracing_is_a_no_op_that_stores_no_context() -> None:
    with Observer(tracing=Tracing()).decision("t", "i", "X") as probe:
        assert probe.trace_context is None
        assert probe.log_fields() == {}


def value(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_a_failing_decision_counts_as_error_and_a_lost_lease_as_lease_lost() -> None:
    metrics = Metrics()
    observer = Observer(metrics=metrics)
    with pytest.raises(ValueError), observer.decision("t", "i", "X"):
        raise ValueError("boom")
    with pytest.raises(LeaseLost), observer.decision("t", "i", "X"):
        raise LeaseLost("effect", 1, "w1")
    with observer.decision("t", "i", "X") as probe:
        probe.outcome, probe.replayed, probe.closed = "accepted", 7, "shipped"
    assert value(metrics, "ironflow_inputs_total", workflow_type="t", outcome="error") == 1
    assert value(metrics, "ironflow_inputs_total", workflow_type="t", outcome="lease_lost") == 1
    assert value(metrics, "ironflow_inputs_total", workflow_type="t", outcome="accepted") == 1
    assert value(metrics, "ironflow_decision_duration_seconds_count", workflow_type="t") == 3
    assert value(metrics, "ironflow_decision_replayed_events_sum", workflow_type="t") == 7
    assert value(metrics, "ironflow_workflows_closed_total", workflow_type="t", outcome="shipped") == 1


def test_delays_are_seconds_past_the_due_time() -> None:
    metrics = Metrics()
    observer = Observer(metrics=metrics)
    with observer.timer_firing(
        timer_id=1,
        workflow_type="t",
        workflow_id="i",
        timer_key="k",
        due_at=NOW,
        now=NOW + timedelta(seconds=3),
        trace_context=None,
    ) as probe:
        probe.outcome = "accepted"
    with observer.effect_attempt(
        effect_id=1,
        workflow_type="t",
        workflow_id="i",
        effect_type="e",
        attempt=1,
        due_at=NOW,
        now=NOW + timedelta(milliseconds=250),
        trace_context=None,
    ):
        pass
    observer.effect_finished("t", "e", "retry", 0.5)
    assert value(metrics, "ironflow_timer_firing_delay_seconds_sum", workflow_type="t") == 3.0
    assert value(metrics, "ironflow_timer_firings_total", workflow_type="t", outcome="accepted") == 1
    assert value(metrics, "ironflow_effect_schedule_to_start_seconds_sum", workflow_type="t", effect_type="e") == 0.25
    assert value(metrics, "ironflow_effect_attempts_total", workflow_type="t", effect_type="e", outcome="retry") == 1


def test_closing_decisions_are_counted_by_how_the_instance_closed() -> None:
    from ironflow_py import MemoryStore, WorkflowService
    from ironflow_py.examples.order_saga import OrderSagaWorkflow, StartCheckout

    metrics = Metrics()
    service = WorkflowService(MemoryStore(), workflows=[OrderSagaWorkflow], observer=Observer(metrics=metrics))
    service.execute(StartCheckout("o1", 100))
    service.execute(StartCheckout("o2", 100))
    assert value(metrics, "ironflow_workflows_closed_total", workflow_type="order-saga", outcome="terminated") is None
    service.terminate("order-saga", "o1", "operator said so")
    assert value(metrics, "ironflow_workflows_closed_total", workflow_type="order-saga", outcome="terminated") == 1
    assert value(metrics, "ironflow_inputs_total", workflow_type="order-saga", outcome="accepted") == 3
    assert value(metrics, "ironflow_decision_replayed_events_count", workflow_type="order-saga") == 3
