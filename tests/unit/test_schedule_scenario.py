"""Schedules run end to end in memory (Scenario: MemoryStore, ManualClock, the real attempt code): ticks
start child runs whose ids come from their fire times, closes come back, catch-up and pause hold."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ironflow_py import Completed, Schedule, Terminated
from ironflow_py.schedule_workflow import SCHEDULE_TYPE, ScheduleState
from ironflow_py.testing import Scenario
from tests.schedule_app import FinishReport, ReportWorkflow, report

T = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


def scenario(*, instant: bool = True, **kw: object) -> Scenario:
    schedule = Schedule("ten", report, every=timedelta(seconds=10), **kw)  # type: ignore[arg-type]
    s = Scenario(ReportWorkflow(instant), schedules=[schedule], start=T)
    s.service.schedules.reconcile()
    return s


def state(s: Scenario) -> ScheduleState:
    result: ScheduleState = s.state(SCHEDULE_TYPE, "ten")
    return result


def runs(s: Scenario) -> list[str]:
    return sorted(i.workflow_id for i in s.service.list_instances("report"))


def test_each_tick_starts_one_run_named_by_its_fire_time_and_its_close_comes_back() -> None:
    s = scenario()
    s.advance(timedelta(seconds=9))
    assert runs(s) == []
    for _ in range(3):
        s.advance(timedelta(seconds=10))  # one tick at a time (a jump of several is a gap: catch-up applies)
    assert runs(s) == [f"ten@2030-01-01T12:00:{n}0Z" for n in (1, 2, 3)]
    assert s.result("report", "ten@2030-01-01T12:00:10Z") == Completed(True)
    assert state(s).started == 3 and state(s).open_runs == ()  # every close was delivered to the schedule


def test_workers_stopped_for_10_minutes_resume_with_one_run_under_catchup_one() -> None:
    s = scenario(catchup="one")
    s.advance(timedelta(seconds=10))
    s.clock.advance(timedelta(minutes=10))  # nothing runs meanwhile: the workers are stopped
    s.run_due()
    assert len(runs(s)) == 2 and runs(s)[-1] == "ten@2030-01-01T12:10:10Z"
    assert state(s).missed == 59


def test_a_skip_overlap_drops_fires_while_a_run_is_open_and_resumes_after_it_closes() -> None:
    s = scenario(instant=False, overlap="skip")
    for _ in range(3):
        s.advance(timedelta(seconds=10))
    assert runs(s) == ["ten@2030-01-01T12:00:10Z"]
    s.send(FinishReport("ten@2030-01-01T12:00:10Z"))
    s.advance(timedelta(seconds=10))
    assert runs(s) == ["ten@2030-01-01T12:00:10Z", "ten@2030-01-01T12:00:40Z"]
    assert state(s).missed == 2


def test_pause_trigger_resume_and_backfill() -> None:
    s = scenario()
    s.service.schedules.pause("ten", "maintenance")
    s.advance(timedelta(minutes=1))
    assert runs(s) == []
    assert s.service.schedules.show("ten").status == "paused"
    run_id = s.service.schedules.trigger("ten", request_id="r1")
    s.run_due()
    assert runs(s) == ["ten@trigger/r1"]
    s.service.schedules.resume("ten")
    s.advance(timedelta(seconds=10))
    assert runs(s)[0] == "ten@2030-01-01T12:01:10Z" and run_id == "ten@trigger/r1"
    asked = s.service.schedules.backfill("ten", T, T + timedelta(seconds=20), request_id="b1")
    s.run_due()
    assert asked == ["ten@2030-01-01T12:00:00Z", "ten@2030-01-01T12:00:10Z", "ten@2030-01-01T12:00:20Z"]
    assert set(asked) <= set(runs(s))
    # The same fire times again start nothing new: the ids are taken.
    s.service.schedules.backfill("ten", T, T + timedelta(seconds=20), request_id="b2")
    s.run_due()
    assert len(runs(s)) == 5


def test_cancel_other_cancels_the_open_run_and_starts_the_newest_fire_once_it_closed() -> None:
    s = scenario(instant=False, overlap="cancel_other")
    s.advance(timedelta(seconds=10))
    s.advance(timedelta(seconds=10))
    assert s.result("report", "ten@2030-01-01T12:00:10Z") == Completed(False)  # its cancel_input ran
    assert runs(s) == ["ten@2030-01-01T12:00:10Z", "ten@2030-01-01T12:00:20Z"]
    assert state(s).open_runs == ("ten@2030-01-01T12:00:20Z",) and state(s).buffered == ()


def test_terminate_other_terminates_the_open_run() -> None:
    s = scenario(instant=False, overlap="terminate_other")
    s.advance(timedelta(seconds=10))
    s.advance(timedelta(seconds=10))
    assert s.result("report", "ten@2030-01-01T12:00:10Z") == Terminated(
        "schedule 'ten': a newer run is due (terminate_other)"
    )
    assert state(s).open_runs == ("ten@2030-01-01T12:00:20Z",)
