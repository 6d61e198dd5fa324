"""The built-in schedule workflow, pure: one instance per schedule name, each run started as a child.

Type ``ironflow.schedule``; the instance id is the schedule's name. Its `decide` plans the next fire time
with `ironflow_py.schedule` and keeps one durable timer, ``tick``, at that time plus its seeded jitter.
When the tick fires, the due fire times are worked out (catch-up), each goes through the overlap policy,
and a run that starts is `Decision.start_child(action(run), id=run_id_for(name, fire_time))`: the id comes
from the fire time, and the instance decides each tick once under its lock, so two workers never start
the same run twice (and a second start of one id is idempotent anyway). A run that closes comes back
through `child_closed_input` as `RunClosed`, which frees the overlap slot, starts a buffered fire, and
pauses the schedule if the run failed and `pause_on_failure` is set. See design/schedules.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from itertools import islice, takewhile
from typing import Any

import attrs

from ironflow_py.composition import ChildRef
from ironflow_py.decision import Decision
from ironflow_py.errors import ConfigurationError
from ironflow_py.lifecycle import RunOutcome
from ironflow_py.schedule import (
    MAX_CATCHUP,
    Schedule,
    ScheduledRun,
    catch_up,
    fire_times,
    jitter_for,
    next_fire_time,
    plan_overlap,
    run_id_for,
)
from ironflow_py.workflow import Workflow

SCHEDULE_TYPE = "ironflow.schedule"
TICK_TIMER = "tick"
#: Run outcomes that count as a failure for `pause_on_failure`.
FAILURES = frozenset({"failed", "timed_out"})


# -- inputs ------------------------------------------------------------------------------------------------


@attrs.frozen
class Reconcile:
    """The worker's start-up check: the declaration's fingerprint; plans the first tick, or replans."""

    name: str
    fingerprint: str


@attrs.frozen
class Tick:
    """The schedule's timer: the planned fire time fell due."""

    name: str
    fire_time: datetime


@attrs.frozen
class RunClosed:
    """A run the schedule started has closed (from `child_closed_input`)."""

    name: str
    run_id: str
    status: str


@attrs.frozen
class PauseSchedule:
    """Stop ticking until resumed; runs already started go on."""

    name: str
    reason: str | None = None
    request_id: str | None = None


@attrs.frozen
class ResumeSchedule:
    """Tick again from the next fire time after now (what passed while paused is not caught up)."""

    name: str
    request_id: str | None = None


@attrs.frozen
class TriggerSchedule:
    """Start one run now, whatever the overlap policy (an operator asked for it)."""

    name: str
    request_id: str


@attrs.frozen
class BackfillSchedule:
    """Start the runs of the fire times in `[start, end]` (at most `MAX_CATCHUP`), each with its usual id."""

    name: str
    start: datetime
    end: datetime
    request_id: str


# -- events ------------------------------------------------------------------------------------------------


@attrs.frozen
class TickPlanned:
    """The next tick: the nominal fire time and the seeded jitter drawn for it (microseconds)."""

    fire_time: datetime | None
    jitter_us: int
    fingerprint: str


@attrs.frozen
class RunStarted:
    """A run was started as a child with id `run_id`; `reason` is schedule, catchup, buffer, trigger or
    backfill."""

    run_id: str
    fire_time: datetime
    reason: str
    tracked: bool = True


@attrs.frozen
class FiresMissed:
    """Fire times that started nothing: `why` is catchup (the catch-up policy or window) or overlap."""

    count: int
    first: datetime | None
    last: datetime | None
    why: str


@attrs.frozen
class FireBuffered:
    """A fire time waits for the open runs to close (`buffer_one`, `buffer_all`, `cancel_other`, ...)."""

    fire_time: datetime
    replaces: tuple[datetime, ...] = ()


@attrs.frozen
class RunsToStop:
    """`cancel_other` / `terminate_other`: the open runs asked to stop (`how`: cancel or terminate)."""

    run_ids: tuple[str, ...]
    how: str


@attrs.frozen
class RunEnded:
    """A run closed with `status`."""

    run_id: str
    status: str


@attrs.frozen
class SchedulePaused:
    """No more ticks until resumed; `reason` says why (an operator's, or the failed run's id)."""

    reason: str | None


@attrs.frozen
class ScheduleResumed:
    """Ticking again."""


