"""Read-only views for operators: one instance with everything pending on it, and the outbox's health.

What the inspect CLI prints, available from Python too, so "why is order 42 stuck?" has one answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import attrs

from ironflow_py.decider import Decider
from ironflow_py.lifecycle import DELAYED_START_INPUT
from ironflow_py.records import EffectInfo, InstanceInfo, OutboxHealth, RecordedEvent, TimerInfo
from ironflow_py.service import WorkflowService
from ironflow_py.store import postgres_admin
from ironflow_py.store.postgres import PostgresStore


@attrs.frozen
class InstanceReport:
    """What `inspect show` and the web view show of one instance.

    Attributes:
        info: Its row (None: none yet, e.g. a delayed start not written).
        events: Its decoded history.
        state: Its folded state.
        state_name: `Workflow.state_name` of that state, by the instance's version.
        terminal: Closed, or terminal by the instance's version's rule.
        effects: Its outbox rows.
        timers: Its timers.
        decider: The decider of the version the instance records (design/versioning.md): its codec renders
            payloads, its workflow draws the path.
    """

    info: InstanceInfo | None
    events: Sequence[RecordedEvent[Any]]
    state: Any
    state_name: str
    terminal: bool
    effects: Sequence[EffectInfo]
    timers: Sequence[TimerInfo]
    decider: Decider

    @property
    def pending_effects(self) -> list[EffectInfo]:
        return [e for e in self.effects if e.status == "pending"]

    @property
    def dead_effects(self) -> list[EffectInfo]:
        return [e for e in self.effects if e.status == "dead"]

    @property
    def delayed_starts(self) -> list[TimerInfo]:
        """The reserved timers of delayed starts (`execute(..., not_before=)`), earliest first."""
        return [t for t in self.timers if t.input_type == DELAYED_START_INPUT]

    @property
    def scheduled(self) -> bool:
        """True when the instance has no events yet and waits for a delayed start."""
        return not self.events and not self.terminal and bool(self.delayed_starts)

    def diagnosis(self, now: datetime) -> str:
        """One sentence on what the instance is waiting for."""
        if self.terminal:
            how = self.info.status.value if self.info is not None and self.info.status.closed else "completed"
            return f"{how} in state {self.state_name!r}"
        parts = []
        if self.scheduled:
            first = self.delayed_starts[0]
            parts.append(
                f"scheduled: {first.payload.get('input_type')} starts at {first.due_at:%Y-%m-%d %H:%M:%S} "
                "(a delayed start; a worker runs it when due)"
            )
        if self.info is not None and self.info.paused_at is not None:
            parts.append(f"paused since {self.info.paused_at:%Y-%m-%d %H:%M:%S} (`instances resume` lifts it)")
        for e in self.dead_effects:
            parts.append(f"effect {e.id} ({e.effect_type}) is dead: {e.last_error}; `dead-letters retry {e.id}`")
        for e in self.pending_effects:
            if e.locked_until is not None and e.locked_until > now:
                parts.append(f"effect {e.id} ({e.effect_type}) is running on {e.locked_by} (attempt {e.attempts})")
            elif e.attempts > 0:
                parts.append(
                    f"effect {e.id} ({e.effect_type}) failed {e.attempts}x, "
                    f"next try at {e.available_at:%Y-%m-%d %H:%M:%S} ({e.last_error})"
                )
            else:
                parts.append(f"effect {e.id} ({e.effect_type}) waits for a worker (is `ironflow-py worker` running?)")
        for t in self.timers:
            when = "overdue: is a worker running?" if t.due_at <= now else f"due {t.due_at:%Y-%m-%d %H:%M:%S}"
            if t.input_type != DELAYED_START_INPUT:
                parts.append(f"timer {t.key!r} ({t.input_type}) {when}")
            elif not self.scheduled or t is not self.delayed_starts[0]:
                parts.append(f"delayed input {t.payload.get('input_type')} {when}")
        if not parts:
            return f"in state {self.state_name!r}, nothing pending: it waits for an input from outside"
        return f"in state {self.state_name!r}; " + "; ".join(parts)


def shown_status(store: Any, info: InstanceInfo) -> str:
    """The status to show for an instance row: `scheduled` for an open one with no events that waits for a
    delayed start, else its stored status."""
    if info.status.closed or info.last_seq > 0:
        return info.status.value
    timers = store.timers(info.workflow_type, info.workflow_id)
    return "scheduled" if any(t.input_type == DELAYED_START_INPUT for t in timers) else info.status.value


def instance_report(service: WorkflowService, workflow_type: str, workflow_id: str) -> InstanceReport:
    """Everything `inspect show` and the web view show of one instance, judged by the version it records.

    Args:
        service: The service (its read store serves the reads).
        workflow_type: The workflow type.
        workflow_id: The instance.

    Returns:
        The report (an instance with no row and no events gives `info` None and the initial state).

    Raises:
        NotFound: The workflow type is not registered.
        VersionNotLoaded: The instance records a version this process has not registered.
        DecodeError, StoreError: As `WorkflowService.history` and `state`.
    """
    reg = service.registration(workflow_type)
    info = service.instance(workflow_type, workflow_id)
    events = service.history(workflow_type, workflow_id)
    # The class of the version the instance records names and judges its state (design/versioning.md).
    decider = reg.version_of(info.version if info is not None else None)
    wf = decider.workflow
    # The service's fold, not `wf.fold`: the history may hold lifecycle events (`ironflow.terminated/1`)
    # that `evolve` never sees.
    state = service.state(workflow_type, workflow_id) if events else wf.initial_state()
    return InstanceReport(
        info,
        events,
        state,
        wf.state_name(state),
        (info is not None and info.status.closed) or wf.is_terminal(state),
        service.read_store.effects(workflow_type, workflow_id),
        service.read_store.timers(workflow_type, workflow_id),
        decider,
    )


def outbox_health(store: PostgresStore, now: datetime) -> OutboxHealth:
    return postgres_admin.outbox_health(store, now)
