"""`ScheduleControl` (`service.schedules`): every operation is one input to the schedule's instance."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import attrs

from ironflow_py.effects._registry import EffectContext, EffectRegistry
from ironflow_py.errors import InvalidDelay, NotCancellable, NotFound
from ironflow_py.records import OutcomeStatus, RecordedEvent
from ironflow_py.schedule import Schedule
from ironflow_py.schedule_workflow import (
    SCHEDULE_TYPE,
    BackfillSchedule,
    PauseSchedule,
    Reconcile,
    ResumeSchedule,
    RunStarted,
    ScheduleState,
    StopRuns,
    TriggerSchedule,
)

if TYPE_CHECKING:
    from ironflow_py.service import WorkflowService

_log = logging.getLogger("ironflow_py.schedules")


def stop_runs_handler(service: WorkflowService) -> Callable[[StopRuns, EffectContext], None]:
    """The built-in handler of `StopRuns` (`cancel_other` / `terminate_other`), bound to `service`.

    Each named run that is still an open child of the schedule is asked to cancel (`service.cancel`, so its
    workflow's `cancel_input` decides) or terminated, with the effect's idempotency key as the request id,
    so a retried attempt repeats nothing. A run whose workflow takes no cancel requests keeps running (the
    buffered fire then waits for it to close), which is logged.

    Args:
        service: The service the schedules run on.

    Returns:
        The handler.
    """

    def stop(effect: StopRuns, ctx: EffectContext) -> None:
        wanted = set(effect.run_ids)
        reason = f"schedule {effect.schedule!r}: a newer run is due ({effect.how}_other)"
        for child in service.store.children(SCHEDULE_TYPE, effect.schedule, open_only=True):
            if child.workflow_id not in wanted:
                continue
            try:
                if effect.how == "terminate":
                    service.terminate(child.workflow_type, child.workflow_id, reason, request_id=ctx.idempotency_key)
                else:
                    service.cancel(child.workflow_type, child.workflow_id, reason, request_id=ctx.idempotency_key)
            except NotCancellable:
                _log.warning("schedule_run_not_cancellable", extra={"run_id": child.workflow_id})

    return stop


def with_schedule_handlers(registry: EffectRegistry, service: WorkflowService) -> EffectRegistry:
    """`registry` plus the schedules' built-in handler, when `service` has schedules (else `registry` itself).

    Args:
        registry: The application's effect handlers.
        service: The service whose schedules may stop runs.

    Returns:
        The registry the effect runtime (or the scenario runner) should use.
    """
    if not service.schedules.declared or StopRuns in registry:
        return registry
    return registry.extended(StopRuns, stop_runs_handler(service))


@attrs.frozen
class ScheduleInfo:
    """One schedule as an operator sees it.

    Attributes:
        name: The schedule's name.
        timing: ``cron '<expr>' in <tz>`` or ``every <interval>``.
        overlap: Its overlap policy.
        catchup: Its catch-up policy and window.
        status: ``paused``, ``running`` (a run is open), ``idle``, or ``not reconciled`` (no worker has
            started since it was declared).
        next_fire: The planned fire time (UTC), None when paused or not reconciled.
        jitter_seconds: The jitter drawn for that fire time.
        open_runs: Runs started and not closed.
        buffered: Fire times waiting for the open runs to close.
        started: Runs started so far.
        missed: Fire times that started nothing (catch-up, overlap).
        last_run_id: The most recent run.
        pause_reason: Why it is paused.
        changed: True when the declaration differs from the one the schedule was last planned with (a
            worker's start reconciles it).
    """

    name: str
    timing: str
    overlap: str
    catchup: str
    status: str
    next_fire: datetime | None = None
    jitter_seconds: float = 0.0
    open_runs: tuple[str, ...] = ()
    buffered: tuple[datetime, ...] = ()
    started: int = 0
    missed: int = 0
    last_run_id: str | None = None
    pause_reason: str | None = None
    changed: bool = False


class ScheduleControl:
    """The declared schedules of one service: reconcile, list, show, pause, resume, trigger, backfill.

    Args:
        service: The service the schedules' workflow is registered on.
        schedules: The declared schedules.
    """

    def __init__(self, service: WorkflowService, schedules: Sequence[Schedule]) -> None:
        self.service = service
        self.declared: dict[str, Schedule] = {s.name: s for s in schedules}

    def _schedule(self, name: str) -> Schedule:
        try:
            return self.declared[name]
        except KeyError:
            known = ", ".join(sorted(self.declared)) or "none"
            raise NotFound(
                f"no schedule named {name!r} is declared on this app (declared: {known})",
                workflow_type=SCHEDULE_TYPE,
                workflow_id=name,
            ) from None

    def reconcile(self) -> dict[str, OutcomeStatus]:
        """Bring every declared schedule's instance in line with its declaration (what a worker does at start).

        A new schedule plans its first tick; a changed one (its `fingerprint` differs) replans from now; an
        unchanged one is left alone, so any number of workers may reconcile at once.

        Returns:
            Each schedule's outcome status (`accepted`).

        Raises:
            StoreError: The database could not be reached.
        """
        return {
            name: self.service.execute(Reconcile(name, schedule.fingerprint())).status
            for name, schedule in self.declared.items()
        }

    def pause(self, name: str, reason: str | None = None, *, request_id: str | None = None) -> OutcomeStatus:
        """Stop the schedule ticking; runs already started go on.

        Args:
            name: A declared schedule.
            reason: Why, shown by `show` and `ironflow-py schedules list`.
            request_id: Makes the request idempotent (a repeat is a `duplicate`).

        Returns:
            `accepted` (also when it was paused already) or `duplicate`.

        Raises:
            NotFound: No schedule of that name is declared.
        """
        self._schedule(name)
        return self.service.execute(PauseSchedule(name, reason, request_id)).status

    def resume(self, name: str, *, request_id: str | None = None) -> OutcomeStatus:
        """Tick again from the next fire time after now; what passed while paused is not caught up.

        Args:
            name: A declared schedule.
            request_id: Makes the request idempotent (a repeat is a `duplicate`).

        Returns:
            `accepted` or `duplicate`.

        Raises:
            NotFound: No schedule of that name is declared.
        """
        self._schedule(name)
        return self.service.execute(ResumeSchedule(name, request_id)).status

    def trigger(self, name: str, *, request_id: str | None = None) -> str:
        """Start one run now, whatever the overlap policy, with the id ``<name>@trigger/<request id>``.

        Args:
            name: A declared schedule.
            request_id: Makes the request idempotent (a repeat starts nothing); None: a fresh one.

        Returns:
            The run's instance id.

        Raises:
            NotFound: No schedule of that name is declared.
        """
        self._schedule(name)
        request_id = request_id or uuid.uuid4().hex
        self.service.execute(TriggerSchedule(name, request_id))
        return f"{name}@trigger/{request_id}"

    def backfill(self, name: str, start: datetime, end: datetime, *, request_id: str | None = None) -> Sequence[str]:
        """Start the runs of the fire times in `[start, end]`, each with its usual id, whatever the overlap policy.

        A fire time whose run was already started is started again only in name: the child id is taken
        by that run, so nothing new runs. At most `MAX_CATCHUP` fire times per call.

        Args:
            name: A declared schedule.
            start: The first fire time to consider, timezone-aware.
            end: The last, timezone-aware.
            request_id: Makes the request idempotent (a repeat starts nothing); None: a fresh one.

        Returns:
            The run ids this call asked for (empty for a duplicate request).

        Raises:
            NotFound: No schedule of that name is declared.
            InvalidDelay: `start` or `end` is naive, or `end` is before `start`.
        """
        self._schedule(name)
        if start.utcoffset() is None or end.utcoffset() is None:
            raise InvalidDelay(
                "backfill: start and end must be timezone-aware", workflow_type=SCHEDULE_TYPE, workflow_id=name
            )
        if end < start:
            raise InvalidDelay("backfill: end is before start", workflow_type=SCHEDULE_TYPE, workflow_id=name)
        outcome = self.service.execute(BackfillSchedule(name, start, end, request_id or uuid.uuid4().hex))
        return [e.event.run_id for e in outcome.events if isinstance(e.event, RunStarted)]

    def _state(self, name: str) -> ScheduleState | None:
        try:
            state: ScheduleState = self.service.state(SCHEDULE_TYPE, name)
        except NotFound:
            return None
        return state

    def show(self, name: str) -> ScheduleInfo:
        """One schedule: its declaration, status, next fire time, open and buffered runs, counts.

        Args:
            name: A declared schedule.

        Returns:
            What it is doing.

        Raises:
            NotFound: No schedule of that name is declared.
        """
        schedule = self._schedule(name)
        timing = f"cron {schedule.cron!r} in {schedule.tz}" if schedule.cron else f"every {schedule.every}"
        base: dict[str, Any] = {
            "name": name,
            "timing": timing,
            "overlap": schedule.overlap,
            "catchup": f"{schedule.catchup} within {schedule.catchup_window}",
        }
        state = self._state(name)
        if state is None:
            return ScheduleInfo(status="not reconciled", changed=True, **base)
        return ScheduleInfo(
            status=state.status,
            next_fire=state.next_fire,
            jitter_seconds=state.jitter_us / 1_000_000,
            open_runs=state.open_runs,
            buffered=state.buffered,
            started=state.started,
            missed=state.missed,
            last_run_id=state.last_run_id,
            pause_reason=state.pause_reason,
            changed=state.fingerprint != schedule.fingerprint(),
            **base,
        )

    def list(self) -> Sequence[ScheduleInfo]:
        """Every declared schedule, in declaration order (see `show`).

        Returns:
            One entry per schedule.
        """
        return [self.show(name) for name in self.declared]

    def history(self, name: str) -> Sequence[RecordedEvent[Any]]:
        """The schedule's events: ticks planned, runs started and ended, fire times missed, pauses.

        Args:
            name: A declared schedule.

        Returns:
            Its recorded events, oldest first (empty before its first reconcile).

        Raises:
            NotFound: No schedule of that name is declared.
        """
        self._schedule(name)
        return self.service.history(SCHEDULE_TYPE, name)
