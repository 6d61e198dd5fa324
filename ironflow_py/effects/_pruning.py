"""The effect worker's pruning thread: `RetentionPolicy` applied every `policy.interval` (design/retention.md).

Runs beside the claim loop, on its own pooled connection per batch, so pruning never delays a claim.
Several workers may each run one: the store's prune lock lets one batch run at a time, and the others
report `busy` and wait for their next interval.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from typing import Any

from ironflow_py.clock import Clock, store_time
from ironflow_py.retention import PruneReport, RetentionPolicy
from ironflow_py.store.postgres import PostgresStore


class PruneLoop:
    """Prune `store` by `policy` every `policy.interval` until `stop()`.

    Args:
        store: The store to prune.
        policy: What to keep and for how long.
        clock: The service's clock (a `ManualClock` counts retention from its time; else the database's).
        projections: Projection names that bound pruning even before their checkpoint row exists.
        log: A bound structlog-style logger.
    """

    def __init__(
        self, store: PostgresStore, policy: RetentionPolicy, clock: Clock, projections: str | Iterable[str], log: Any
    ) -> None:
        self.pruner = store.pruner(projections)
        self.policy = policy
        self.clock = clock
        self.log = log
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ironflow-prune", daemon=True)
        #: Prunes that ran (for tests and health checks).
        self.rounds = 0

    def start(self) -> None:
        """Start the thread; the first prune runs at once."""
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Ask the thread to stop after its current batch and wait up to `timeout` seconds for it."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _prune(self) -> PruneReport:
        """Batches until one is not full, checking for `stop()` between them (each batch commits on its own)."""
        total = PruneReport()
        while not self._stop.is_set():
            report = self.pruner.prune_batch(self.policy, store_time(self.clock))
            total = total + report
            if report.busy or not report.full(self.policy):
                break
        return total

    def _run(self) -> None:
        failing = False
        interval = self.policy.interval.total_seconds()
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                report = self._prune()
            except Exception as exc:  # an outage: try again next interval, one error line per outage
                if not failing:
                    self.log.error("prune_failed", error=f"{type(exc).__name__}: {exc}", exc_info=exc)
                failing = True
            else:
                failing = False
                self.rounds += 1
                if report.rows or report.busy:
                    self.log.info(
                        "prune_done",
                        rows=report.rows,
                        effects=report.effects,
                        dead_effects=report.dead_effects,
                        instances=report.instances,
                        events=report.events,
                        batches=report.batches,
                        busy=report.busy,
                        duration_ms=round((time.monotonic() - started) * 1000, 3),
                    )
            self._stop.wait(interval)
