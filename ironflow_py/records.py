"""Values the engine hands back to callers: outcomes of an input, recorded events, instance summaries."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any, Generic, TypeVar

import attrs

S = TypeVar("S")
E = TypeVar("E")


class OutcomeStatus(enum.StrEnum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    ALREADY_COMPLETED = "already_completed"
    DUPLICATE = "duplicate"


class InstanceStatus(enum.StrEnum):
    """Where an instance is: open (`running`) or closed, and how (design/lifecycle.md)."""

    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"
    TERMINATED = "terminated"

    @property
    def closed(self) -> bool:
        """True for every status but `running`: the instance accepts no more decisions."""
        return self is not InstanceStatus.RUNNING


@attrs.frozen
class RecordedEvent(Generic[E]):
    """An event as stored: its instance, per-instance sequence, global position and time."""

    workflow_type: str
    workflow_id: str
    seq: int
    position: int
    type_name: str
    event: E
    recorded_at: datetime


@attrs.frozen
class Outcome(Generic[S, E]):
    """What executing one input did.

    `accepted`: `events` were appended and `state` is the new state. `rejected`: `reason` says why and
    nothing was appended. `already_completed`: the instance is terminal and `decide` was not called.
    `duplicate`: the input key was applied before; `first_status` is what that first execution did.
    """

    status: OutcomeStatus
    workflow_type: str
    workflow_id: str
    state: S
    events: tuple[RecordedEvent[E], ...] = ()
    reason: Any = None
    first_status: OutcomeStatus | None = None
    #: outbox ids of the effects this decision enqueued, in the order `decide` listed them.
    effect_ids: tuple[int, ...] = ()

    @property
    def accepted(self) -> bool:
        return self.status is OutcomeStatus.ACCEPTED


@attrs.frozen
class InstanceInfo:
    """One row of the instance list: identity, status and how far its history goes."""

    workflow_type: str
    workflow_id: str
    status: InstanceStatus
    last_seq: int
    created_at: datetime
    updated_at: datetime
    #: When it closed (None while running).
    closed_at: datetime | None = None
    #: The stored outcome as parsed JSON (`WorkflowService.result` decodes it); None while running.
    outcome_data: Any = None
    #: When an operator paused it (None: not paused); see design/lifecycle.md.
    paused_at: datetime | None = None


@attrs.frozen
class EffectInfo:
    """An outbox row: one effect, its delivery status and attempts."""

    id: int
    workflow_type: str
    workflow_id: str
    effect_type: str
    payload: Any
    status: str
    attempts: int
    available_at: datetime
    locked_by: str | None
    locked_until: datetime | None
    last_error: str | None


@attrs.frozen
class TimerInfo:
    """A scheduled timer: the input it will deliver to its instance at `due_at`."""

    id: int
    workflow_type: str
    workflow_id: str
    key: str
    due_at: datetime
    input_type: str
    payload: Any
    attempts: int


@attrs.frozen
class WorkerLoad:
    worker: str
    in_flight: int
    earliest_lease_end: datetime


@attrs.frozen
class OutboxHealth:
    """What `ironflow-py inspect outbox` shows: effects waiting, running, retrying and dead; timers."""

    pending: int
    due_now: int
    in_flight: int
    retrying: int
    dead: int
    oldest_pending_at: datetime | None
    workers: tuple[WorkerLoad, ...]
    timers: int
    timers_overdue: int
    next_timer_at: datetime | None