# -- effects -----------------------------------------------------------------------------------------------


@attrs.frozen
class StopRuns:
    """`cancel_other` / `terminate_other`: ask these open runs to cancel (through their workflow's
    `cancel_input`) or terminate them; run by the built-in handler `scheduling.stop_runs_handler`."""

    schedule: str
    run_ids: tuple[str, ...]
    how: str


# -- state -------------------------------------------------------------------------------------------------


@attrs.frozen
class ScheduleState:
    """One schedule's instance.

    Attributes:
        fingerprint: The declaration's fingerprint when the tick was last planned.
        next_fire: The planned fire time of the pending tick (None: paused, or no fire time within 50 years).
        jitter_us: The jitter drawn for that tick, in microseconds.
        paused: True while paused.
        pause_reason: Why it was paused.
        open_runs: Runs started by the schedule (not backfills) and not closed yet, oldest first.
        buffered: Fire times waiting for the open runs to close.
        stopping: Open runs asked to cancel or terminate.
        started: How many runs it started.
        missed: How many fire times started nothing.
        last_run_id: The most recent run it started.
    """

    fingerprint: str = ""
    next_fire: datetime | None = None
    jitter_us: int = 0
    paused: bool = False
    pause_reason: str | None = None
    open_runs: tuple[str, ...] = ()
    buffered: tuple[datetime, ...] = ()
    stopping: tuple[str, ...] = ()
    started: int = 0
    missed: int = 0
    last_run_id: str | None = None

    @property
    def status(self) -> str:
        """``paused``, ``running`` (a run is open) or ``idle``: its name in diagrams and `inspect`."""
        return "paused" if self.paused else ("running" if self.open_runs else "idle")


Event = TickPlanned | RunStarted | FiresMissed | FireBuffered | RunsToStop | RunEnded | SchedulePaused | ScheduleResumed
Input = Reconcile | Tick | RunClosed | PauseSchedule | ResumeSchedule | TriggerSchedule | BackfillSchedule


