"""A workflow's whole life in memory, in milliseconds: inputs, effects and timers on a clock you move.

    scenario = Scenario(OrderWorkflow, effects=registry)   # real handlers, or stubs in a registry
    scenario.send(PlaceOrder(...))                          # runs effects and due timers until quiet
    scenario.advance(timedelta(hours=25))                   # fires the deadline timer
    assert scenario.state("order", "o1").status == "cancelled"

Effects and timers run through the same attempt code as the PostgreSQL runtime (retries with the
effect's policy, dead letters and `dead_letter_input`, feedback in the settling transaction), over a
MemoryStore; retry jitter comes from a seeded generator, so a scenario replays identically.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from ironflow_py._log import get_log
from ironflow_py.clock import ManualClock
from ironflow_py.effects._attempt import DEFAULT_TIMER_POLICY, Attempts
from ironflow_py.effects._registry import EffectRegistry
from ironflow_py.lifecycle import RunOutcome
from ironflow_py.records import EffectInfo, Outcome, OutcomeStatus, RecordedEvent, TimerInfo
from ironflow_py.schedule import Schedule
from ironflow_py.scheduling._control import with_schedule_handlers
from ironflow_py.service import WorkflowService
from ironflow_py.store.base import Outbox
from ironflow_py.store.memory import MemoryStore
from ironflow_py.workflow import AnyWorkflow

DEFAULT_START = datetime(2026, 1, 1, tzinfo=UTC)


class Scenario:
    """Runs workflows, their effect handlers and their timers over a MemoryStore and a ManualClock.

    Args:
        *workflows: Workflow classes (instantiated with no arguments) or instances.
        effects: The effect handlers (real ones or stubs); None: no handlers, so every effect fails
            with its retry policy and ends dead.
        start: The clock's start, timezone-aware (default: 2026-01-01T00:00 UTC).
        seed: Seeds retry jitter, so a scenario replays identically.
        converter: The cattrs converter (default: `make_converter()`).
        logger: A structlog-style logger (default: the library's logger).
        schedules: `Schedule` declarations (`scenario.service.schedules`); call `reconcile()` on it to start
            them, as a worker does when it starts.
        default_version: Workflow type -> the version new instances get, for a type given in several
            versions (as `WorkflowService`); `scenario.service.migrate_version` moves one instance.

    Raises:
        ConfigurationError: A workflow is declared inconsistently (see `WorkflowService.register`).
    """

    def __init__(
        self,
        *workflows: AnyWorkflow | type[AnyWorkflow],
        effects: EffectRegistry | None = None,
        start: datetime = DEFAULT_START,
        seed: int = 0,
        converter: Any = None,
        logger: Any = None,
        schedules: Sequence[Schedule] = (),
        default_version: Mapping[str, str] | None = None,
    ) -> None:
        self.clock = ManualClock(start)
        self.store = MemoryStore()
        self.log = get_log("testing", logger)
        self.service = WorkflowService(
            self.store,
            workflows=workflows,
            clock=self.clock,
            converter=converter,
            logger=self.log,
            schedules=schedules,
            default_version=default_version,
        )
        self.registry = with_schedule_handlers(effects if effects is not None else EffectRegistry(), self.service)
        self.outbox: Outbox = self.store.outbox("scenario")
        self._attempts = Attempts(
            self.service,
            self.registry,
            self.outbox,
            self.clock,
            random.Random(seed).random,
            timedelta(minutes=5),
            DEFAULT_TIMER_POLICY,
            self.log,
        )

    def send(self, input: object) -> Outcome[Any, Any]:
        """Execute `input`, then run every effect and timer that is due, until nothing is.

        Args:
            input: An input of a registered workflow.

        Returns:
            The outcome of `input` itself (what effects and timers did shows in `state` and `history`).

        Raises:
            IronflowError: What `WorkflowService.execute` raises for bad input.
            RuntimeError: Effects and timers kept each other busy for 10,000 rounds.
        """
        outcome = self.service.execute(input)
        self.run_due()
        return outcome

    def advance(self, by: timedelta) -> datetime:
        """Move the clock forward and run what became due (timers fire, retried effects run again).

        Args:
            by: How far to move the clock.

        Returns:
            The new time.

        Raises:
            RuntimeError: Effects and timers kept each other busy for 10,000 rounds.
        """
        now = self.clock.advance(by)
        self.run_due()
        return now

    def run_due(self, max_rounds: int = 10_000) -> int:
        """Run due timers and effects until none is due at the clock's current time.

        Args:
            max_rounds: Give up after this many rounds of claiming.

        Returns:
            How many timers and effects ran.

        Raises:
            RuntimeError: Still busy after `max_rounds` (effects or timers feed each other forever).
        """
        ran = 0
        for _ in range(max_rounds):
            now = self.clock.now()
            timers = self.outbox.claim_timers(now, self._attempts.lease, 100)
            for timer in timers:
                self._attempts.fire_timer(timer)
            effects = self.outbox.claim_effects(now, self._attempts.lease, 100)
            for claim in effects:
                quiet_done = self._attempts.run_effect(claim)
                if quiet_done is not None:
                    self.outbox.complete_effects([quiet_done[0]], now)
            if not timers and not effects:
                return ran
            ran += len(timers) + len(effects)
        raise RuntimeError(f"still busy after {max_rounds} rounds: do effects or timers feed each other forever?")

    # -- what a test looks at -----------------------------------------------------------------------------

    def result(self, workflow_type: str, workflow_id: str) -> RunOutcome | None:
        """How the instance ended (`WorkflowService.result`); None while it is open.

        Args:
            workflow_type: The workflow type.
            workflow_id: The instance.

        Returns:
            The outcome, or None.
        """
        return self.service.result(workflow_type, workflow_id)

    def cancel(
        self, workflow_type: str, workflow_id: str, reason: str, *, request_id: str | None = None
    ) -> Outcome[Any, Any]:
        """Cancel through `Workflow.cancel_input` (`WorkflowService.cancel`), then run what became due.

        Args:
            workflow_type: The workflow type.
            workflow_id: The instance.
            reason: Why.
            request_id: A repeat with the same id is a `duplicate`.

        Returns:
            What the cancel input did.
        """
        outcome = self.service.cancel(workflow_type, workflow_id, reason, request_id=request_id)
        self.run_due()
        return outcome

    def terminate(
        self, workflow_type: str, workflow_id: str, reason: str | None = None, *, request_id: str | None = None
    ) -> Outcome[Any, Any]:
        """Terminate the instance (`WorkflowService.terminate`): no workflow code runs; then run what became due.

        What became due is the instance's parent-close sweep (its open children get their policy) and,
        for a child, the notice to its parent.

        Args:
            workflow_type: The workflow type.
            workflow_id: The instance.
            reason: Why.
            request_id: A repeat with the same id is a `duplicate`.

        Returns:
            accepted, already_completed or duplicate.
        """
        outcome = self.service.terminate(workflow_type, workflow_id, reason, request_id=request_id)
        self.run_due()
        return outcome

    def pause(self, workflow_type: str, workflow_id: str, *, request_id: str | None = None) -> OutcomeStatus:
        """Hold the instance's effects and timers until `resume` (`WorkflowService.pause`).

        Args:
            workflow_type: The workflow type.
            workflow_id: The instance.
            request_id: A repeat with the same id is a `duplicate`.

        Returns:
            accepted or duplicate.
        """
        return self.service.pause(workflow_type, workflow_id, request_id=request_id)

    def resume(self, workflow_type: str, workflow_id: str, *, request_id: str | None = None) -> OutcomeStatus:
        """Lift a pause, then run the held effects and the timers that fell due meanwhile.

        Args:
            workflow_type: The workflow type.
            workflow_id: The instance.
            request_id: A repeat with the same id is a `duplicate`.

        Returns:
            accepted or duplicate.
        """
        status = self.service.resume(workflow_type, workflow_id, request_id=request_id)
        self.run_due()
        return status

    def state(self, workflow_type: str, workflow_id: str) -> Any:
        """The current state of one instance (`WorkflowService.state`).

        Args:
            workflow_type: A registered workflow type.
            workflow_id: The instance.

        Returns:
            The state after its last event.

        Raises:
            NotFound: The type is not registered, or the instance has no events.
        """
        return self.service.state(workflow_type, workflow_id)

    def history(self, workflow_type: str, workflow_id: str) -> list[RecordedEvent[Any]]:
        """Every event of one instance with its metadata (`WorkflowService.history`).

        Args:
            workflow_type: A registered workflow type.
            workflow_id: The instance.

        Returns:
            The recorded events, in sequence order.

        Raises:
            NotFound: The type is not registered.
        """
        return self.service.history(workflow_type, workflow_id)

    def events(self, workflow_type: str, workflow_id: str) -> list[object]:
        """Every event of one instance, just the event values.

        Args:
            workflow_type: A registered workflow type.
            workflow_id: The instance.

        Returns:
            The events, in sequence order.

        Raises:
            NotFound: The type is not registered.
        """
        return [e.event for e in self.history(workflow_type, workflow_id)]

    def effects(self, workflow_type: str, workflow_id: str) -> Sequence[EffectInfo]:
        """The outbox rows of one instance: each effect's status, attempts and last error.

        Args:
            workflow_type: A registered workflow type.
            workflow_id: The instance.

        Returns:
            The rows, oldest first.
        """
        return self.store.effects(workflow_type, workflow_id)

    def timers(self, workflow_type: str, workflow_id: str) -> Sequence[TimerInfo]:
        """The timers still scheduled on one instance.

        Args:
            workflow_type: A registered workflow type.
            workflow_id: The instance.

        Returns:
            The timers, earliest due first.
        """
        return self.store.timers(workflow_type, workflow_id)
