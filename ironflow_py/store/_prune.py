"""The batch loop both pruners share: batches until one is not full, or a limit is reached."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from ironflow_py.retention import PruneReport, RetentionPolicy


class _Batches(Protocol):
    def prune_batch(self, policy: RetentionPolicy, now: datetime | None = None) -> PruneReport: ...


def prune_until_done(
    pruner: _Batches, policy: RetentionPolicy, now: datetime | None, max_batches: int | None
) -> PruneReport:
    """Run `pruner.prune_batch` until a batch is not full (or busy), or `max_batches` batches have run.

    Returns:
        The sum of the batches' reports.
    """
    total = PruneReport()
    while max_batches is None or total.batches < max_batches:
        report = pruner.prune_batch(policy, now)
        total = total + report
        if report.busy or not report.full(policy):
            break
    return total
