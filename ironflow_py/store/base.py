"""The storage port: what the command handler needs from a store, as plain data and one locked transaction.

`with store.locked(type, id, input_key) as tx:` takes the instance lock; inside, `tx.load(...)` reads what
the pure decide step needs and `tx.write(...)` writes its decision; leaving the block commits, an exception
rolls everything back. Both adapters (memory, postgres) implement this and pass one contract suite.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, NamedTuple, Protocol

import attrs

from ironflow_py.records import EffectInfo, InstanceInfo, InstanceStatus, OutcomeStatus, TimerInfo


class StoredEvent(NamedTuple):
    """An event row as read back for display and history: payload parsed from JSON, not yet structured."""

    seq: int
    position: int
    type_name: str
    data: Any
    recorded_at: datetime


class LoadedEvent(NamedTuple):
    """An event row as read for folding: only what `evolve` needs (a tuple: this is the hot path)."""

    seq: int
    type_name: str
    data: Any


@attrs.frozen
class StoredSnapshot:
    """A saved state: what folding events 1..seq gives, written by code whose state version was `state_version`."""

    seq: int
    state_version: int
    data: Any


@attrs.frozen
class Loaded:
    """What the locked transaction read before deciding: the events after the requested sequence, or after
    `snapshot` when one newer than that was loaded."""

    events: Sequence[LoadedEvent]
    #: The status recorded for the input key on an earlier execution, if the key was given and seen.
    key_status: OutcomeStatus | None = None
    #: The latest snapshot newer than the requested sequence, when asked for; `events` start after its seq.
    snapshot: StoredSnapshot | None = None


@attrs.frozen
class NewTimer:
    key: str
    due_at: datetime
    input_type: str
    payload: str


@attrs.frozen
class NewSnapshot:
    state_version: int
    payload: str


@attrs.frozen
class Writes:
    """Everything one decision writes. `events`/`effects` are (type name, JSON text) pairs."""

    now: datetime
    last_seq: int
    events: Sequence[tuple[str, str]] = ()
    effects: Sequence[tuple[str, str]] = ()
    timers: Sequence[NewTimer] = ()
    cancel_timers: Sequence[str] = ()
    completed: bool = False
    input_key: str | None = None
    key_status: OutcomeStatus | None = None
    #: A snapshot of the state after these events (it covers `last_seq`).
    snapshot: NewSnapshot | None = None

    def touches_instance(self) -> bool:
        """True when the instance row must be created or updated (anything but a bare input key)."""
        return bool(self.events or self.effects or self.timers or self.cancel_timers)

    def is_empty(self) -> bool:
        return not (self.touches_instance() or self.input_key or self.snapshot)


@attrs.frozen
class Written:
    """What the store assigned: the global position of each new event, the outbox id of each effect."""

    positions: Sequence[int] = ()
    effect_ids: Sequence[int] = ()


class SettleKind(enum.Enum):
    EFFECT_DONE = "effect_done"
    EFFECT_DEAD = "effect_dead"
    TIMER_FIRED = "timer_fired"


@attrs.frozen
class Settle:
    """A fenced change to a claimed outbox row or timer, made inside a decision's transaction.

    The store applies it right after taking the instance lock, only while `worker` still holds claim
    `attempt` on row `id`; if the fence matches no row the whole transaction is abandoned (`LeaseLost`), so
    a handler's returned input and the "done" mark (or a timer's input and its deletion) commit together
    or not at all.
    """

    kind: SettleKind
    id: int
    worker: str
    attempt: int
    now: datetime
    error: str | None = None


class Transaction(Protocol):
    """One instance's locked transaction, as yielded by `Store.locked`; valid only inside that block."""

    def load(self, *, after_seq: int = 0, with_snapshot: bool = False) -> Loaded:
        """Read the events after `after_seq` and the input key's recorded status.

        Args:
            after_seq: a sequence the caller already knows the state up to (0: everything).
            with_snapshot: also read the latest snapshot newer than `after_seq`; the events then start
                after the snapshot's sequence.

        Returns:
            What was read, in one consistent view.
        """
        ...

    def events_after(self, seq: int) -> Sequence[LoadedEvent]:
        """The events after `seq`, in sequence order (to replay past a cache or snapshot that did not fit)."""
        ...

    def write(self, writes: Writes) -> Written:
        """Write one decision (events, effects, timers, instance row, snapshot, input key) in one statement.

        Returns:
            The global position of each new event and the outbox id of each new effect.

        Raises:
            StoreError: the database refused a value (permanent) or is unreachable.
            ConcurrencyConflict: another writer appended the same sequence (it bypassed the lock).
        """
        ...


