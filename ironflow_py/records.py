"""Values the engine hands back to callers: outcomes of an input, recorded events, instance summaries."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any, Generic, TypeVar

import attrs

S = TypeVar("S")
E = TypeVar("E")


class OutcomeStatus(enum.StrEnum):
    """What executing one input did (`Outcome.status`)."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"
    ALREADY_COMPLETED = "already_completed"
    DUPLICATE = "duplicate"
    #: A delayed start was recorded (`execute(..., not_before=)`): the input runs when its timer fires.
    SCHEDULED = "scheduled"


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
    """An event as stored: its instance, per-instance sequence, global position and time.

    Attributes:
        workflow_type: The instance's workflow type.
        workflow_id: The instance's id.
        seq: Its sequence within the instance: 1, 2, 3 ... with no gap.
        position: Its place in the global event stream (unique, rising in allocation order, not commit
            order; see design/schema.md).
        type_name: The stored name of the event's class (a key of the workflow's `events`).
        event: The decoded event.
        recorded_at: The `now` of the decision that appended it (the service's injected `Clock`, UTC).
    """

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

    Attributes:
        status: Which of the four cases happened.
        workflow_type: The instance's workflow type.
        workflow_id: The instance's id.
        state: The instance's state after the call (unchanged unless accepted).
        events: The events appended by this call, with their sequences and positions (accepted only).
        reason: The rejection reason `decide` gave (rejected only).
        first_status: For a duplicate: the status of the first execution with that key.
        effect_ids: Outbox ids of the effects this decision enqueued, in the order `decide` listed them.
        wal_position: Set by a service with a `read_store`: a position in the primary's write-ahead log at
            or after this call's commit (PostgreSQL `pg_lsn` text). Pass it as `min_lsn=` to a read so the
            replica answers only once it has replayed this call (read your writes, design/scale-out.md).
    """

    status: OutcomeStatus
    workflow_type: str
    workflow_id: str
    state: S
    events: tuple[RecordedEvent[E], ...] = ()
    reason: Any = None
    first_status: OutcomeStatus | None = None
    effect_ids: tuple[int, ...] = ()
    wal_position: str | None = None

    @property
    def accepted(self) -> bool:
        """True if the input was accepted (its events, effects and timers were written)."""
        return self.status is OutcomeStatus.ACCEPTED


@attrs.frozen
class InstanceInfo:
    """One row of the instance list: identity, status and how far its history goes.

    Attributes:
        workflow_type: The workflow type.
        workflow_id: The instance's id.
        status: Open (`running`) or how it closed.
        last_seq: The sequence of its last event.
        created_at: When its first decision was written (the service's injected `Clock`, UTC).
        updated_at: When its last decision was written (same clock).
        closed_at: When it closed (None while running).
        outcome_data: The stored outcome as parsed JSON (`WorkflowService.result` decodes it); None while
            running.
        paused_at: When an operator paused it (None: not paused); see design/lifecycle.md.
        parent_type: The workflow type of the instance that started it as a child (None: no parent).
        parent_id: That parent's id (None: no parent).
        parent_close_policy: What it gets if the parent closes first (``"request_cancel"``, ``"terminate"``,
            ``"abandon"``; None: no parent); see design/composition.md.
        version: The `Workflow.version` whose class makes its decisions (recorded by its first write).
        run: Which run of the id it is in (1, then one more at each `continue_as_new`).
        run_start: The sequence of the current run's first event (decisions load nothing before it).
    """

    workflow_type: str
    workflow_id: str
    status: InstanceStatus
    last_seq: int
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None = None
    outcome_data: Any = None
    paused_at: datetime | None = None
    parent_type: str | None = None
    parent_id: str | None = None
    parent_close_policy: str | None = None
    version: str = "1"
    run: int = 1
    run_start: int = 1


@attrs.frozen
class EffectInfo:
    """An outbox row: one effect, its delivery status and attempts.

    Attributes:
        id: The outbox id, also the effect's idempotency key downstream.
        workflow_type: The workflow type of the instance that asked for it.
        workflow_id: That instance's id.
        effect_type: The stored name of the effect's class.
        payload: The effect as stored (parsed JSON).
        status: ``"pending"``, ``"done"`` or ``"dead"``.
        attempts: Attempts started so far.
        available_at: When it may next be claimed (the effect worker's injected `Clock`, UTC).
        locked_by: The worker holding its lease, if any.
        locked_until: When that lease ends (same clock).
        last_error: The last attempt's error, "ExceptionType: message".
        last_traceback: The end of the last failed attempt's traceback (at most 4,000 characters, cut at a
            line boundary); None if no attempt failed with an exception.
    """

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
    last_traceback: str | None = None


@attrs.frozen
class TimerInfo:
    """A scheduled timer: the input it will deliver to its instance at `due_at`.

    Attributes:
        id: The timer row's id (replaced on every reschedule).
        workflow_type: The workflow type of its instance.
        workflow_id: Its instance's id.
        key: The timer's key within the instance.
        due_at: When it falls due (compared with the database server's clock; a `ManualClock` under tests), UTC.
        input_type: The stored name of the input it delivers.
        payload: That input as stored (parsed JSON).
        attempts: Firings tried so far.
    """

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
    """How many effects one worker holds leases on, and when the first lease ends.

    Attributes:
        worker: The worker id (host:pid by default).
        in_flight: Effects it holds a live lease on.
        earliest_lease_end: When its first lease ends (the caller's `now` clock).
    """

    worker: str
    in_flight: int
    earliest_lease_end: datetime


@attrs.frozen
class OutboxHealth:
    """What `ironflow-py inspect outbox` shows: effects waiting, running, retrying and dead; timers.

    Attributes:
        pending: Effects not yet done or dead.
        due_now: Pending effects whose `available_at` has passed.
        in_flight: Pending effects under a live lease.
        retrying: Pending effects that failed at least once and wait for their next attempt.
        dead: Dead-lettered effects.
        oldest_pending_at: When the oldest pending effect was enqueued (None: none pending).
        workers: Load per worker holding leases.
        timers: Scheduled timers.
        timers_overdue: Timers whose due time has passed.
        next_timer_at: The earliest due time (None: no timer).
    """

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
