"""`Tracing`: OpenTelemetry spans for decisions, effect attempts, timer firings and projection batches.

Only `opentelemetry-api` is needed (extra `ironflow_py[otel]`); the application brings the SDK and its
exporter. The tracer provider is an argument and defaults to a no-op one: this module never installs or
reads the global provider. A decision's span context is stored, as a W3C `traceparent`, on the outbox rows
and timers it writes, and the attempt or firing that runs them later (in another process, maybe) starts
its span as a child of it, so a saga is one connected trace (design/operations.md).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_PROPAGATOR = TraceContextTextMapPropagator()
INSTRUMENTATION_NAME = "ironflow_py"


def traceparent(span: trace.Span) -> str | None:
    """The W3C `traceparent` header value of `span` (None when its context is invalid, e.g. no-op spans).

    Args:
        span: an OpenTelemetry span.

    Returns:
        `00-<trace id>-<span id>-<flags>`, per the W3C Trace Context recommendation, or None.
    """
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=trace.set_span_in_context(span))
    return carrier.get("traceparent")


class Tracing:
    """Makes the engine's spans with a tracer from the given provider.

    Args:
        tracer_provider: an OpenTelemetry `TracerProvider` (the SDK's, configured by the application);
            None: a no-op provider, so spans cost almost nothing and nothing is exported.
        tracer: a ready `Tracer` instead of a provider (takes precedence).
    """

    def __init__(
        self, tracer_provider: trace.TracerProvider | None = None, *, tracer: trace.Tracer | None = None
    ) -> None:
        if tracer is None:
            provider = tracer_provider if tracer_provider is not None else trace.NoOpTracerProvider()
            tracer = provider.get_tracer(INSTRUMENTATION_NAME)
        self.tracer = tracer

    @contextmanager
    def span(
        self, name: str, *, parent: str | None = None, attributes: Mapping[str, Any] | None = None
    ) -> Iterator[trace.Span]:
        """Start a span and make it current for the block (so spans started inside are its children).

        Args:
            name: the span name (low cardinality: `execute order-saga`, `effect ChargePayment`).
            parent: a stored W3C `traceparent`; the span becomes its child. None: the child of the
                current span, or a new trace.
            attributes: span attributes (instance ids belong here, never in metric labels).

        Yields:
            The started span.
        """
        context = None
        if parent:
            context = _PROPAGATOR.extract({"traceparent": parent})
        with self.tracer.start_as_current_span(name, context=context, attributes=attributes) as span:
            yield span

    @staticmethod
    def annotate(key: str, value: str | int) -> None:
        """Set an attribute on the current span (a no-op outside one).

        Args:
            key: the attribute name.
            value: its value.
        """
        trace.get_current_span().set_attribute(key, value)


def current_log_fields() -> Mapping[str, str]:
    """The ids of the current span, for a log line; useful in an application's own logging filter.

    Returns:
        `{"trace_id": 32 hex digits, "span_id": 16 hex digits}`, or an empty mapping outside a span.
    """
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return {}
    return {"trace_id": f"{ctx.trace_id:032x}", "span_id": f"{ctx.span_id:016x}"}