class ScheduleWorkflow(Workflow[ScheduleState, Input, Event, StopRuns]):
    """The built-in workflow behind `Schedule` declarations: one instance per schedule name.

    Registered by `WorkflowService(schedules=...)` (and so by `App(schedules=...)`); every decision is
    pure: it reads the declaration, the state and `now`.

    Args:
        schedules: The declared schedules (names unique, no ``@`` in a name).

    Raises:
        ConfigurationError: Two schedules share a name, or a name holds ``@``.
    """

    type = SCHEDULE_TYPE
    inputs = {
        "schedule.reconcile/1": Reconcile,
        "schedule.tick/1": Tick,
        "schedule.run_closed/1": RunClosed,
        "schedule.pause/1": PauseSchedule,
        "schedule.resume/1": ResumeSchedule,
        "schedule.trigger/1": TriggerSchedule,
        "schedule.backfill/1": BackfillSchedule,
    }
    events = {
        "schedule.tick_planned/1": TickPlanned,
        "schedule.run_started/1": RunStarted,
        "schedule.fires_missed/1": FiresMissed,
        "schedule.fire_buffered/1": FireBuffered,
        "schedule.runs_to_stop/1": RunsToStop,
        "schedule.run_ended/1": RunEnded,
        "schedule.paused/1": SchedulePaused,
        "schedule.resumed/1": ScheduleResumed,
    }
    effects = {"schedule.stop_runs/1": StopRuns}
    state_type = ScheduleState

    def __init__(self, schedules: Iterable[Schedule] = ()) -> None:
        self.schedules: dict[str, Schedule] = {}
        for schedule in schedules:
            if schedule.name in self.schedules:
                raise ConfigurationError(f"schedule {schedule.name!r} is declared twice")
            if "@" in schedule.name:
                raise ConfigurationError(f"schedule {schedule.name!r}: a name cannot hold '@' (run ids use it)")
            self.schedules[schedule.name] = schedule

    # -- identity ---------------------------------------------------------------------------------------

    def initial_state(self) -> ScheduleState:
        """A schedule before its first input."""
        return ScheduleState()

    def workflow_id(self, input: Input) -> str:
        """The schedule's name."""
        return input.name

    def input_key(self, input: Input) -> str | None:
        """Operator requests with a request id are idempotent (a repeat is a duplicate)."""
        if isinstance(input, TriggerSchedule | BackfillSchedule):
            return f"{type(input).__name__}/{input.request_id}"
        if isinstance(input, PauseSchedule | ResumeSchedule) and input.request_id is not None:
            return f"{type(input).__name__}/{input.request_id}"
        return None

    def child_closed_input(self, child: ChildRef, outcome: RunOutcome) -> Input | None:
        """A run closed: tell its schedule (the name is the run id's part before ``@``)."""
        name = child.workflow_id.split("@", 1)[0]
        return RunClosed(name, child.workflow_id, outcome.status.value)

    # -- evolve -----------------------------------------------------------------------------------------

    def evolve(self, state: ScheduleState, event: Event) -> ScheduleState:
        """Apply one event."""
        match event:
            case TickPlanned(fire_time, jitter_us, fingerprint):
                return attrs.evolve(state, next_fire=fire_time, jitter_us=jitter_us, fingerprint=fingerprint)
            case RunStarted(run_id, fire_time, reason, tracked):
                runs = (*state.open_runs, run_id) if tracked else state.open_runs
                buffered = tuple(t for t in state.buffered if t != fire_time) if reason == "buffer" else state.buffered
                return attrs.evolve(
                    state, open_runs=runs, buffered=buffered, started=state.started + 1, last_run_id=run_id
                )
            case FiresMissed(count, _, _, _):
                return attrs.evolve(state, missed=state.missed + count)
            case FireBuffered(fire_time, replaces):
                kept = tuple(t for t in state.buffered if t not in replaces)
                return attrs.evolve(state, buffered=(*kept, fire_time))
            case RunsToStop(run_ids, _):
                return attrs.evolve(state, stopping=(*state.stopping, *run_ids))
            case RunEnded(run_id, _):
                return attrs.evolve(
                    state,
                    open_runs=tuple(r for r in state.open_runs if r != run_id),
                    stopping=tuple(r for r in state.stopping if r != run_id),
                )
            case SchedulePaused(reason):
                return attrs.evolve(state, paused=True, pause_reason=reason, next_fire=None, jitter_us=0)
            case ScheduleResumed():
                return attrs.evolve(state, paused=False, pause_reason=None)
        raise TypeError(f"not a schedule event: {event!r}")  # pragma: no cover - the codec admits no other

    # -- decide -----------------------------------------------------------------------------------------

    def decide(self, now: datetime, state: ScheduleState, input: Input) -> Decision[Event, StopRuns]:
        """Plan ticks, start runs, apply the overlap and catch-up policies (see the module docstring)."""
        schedule = self.schedules.get(input.name)
        if schedule is None:
            if isinstance(input, RunClosed | Tick):
                return Decision.accept()  # removed from the App: it stays as it is, without ticking
            return Decision.reject(f"no schedule named {input.name!r} is declared on this app")
        plan = _Plan(schedule, state, now)
        match input:
            case Reconcile(_, fingerprint):
                if state.fingerprint == fingerprint and (state.next_fire is not None or state.paused):
                    return Decision.accept()  # declared as it was planned: nothing to do
                if not state.paused:
                    plan.plan_tick(now)
                else:
                    plan.events.append(TickPlanned(None, 0, fingerprint))
            case Tick(_, fire_time):
                if state.paused or fire_time != state.next_fire:
                    return Decision.accept()  # a tick from before a pause or a replan
                plan.tick(fire_time, now - timedelta(microseconds=state.jitter_us))
            case RunClosed(_, run_id, status):
                if run_id not in state.open_runs:
                    return Decision.accept()
                plan.run_closed(run_id, status)
            case PauseSchedule(_, reason, _):
                if state.paused:
                    return Decision.accept()
                plan.events.append(SchedulePaused(reason))
                plan.cancel_tick = True
            case ResumeSchedule():
                if not state.paused:
                    return Decision.accept()
                plan.events.append(ScheduleResumed())
                plan.plan_tick(now)
                plan.start_buffered_if_free()
            case TriggerSchedule(name, request_id):
                plan.start(ScheduledRun(name, now, f"{name}@trigger/{request_id}", "trigger"))
            case BackfillSchedule(name, start, end, _):
                if end < start:
                    return Decision.reject("backfill: end is before start")
                times = fire_times(schedule, start - timedelta(microseconds=1))
                for at in islice(takewhile(lambda t: t <= end, times), MAX_CATCHUP):
                    plan.start(ScheduledRun(name, at, run_id_for(name, at), "backfill"), tracked=False)
        return plan.decision()


