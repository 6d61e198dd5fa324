"""A scheduled report: the run workflow a `Schedule` starts (see the README's "Schedules" and
design/schedules.md).

`ReportWorkflow` is an ordinary workflow: each run is an instance whose id the schedule derives from the
fire time; it completes at once (or, with `instant=False`, when `FinishReport` comes), and a cancel request
finishes it unsuccessfully, which is what `overlap="cancel_other"` asks of it. `nightly` declares the
schedule; `app` is ready for `ironflow-py --app ironflow_py.examples.reports:app worker`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import attrs

from ironflow_py import App, CancelRequest, Completed, Decision, EffectRegistry, Schedule, ScheduledRun, Workflow


@attrs.frozen
class RunReport:
    run_id: str
    fire_time: datetime
    reason: str


@attrs.frozen
class ReportStarted:
    fire_time: datetime


@attrs.frozen
class FinishReport:
    run_id: str
    ok: bool = True


@attrs.frozen
class ReportFinished:
    ok: bool


@attrs.frozen
class Report:
    fire_time: datetime | None = None
    ok: bool | None = None


class ReportWorkflow(Workflow[Report, RunReport | FinishReport, ReportStarted | ReportFinished, object]):
    """A scheduled run: it completes at once when `instant`, else waits for `FinishReport`."""

    type = "report"
    inputs = {"report.run/1": RunReport, "report.finish/1": FinishReport}
    events = {"report.started/1": ReportStarted, "report.finished/1": ReportFinished}

    def __init__(self, instant: bool = True) -> None:
        self.instant = instant

    def initial_state(self) -> Report:
        return Report()

    def workflow_id(self, input: RunReport | FinishReport) -> str:
        return input.run_id

    def evolve(self, state: Report, event: ReportStarted | ReportFinished) -> Report:
        if isinstance(event, ReportStarted):
            return attrs.evolve(state, fire_time=event.fire_time)
        return attrs.evolve(state, ok=event.ok)

    def outcome(self, state: Report) -> Completed | None:
        return Completed(state.ok) if state.ok is not None else None

    def cancel_input(self, request: CancelRequest) -> FinishReport:
        return FinishReport(request.workflow_id, ok=False)

    def decide(
        self, now: datetime, state: Report, input: RunReport | FinishReport
    ) -> Decision[ReportStarted | ReportFinished, object]:
        if isinstance(input, RunReport):
            events: list[ReportStarted | ReportFinished] = [ReportStarted(input.fire_time)]
            if self.instant:
                events.append(ReportFinished(True))
            return Decision.accept(*events)
        return Decision.accept(ReportFinished(input.ok))


def report(run: ScheduledRun) -> RunReport:
    """The schedules' action: the run's first input."""
    return RunReport(run.run_id, run.fire_time, run.reason)


#: Every night at 02:30 in Paris: a run still open skips the night; after an outage one run catches up.
nightly = Schedule(
    "nightly", report, cron="30 2 * * *", tz="Europe/Paris", overlap="skip", catchup="one",
    catchup_window=timedelta(hours=6), jitter=timedelta(minutes=5), pause_on_failure=True,
)  # fmt: skip
app = App(workflows=[ReportWorkflow], effects=EffectRegistry(), schedules=[nightly])
