"""An app with a 1-second schedule, for the schedule tests and `ironflow-py --app tests.schedule_app:app worker`."""

from __future__ import annotations

from datetime import timedelta

from ironflow_py import App, EffectRegistry, Schedule
from ironflow_py.examples.reports import FinishReport, ReportWorkflow, RunReport, report

__all__ = ["EVERY_SECOND", "FinishReport", "ReportWorkflow", "RunReport", "app", "report"]

#: Every second, each fire time run (catch-up "all" within a minute), runs allowed to overlap.
EVERY_SECOND = Schedule(
    "every-second", report, every=timedelta(seconds=1), overlap="allow_all", catchup="all",
    catchup_window=timedelta(minutes=1),
)  # fmt: skip
# An (empty) registry: a worker with none claims no outbox rows, so it would not deliver child starts.
app = App(workflows=[ReportWorkflow], effects=EffectRegistry(), schedules=[EVERY_SECOND])