class _Plan:
    """One decision being built: events in order, the runs to start, the tick to (re)schedule."""

    def __init__(self, schedule: Schedule, state: ScheduleState, now: datetime) -> None:
        self.schedule = schedule
        self.state = state
        self.now = now
        self.events: list[Event] = []
        self.effects: list[StopRuns] = []
        self.starts: list[tuple[ScheduledRun, Any]] = []
        self.tick_at: tuple[datetime, Tick] | None = None
        self.cancel_tick = False
        self.open_runs = state.open_runs
        self.buffered = state.buffered

    def plan_tick(self, after: datetime) -> None:
        schedule = self.schedule
        nominal = next_fire_time(schedule, after)
        if nominal is None:
            self.events.append(TickPlanned(None, 0, schedule.fingerprint()))
            self.cancel_tick = True
            return
        jitter = jitter_for(schedule, nominal)
        self.events.append(TickPlanned(nominal, jitter // timedelta(microseconds=1), schedule.fingerprint()))
        self.tick_at = (nominal + jitter, Tick(schedule.name, nominal))

    def start(self, run: ScheduledRun, *, tracked: bool = True) -> None:
        self.events.append(RunStarted(run.run_id, run.fire_time, run.reason, tracked))
        self.starts.append((run, self.schedule.action(run)))
        if tracked:
            self.open_runs = (*self.open_runs, run.run_id)

    def tick(self, planned: datetime, now: datetime) -> None:
        schedule, name = self.schedule, self.schedule.name
        result = catch_up(schedule, planned, now)
        if result.missed:
            self.events.append(FiresMissed(result.missed, result.first_missed, result.last_missed, "catchup"))
        stop: list[str] = []
        for at in result.fire:
            reason = "schedule" if at == planned else "catchup"
            overlap = plan_overlap(schedule.overlap, self.open_runs, self.buffered, at)
            if overlap.start:
                self.start(ScheduledRun(name, at, run_id_for(name, at), reason))
            elif overlap.dropped:
                self.events.append(FiresMissed(1, at, at, "overlap"))
            else:
                replaced = tuple(t for t in self.buffered if t not in overlap.buffered)
                self.events.append(FireBuffered(at, replaced))
                self.buffered = overlap.buffered
                asked = overlap.cancel or overlap.terminate
                stop += [r for r in asked if r not in self.state.stopping and r not in stop]
        if stop:
            how = "cancel" if schedule.overlap == "cancel_other" else "terminate"
            self.events.append(RunsToStop(tuple(stop), how))
            self.effects.append(StopRuns(name, tuple(stop), how))
        self.plan_tick(max(now, planned))

    def run_closed(self, run_id: str, status: str) -> None:
        self.events.append(RunEnded(run_id, status))
        self.open_runs = tuple(r for r in self.open_runs if r != run_id)
        if status in FAILURES and self.schedule.pause_on_failure and not self.state.paused:
            self.events.append(SchedulePaused(f"run {run_id} {status}"))
            self.cancel_tick = True
            return
        if not self.state.paused:
            self.start_buffered_if_free()

    def start_buffered_if_free(self) -> None:
        if self.open_runs or not self.buffered:
            return
        at, self.buffered = self.buffered[0], self.buffered[1:]
        name = self.schedule.name
        self.start(ScheduledRun(name, at, run_id_for(name, at), "buffer"))

    def decision(self) -> Decision[Event, StopRuns]:
        decision: Decision[Event, StopRuns] = Decision.accept(*self.events, effects=self.effects)
        for run, input in self.starts:
            # The schedule never closes, so its runs are never cancelled with it; each keeps its own deadline.
            decision = decision.start_child(input, id=run.run_id, on_parent_close="abandon", deadline="own")
        if self.tick_at is not None:
            decision = decision.with_timer(TICK_TIMER, *self.tick_at)
        elif self.cancel_tick:
            decision = decision.cancel_timer(TICK_TIMER)
        return decision


def schedule_names(schedules: Sequence[Schedule]) -> list[str]:
    """The declared names, in declaration order (for listings)."""
    return [s.name for s in schedules]
