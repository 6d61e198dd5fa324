"""`Metrics`: Prometheus counters, histograms and store-backed gauges for the engine (extra `metrics`).

Every metric lives in the `CollectorRegistry` this object owns (or is given), never in prometheus-client's
global one, so two services in one process, or two tests, never share counters. Durations and delays are
in seconds. Labels are bounded: workflow type, effect type, outcome, projection name, loop; never an
instance id, effect id or worker id (design/operations.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ironflow_py._log import get_log
from ironflow_py.store.postgres import PostgresStore
from ironflow_py.store.postgres_ops import StoreOps

_log = get_log("telemetry")

#: Seconds, from a fast decision (1 ms) to a slow handler (2 min).
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
#: Seconds a due effect or timer waited: from a NOTIFY wake-up (10 ms) to a worker that was down (1 h).
DELAY_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)
#: Events folded before a decision: 0 with a warm cache, the history's length without one.
REPLAY_BUCKETS = (0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000, 10000)


class Metrics:
    """The engine's Prometheus metrics, in one registry.

    Args:
        registry: the registry to put them in; None: a new `CollectorRegistry` owned by this object.
        namespace: the metric name prefix.
    """

    def __init__(self, registry: CollectorRegistry | None = None, *, namespace: str = "ironflow") -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        reg, ns = self.registry, namespace
        self.inputs = Counter(
            "inputs", "Inputs executed, by outcome.", ["workflow_type", "outcome"], namespace=ns, registry=reg
        )
        self.decision_seconds = Histogram(
            "decision_duration_seconds",
            "Time to execute one input: lock, load, decide, write, commit.",
            ["workflow_type"],
            namespace=ns,
            registry=reg,
            buckets=DURATION_BUCKETS,
        )
        self.replayed = Histogram(
            "decision_replayed_events",
            "Events folded to rebuild the state before one decision.",
            ["workflow_type"],
            namespace=ns,
            registry=reg,
            buckets=REPLAY_BUCKETS,
        )
        self.closed_total = Counter(
            "workflows_closed",
            "Instances that reached a terminal state, by outcome.",
            ["workflow_type", "outcome"],
            namespace=ns,
            registry=reg,
        )
        self.attempts = Counter(
            "effect_attempts",
            "Effect attempts, by outcome (done, retry, dead, lease_lost).",
            ["workflow_type", "effect_type", "outcome"],
            namespace=ns,
            registry=reg,
        )
        self.attempt_seconds = Histogram(
            "effect_attempt_duration_seconds",
            "Time of one effect attempt: the handler and settling its row.",
            ["workflow_type", "effect_type"],
            namespace=ns,
            registry=reg,
            buckets=DURATION_BUCKETS,
        )
        self.schedule_to_start = Histogram(
            "effect_schedule_to_start_seconds",
            "Time from when an effect became due (queued, or its retry time) to the start of its attempt.",
            ["workflow_type", "effect_type"],
            namespace=ns,
            registry=reg,
            buckets=DELAY_BUCKETS,
        )
        self.timers = Counter(
            "timer_firings",
            "Timer firings, by outcome (the decision's status, skipped, retry).",
            ["workflow_type", "outcome"],
            namespace=ns,
            registry=reg,
        )
        self.timer_delay = Histogram(
            "timer_firing_delay_seconds",
            "Time from a timer's due time to its firing.",
            ["workflow_type"],
            namespace=ns,
            registry=reg,
            buckets=DELAY_BUCKETS,
        )
        self.batches = Counter(
            "projection_batches",
            "Projection batches, by outcome.",
            ["projection", "outcome"],
            namespace=ns,
            registry=reg,
        )
        self.batch_seconds = Histogram(
            "projection_batch_duration_seconds",
            "Time of one projection batch: read, handle, save the checkpoint, commit.",
            ["projection"],
            namespace=ns,
            registry=reg,
            buckets=DURATION_BUCKETS,
        )
        self.projected = Counter(
            "projection_events", "Events handed to a projection's handler.", ["projection"], namespace=ns, registry=reg
        )
        self.in_flight = Gauge(
            "worker_in_flight",
            "Units a worker loop holds now (running or claimed and queued).",
            ["loop"],
            namespace=ns,
            registry=reg,
        )
        self.capacity = Gauge(
            "worker_capacity",
            "Units a worker loop runs at once (its concurrency).",
            ["loop"],
            namespace=ns,
            registry=reg,
        )
        self._namespace = ns

    # -- what the observer reports -------------------------------------------------------------------------

    def decision(self, workflow_type: str, outcome: str, seconds: float, replayed: int | None) -> None:
        """Count one executed input with its duration and the events replayed before it.

        Args:
            workflow_type: the workflow's type name.
            outcome: the outcome status, `lease_lost` or `error`.
            seconds: the decision's duration.
            replayed: events folded before deciding (None: not known).
        """
        self.inputs.labels(workflow_type, outcome).inc()
        self.decision_seconds.labels(workflow_type).observe(seconds)
        if replayed is not None:
            self.replayed.labels(workflow_type).observe(replayed)

    def closed(self, workflow_type: str, outcome: str) -> None:
        """Count an instance that reached a terminal state.

        Args:
            workflow_type: the workflow's type name.
            outcome: how it closed (`completed`, ...).
        """
        self.closed_total.labels(workflow_type, outcome).inc()

    def effect_started(self, workflow_type: str, effect_type: str, delay: float) -> None:
        """Record how long a due effect waited for its attempt to start.

        Args:
            workflow_type: the workflow's type name.
            effect_type: the effect's stored type name.
            delay: seconds from due to start (negative values, from clock skew, count as 0).
        """
        self.schedule_to_start.labels(workflow_type, effect_type).observe(max(0.0, delay))

    def effect_attempt(self, workflow_type: str, effect_type: str, outcome: str, seconds: float) -> None:
        """Count one finished effect attempt.

        Args:
            workflow_type: the workflow's type name.
            effect_type: the effect's stored type name.
            outcome: `done`, `retry`, `dead` or `lease_lost`.
            seconds: the attempt's duration.
        """
        self.attempts.labels(workflow_type, effect_type, outcome).inc()
        self.attempt_seconds.labels(workflow_type, effect_type).observe(seconds)

    def timer_fired(self, workflow_type: str, outcome: str, delay: float, seconds: float) -> None:
        """Count one timer firing and record its delay past the due time.

        Args:
            workflow_type: the workflow's type name.
            outcome: the decision's status, `skipped` or `retry`.
            delay: seconds past the due time (negative values count as 0).
            seconds: the firing's duration (not recorded: the decision's histogram has it).
        """
        del seconds  # the firing's own duration is the decision's, already measured
        self.timers.labels(workflow_type, outcome).inc()
        self.timer_delay.labels(workflow_type).observe(max(0.0, delay))

    def projection_batch(self, projection: str, outcome: str, seconds: float, events: int) -> None:
        """Count one projection batch.

        Args:
            projection: the projection's name.
            outcome: `committed`, `empty` or `error`.
            seconds: the batch's duration.
            events: events handed to the handler.
        """
        self.batches.labels(projection, outcome).inc()
        self.batch_seconds.labels(projection).observe(seconds)
        if events:
            self.projected.labels(projection).inc(events)

    def worker_load(self, loop: str, in_flight: int, capacity: int) -> None:
        """Set the in-flight and capacity gauges of one worker loop.

        Args:
            loop: the loop's name.
            in_flight: units it holds now.
            capacity: units it runs at once.
        """
        self.in_flight.labels(loop).set(in_flight)
        self.capacity.labels(loop).set(capacity)

    # -- gauges read from the database at scrape time ------------------------------------------------------

    def watch_outbox(self, store: PostgresStore, now: Callable[[], datetime]) -> None:
        """Add gauges of the outbox and timers, read from `store` at every scrape.

        Pending, due, in flight, retrying and dead effects, the oldest pending effect's age, scheduled
        and overdue timers.

        Args:
            store: the PostgresStore to query (one short read per scrape).
            now: the current time (timezone-aware; the service's clock).
        """
        self.registry.register(_OutboxCollector(StoreOps(store), now, self._namespace))

    def watch_projections(self, status: Callable[[], Sequence[tuple[str, int, float | None]]]) -> None:
        """Add the projection lag gauges, read at every scrape.

        Args:
            status: returns (projection name, lag in events, lag in seconds or None) per projection, e.g.
                from `ProjectionControl.status`.
        """
        self.registry.register(_ProjectionCollector(status, self._namespace))


class _OutboxCollector(Collector):
    def __init__(self, ops: StoreOps, now: Callable[[], datetime], namespace: str) -> None:
        self.ops = ops
        self.now = now
        self.ns = namespace

    def collect(self) -> Iterator[Metric]:
        now = self.now()
        try:
            h = self.ops.outbox_health(now)
        except Exception as exc:  # a scrape must still answer (the other metrics) while the database is away
            _log.warning("metrics_outbox_failed", exc_info=exc)
            return
        ns = self.ns
        for name, help_, value in (
            ("outbox_pending", "Effects not yet done or dead.", h.pending),
            ("outbox_due", "Pending effects due now and not claimed.", h.due_now),
            ("outbox_in_flight", "Effects claimed by a worker whose lease holds.", h.in_flight),
            ("outbox_retrying", "Pending effects waiting for their next attempt.", h.retrying),
            ("outbox_dead", "Effects that failed for good (dead letters).", h.dead),
            ("timers_scheduled", "Timers waiting to fire.", h.timers),
            ("timers_overdue", "Timers past their due time.", h.timers_overdue),
        ):
            yield GaugeMetricFamily(f"{ns}_{name}", help_, value=value)
        age = 0.0 if h.oldest_pending_at is None else max(0.0, (now - h.oldest_pending_at).total_seconds())
        yield GaugeMetricFamily(
            f"{ns}_outbox_oldest_pending_age_seconds", "Age of the oldest pending effect (0: none).", value=age
        )


class _ProjectionCollector(Collector):
    def __init__(self, status: Callable[[], Sequence[tuple[str, int, float | None]]], namespace: str) -> None:
        self.status = status
        self.ns = namespace

    def collect(self) -> Iterator[Metric]:
        try:
            rows = self.status()
        except Exception as exc:
            _log.warning("metrics_projections_failed", exc_info=exc)
            return
        events = GaugeMetricFamily(
            f"{self.ns}_projection_lag_events", "Committed events a projection has not handled.", labels=["projection"]
        )
        seconds = GaugeMetricFamily(
            f"{self.ns}_projection_lag_seconds",
            "Age of the oldest event a projection has not handled (0: caught up).",
            labels=["projection"],
        )
        for name, lag_events, lag_seconds in rows:
            events.add_metric([name], lag_events)
            seconds.add_metric([name], lag_seconds or 0.0)
        yield events
        yield seconds
