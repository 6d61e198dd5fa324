"""The built-in schedule workflow, pure: its decisions for reconcile, ticks, closes, pauses, triggers and
backfills, called directly with the time passed in (design/schedules.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ironflow_py import Completed, Decision, Failed, Schedule
from ironflow_py.composition import ChildRef
from ironflow_py.errors import ConfigurationError
from ironflow_py.schedule_workflow import (
    TICK_TIMER,
    BackfillSchedule,
    FireBuffered,
    FiresMissed,
    PauseSchedule,
    Reconcile,
    ResumeSchedule,
    RunClosed,
    RunEnded,
    RunStarted,
    RunsToStop,
    SchedulePaused,
    ScheduleState,
    ScheduleWorkflow,
    Tick,
    TickPlanned,
    TriggerSchedule,
)
from tests.schedule_app import RunReport, report

T = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


def every10(**kw: Any) -> Schedule:
    return Schedule("ten", report, every=timedelta(seconds=10), **kw)


class Driver:
    """Folds each decision into the state, as the engine would."""

    def __init__(self, schedule: Schedule) -> None:
        self.schedule = schedule
        self.wf = ScheduleWorkflow([schedule])
        self.state = ScheduleState()

    def send(self, input: Any, now: datetime) -> Decision[Any, Any]:
        decision = self.wf.decide(now, self.state, input)
        assert not decision.rejected, decision.rejection
        self.state = self.wf.fold(self.state, decision.events)
        return decision

    def reconcile(self, now: datetime = T) -> Decision[Any, Any]:
        return self.send(Reconcile(self.schedule.name, self.schedule.fingerprint()), now)

    def tick(self, now: datetime) -> Decision[Any, Any]:
        assert self.state.next_fire is not None
        return self.send(Tick(self.schedule.name, self.state.next_fire), now)


def started(decision: Decision[Any, Any]) -> list[str]:
    return [str(child.id) for child in decision.children]


def test_reconcile_plans_the_first_tick_with_its_jitter_recorded() -> None:
    d = Driver(every10(jitter=timedelta(seconds=3)))
    decision = d.reconcile(T + timedelta(seconds=1))
    [planned] = decision.events
    assert isinstance(planned, TickPlanned) and planned.fire_time == T + timedelta(seconds=10)
    assert 0 <= planned.jitter_us < 3_000_000
    [timer] = decision.timers
    assert timer.key == TICK_TIMER
    assert timer.at == T + timedelta(seconds=10, microseconds=planned.jitter_us)
    assert timer.input == Tick("ten", T + timedelta(seconds=10))


def test_reconcile_leaves_an_unchanged_schedule_alone_and_replans_a_changed_one() -> None:
    d = Driver(every10())
    d.reconcile()
    assert d.reconcile(T + timedelta(seconds=3)).events == ()
    changed = Driver(every10(overlap="allow_all"))
    changed.state = d.state
    [planned] = changed.reconcile(T + timedelta(seconds=3)).events
    assert isinstance(planned, TickPlanned) and planned.fingerprint == changed.schedule.fingerprint()


def test_a_tick_starts_one_child_with_the_id_of_its_fire_time_and_plans_the_next() -> None:
    d = Driver(every10())
    d.reconcile()
    decision = d.tick(T + timedelta(seconds=10, milliseconds=40))
    assert started(decision) == ["ten@2030-01-01T12:00:10Z"]
    [child] = decision.children
    assert child.input == RunReport("ten@2030-01-01T12:00:10Z", T + timedelta(seconds=10), "schedule")
    assert child.on_parent_close == "abandon"
    assert d.state.next_fire == T + timedelta(seconds=20)
    assert d.state.open_runs == ("ten@2030-01-01T12:00:10Z",)


def test_a_78_minute_clock_jump_starts_exactly_one_run_with_catchup_one() -> None:
    d = Driver(every10(catchup="one"))
    d.reconcile()
    decision = d.tick(T + timedelta(minutes=78, seconds=12))
    assert started(decision) == ["ten@2030-01-01T13:18:10Z"]
    missed = [e for e in decision.events if isinstance(e, FiresMissed)]
    assert [(m.count, m.why) for m in missed] == [(468, "catchup")]
    assert d.state.next_fire == T + timedelta(minutes=78, seconds=20)


def test_catchup_all_starts_each_fire_time_in_the_window_oldest_first() -> None:
    d = Driver(every10(catchup="all", overlap="allow_all", catchup_window=timedelta(seconds=30)))
    d.reconcile()
    decision = d.tick(T + timedelta(minutes=5, seconds=1))
    assert started(decision) == [f"ten@2030-01-01T12:04:{s}Z" for s in ("40", "50")] + ["ten@2030-01-01T12:05:00Z"]


def test_overlap_skip_drops_a_fire_while_a_run_is_open_and_the_close_frees_the_slot() -> None:
    d = Driver(every10(overlap="skip"))
    d.reconcile()
    first = started(d.tick(T + timedelta(seconds=10)))[0]
    second = d.tick(T + timedelta(seconds=20))
    assert started(second) == []
    assert [(e.count, e.why) for e in second.events if isinstance(e, FiresMissed)] == [(1, "overlap")]
    d.send(RunClosed("ten", first, "completed"), T + timedelta(seconds=25))
    assert d.state.open_runs == ()
    assert started(d.tick(T + timedelta(seconds=30))) == ["ten@2030-01-01T12:00:30Z"]


def test_buffer_one_starts_the_buffered_fire_when_the_open_run_closes() -> None:
    d = Driver(every10(overlap="buffer_one"))
    d.reconcile()
    first = started(d.tick(T + timedelta(seconds=10)))[0]
    assert isinstance(d.tick(T + timedelta(seconds=20)).events[0], FireBuffered)
    dropped = d.tick(T + timedelta(seconds=30))
    assert [(e.count, e.why) for e in dropped.events if isinstance(e, FiresMissed)] == [(1, "overlap")]
    closed = d.send(RunClosed("ten", first, "completed"), T + timedelta(seconds=31))
    assert started(closed) == ["ten@2030-01-01T12:00:20Z"]
    assert d.state.buffered == () and d.state.open_runs == ("ten@2030-01-01T12:00:20Z",)


def test_cancel_other_asks_the_open_run_to_stop_once_and_starts_the_newest_after() -> None:
    d = Driver(every10(overlap="cancel_other"))
    d.reconcile()
    first = started(d.tick(T + timedelta(seconds=10)))[0]
    asked = d.tick(T + timedelta(seconds=20))
    assert RunsToStop((first,), "cancel") in asked.events
    again = d.tick(T + timedelta(seconds=30))
    assert not [e for e in again.events if isinstance(e, RunsToStop)]  # asked once
    assert d.state.buffered == (T + timedelta(seconds=30),)
    assert started(d.send(RunClosed("ten", first, "cancelled"), T + timedelta(seconds=31))) == [
        "ten@2030-01-01T12:00:30Z"
    ]


def test_pause_cancels_the_tick_a_stale_tick_does_nothing_and_resume_replans_from_now() -> None:
    d = Driver(every10())
    d.reconcile()
    stale = Tick("ten", T + timedelta(seconds=10))
    paused = d.send(PauseSchedule("ten", "maintenance"), T + timedelta(seconds=5))
    assert paused.cancel_timers == (TICK_TIMER,) and d.state.paused
    assert d.send(stale, T + timedelta(seconds=10)).events == ()
    resumed = d.send(ResumeSchedule("ten"), T + timedelta(minutes=7, seconds=3))
    assert d.state.next_fire == T + timedelta(minutes=7, seconds=10)  # nothing caught up from the pause
    assert started(resumed) == []


def test_pause_on_failure_pauses_when_a_run_fails() -> None:
    d = Driver(every10(pause_on_failure=True))
    d.reconcile()
    run = started(d.tick(T + timedelta(seconds=10)))[0]
    decision = d.send(RunClosed("ten", run, "failed"), T + timedelta(seconds=12))
    assert decision.events == (RunEnded(run, "failed"), SchedulePaused(f"run {run} failed"))
    assert decision.cancel_timers == (TICK_TIMER,)


def test_trigger_starts_a_run_now_whatever_the_overlap() -> None:
    d = Driver(every10(overlap="skip"))
    d.reconcile()
    d.tick(T + timedelta(seconds=10))
    decision = d.send(TriggerSchedule("ten", "r1"), T + timedelta(seconds=11))
    assert started(decision) == ["ten@trigger/r1"]
    assert d.wf.input_key(TriggerSchedule("ten", "r1")) == "TriggerSchedule/r1"


def test_backfill_starts_each_fire_time_in_range_with_its_usual_id_untracked() -> None:
    d = Driver(every10())
    d.reconcile()
    decision = d.send(
        BackfillSchedule("ten", T - timedelta(seconds=30), T - timedelta(seconds=10), "b1"), T + timedelta(seconds=1)
    )
    assert started(decision) == [f"ten@2030-01-01T11:59:{s}Z" for s in ("30", "40", "50")]
    assert all(isinstance(e, RunStarted) and not e.tracked for e in decision.events)
    assert d.state.open_runs == ()


def test_child_closed_input_tells_the_schedule_named_in_the_run_id() -> None:
    wf = ScheduleWorkflow([every10()])
    ref = ChildRef("report", "ten@2030-01-01T12:00:10Z")
    assert wf.child_closed_input(ref, Completed(True)) == RunClosed("ten", ref.workflow_id, "completed")
    assert wf.child_closed_input(ref, Failed("x")) == RunClosed("ten", ref.workflow_id, "failed")


def test_an_undeclared_schedule_is_refused_and_a_removed_one_stops_ticking() -> None:
    wf = ScheduleWorkflow([every10()])
    assert wf.decide(T, ScheduleState(), PauseSchedule("gone")).rejected
    assert wf.decide(T, ScheduleState(), Tick("gone", T)).events == ()


def test_names_must_be_unique_and_free_of_at() -> None:
    with pytest.raises(ConfigurationError, match="declared twice"):
        ScheduleWorkflow([every10(), every10()])
    with pytest.raises(ConfigurationError, match="'@'"):
        ScheduleWorkflow([Schedule("a@b", report, every=timedelta(seconds=1))])