class CloseSubscription(Protocol):
    """One blocking waiter's interest in one instance closing (see `ClosedWaiters`)."""

    def wait(self, timeout: float) -> bool:
        """Block up to `timeout` seconds for a close notice; True if one came (then re-read the row)."""
        ...

    def close(self) -> None:
        """Unsubscribe; idempotent."""
        ...


class AsyncCloseSubscription(Protocol):
    """One asyncio waiter's interest in one instance closing; cancelling `wait` only stops waiting."""

    async def wait(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for a close notice; True if one came (then re-read the row)."""
        ...

    def close(self) -> None:
        """Unsubscribe; idempotent."""
        ...


class ClosedWaiters(Protocol):
    """A store's waiters on instance closes. A notice only says "re-read the row"; a waiter subscribes
    before it reads, so a close committed in between is never missed."""

    def subscribe(self, workflow_type: str, workflow_id: str) -> CloseSubscription: ...

    def subscribe_async(self, workflow_type: str, workflow_id: str) -> AsyncCloseSubscription:
        """Subscribe from inside the waiting coroutine's running event loop."""
        ...

    def count(self) -> int:
        """How many subscriptions are live."""
        ...


class Store(Protocol):
    """A durable home for workflow instances; see the module docstring for the transaction contract."""

    def locked(
        self, workflow_type: str, workflow_id: str, input_key: str | None = None, *, settle: Settle | None = None
    ) -> AbstractContextManager[Transaction]:
        """Open one transaction holding the instance lock; leaving the block commits, an exception rolls back.

        Args:
            workflow_type, workflow_id: the instance to lock (it need not exist yet).
            input_key: the idempotency key whose recorded status `Transaction.load` reports, or None.
            settle: a fenced outbox/timer change, applied right after the lock and committed with the rest.

        Returns:
            A context manager yielding the `Transaction`.

        Raises:
            LeaseLost: `settle`'s fence matched no row (another worker owns the claim); nothing is written.
            StoreError: the database is unreachable or refused the transaction.
        """
        ...

    def latest_snapshot(self, workflow_type: str, workflow_id: str) -> StoredSnapshot | None:
        """The instance's latest snapshot, for inspection and tests."""
        ...

    def events(self, workflow_type: str, workflow_id: str) -> Sequence[StoredEvent]:
        """All events of one instance in sequence order (a consistent read, no lock)."""
        ...

    def instance(self, workflow_type: str, workflow_id: str) -> InstanceInfo | None: ...

    def effects(self, workflow_type: str, workflow_id: str) -> Sequence[EffectInfo]:
        """Outbox rows of one instance, oldest first (every status)."""
        ...

    def timers(self, workflow_type: str, workflow_id: str) -> Sequence[TimerInfo]:
        """Scheduled timers of one instance, earliest first."""
        ...

    def list_instances(
        self,
        workflow_type: str | None = None,
        status: InstanceStatus | None = None,
        *,
        limit: int = 100,
        after: tuple[str, str] | None = None,
    ) -> Sequence[InstanceInfo]:
        """Instances ordered by (type, id), starting after the `after` key (keyset pagination)."""
        ...

    def migrate(self) -> Sequence[int]:
        """Bring the storage schema up to date; returns the versions applied now (memory: none)."""
        ...

    def closed_waiters(self) -> ClosedWaiters:
        """The store's one hub of waiters on instance closes (PostgreSQL: one LISTEN connection for all)."""
        ...

    def listening(self, timeout: float) -> bool:
        """Block up to `timeout` seconds until close notices are being received; False if still not."""
        ...

    def close(self) -> None: ...
