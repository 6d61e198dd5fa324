"""The storage port: what the command handler needs from a store, as plain data and one locked transaction.

`with store.locked(type, id, input_key) as tx:` takes the instance lock; inside, `tx.load(...)` reads what
the pure decide step needs and `tx.write(...)` writes its decision; leaving the block commits, an exception
rolls everything back. Both adapters (memory, postgres) implement this and pass one contract suite.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import Any, NamedTuple, Protocol

import attrs

from ironflow_py.composition import ParentLink
from ironflow_py.records import EffectInfo, InstanceInfo, InstanceStatus, OutcomeStatus, TimerInfo
from ironflow_py.retention import PruneReport, RetentionPolicy


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
class Tombstone:
    """A pruned instance (design/retention.md): its history is gone, its last sequence and outcome stay."""

    seq: int
    #: The parsed JSON of `instances.outcome` (None for a row closed before outcomes were stored).
    outcome: Any


@attrs.frozen
class Loaded:
    """What the locked transaction read before deciding.

    The events come after the requested sequence, or after `snapshot` when one newer than that was loaded.
    """

    events: Sequence[LoadedEvent]
    #: The status recorded for the input key on an earlier execution, if the key was given and seen.
    key_status: OutcomeStatus | None = None
    #: The latest snapshot newer than the requested sequence, when asked for; `events` start after its seq.
    snapshot: StoredSnapshot | None = None
    #: Set when no event or snapshot was read because the instance was pruned to a tombstone.
    tombstone: Tombstone | None = None
    #: The `Workflow.version` the instance records (None: no instance row yet; the default version decides).
    version: str | None = None
    #: The sequence of the current run's first event: nothing before it was loaded (design/versioning.md).
    run_start: int = 1
    #: The instance's current run (1 until its first `continue_as_new`).
    run: int = 1
    #: The instance row's snapshot generation: how many times its snapshot was written, replaced or dropped
    #: (None: no instance row, or a reader that does not report it). Passed back as `known_gen`.
    snapshot_gen: int | None = None


@attrs.frozen
class NewTimer:
    """A timer a decision schedules, encoded: its key, due time, and the input's stored name and JSON."""

    key: str
    due_at: datetime
    input_type: str
    payload: str


@attrs.frozen
class NewSnapshot:
    """A snapshot a decision writes: the state's version and its JSON text."""

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
    #: The instance's status after this decision; a closed status comes with `outcome`.
    status: InstanceStatus = InstanceStatus.RUNNING
    #: The encoded outcome (JSON text) when this decision closes the instance.
    outcome: str | None = None
    #: Terminate: also delete every timer of the instance and cancel its pending effects.
    terminate: bool = False
    input_key: str | None = None
    key_status: OutcomeStatus | None = None
    #: A snapshot of the state after these events (it covers `last_seq`).
    snapshot: NewSnapshot | None = None
    #: The W3C traceparent of the deciding span, stored on the effects and timers written (None: not traced).
    trace_context: str | None = None
    #: The parent a new child instance records (written with the instance row it creates; None: no parent).
    parent: ParentLink | None = None
    #: The `Workflow.version` whose class made this decision, recorded on the instance row (None: keep it).
    version: str | None = None
    #: Continue as new: the run ends at `last_seq` (its marker event is the last of `events`, `snapshot`
    #: covers it) and the next run starts at `last_seq + 1`.
    continue_run: bool = False

    def touches_instance(self) -> bool:
        """True when the instance row must be created or updated (anything but a bare input key)."""
        return bool(self.events or self.effects or self.timers or self.cancel_timers)

    def is_empty(self) -> bool:
        """True when the decision writes nothing at all (no instance change, no input key, no snapshot)."""
        return not (self.touches_instance() or self.input_key or self.snapshot)


@attrs.frozen
class Written:
    """What the store assigned: the global position of each new event, the outbox id of each effect."""

    positions: Sequence[int] = ()
    effect_ids: Sequence[int] = ()
    #: The instance's snapshot generation after the write (see `Loaded.snapshot_gen`); None when the write
    #: did not report it (nothing written to the instance row), which makes the next load read the snapshot.
    snapshot_gen: int | None = None


class SettleKind(enum.Enum):
    """Which fenced change a `Settle` makes: effect done, effect dead, or timer fired."""

    EFFECT_DONE = "effect_done"
    EFFECT_DEAD = "effect_dead"
    TIMER_FIRED = "timer_fired"


@attrs.frozen
class Settle:
    """A fenced change to a claimed outbox row or timer, made inside a decision's transaction.

    The store applies it right after taking the instance lock, only while `worker` still holds the claim
    named `token` on row `id`; if the fence matches no row the whole transaction is abandoned (`LeaseLost`), so
    a handler's returned input and the "done" mark (or a timer's input and its deletion) commit together
    or not at all.
    """

    kind: SettleKind
    id: int
    worker: str
    #: The claim's token (`EffectClaim.token`, `TimerClaim.token`): unique per claim, never repeated.
    token: int
    now: datetime
    error: str | None = None
    #: the failure's traceback (bounded by the caller), kept next to `error` on a dead effect
    traceback: str | None = None
    #: Seconds the whole transaction may take (a worker passes half its lease), None: the store's default.
    #: PostgreSQL cuts a transaction still running after it, and the server ends the session if it sits
    #: idle inside the transaction that long (a frozen worker); the memory store ignores it.
    deadline: float | None = None


class EffectClaim(NamedTuple):
    """A claimed outbox row (a tuple: thousands go through the hot path).

    `attempt` counts the row's claims (1-based); `token` names this claim and never repeats.
    """

    id: int
    workflow_type: str
    workflow_id: str
    effect_type: str
    payload: Any
    attempt: int
    token: int
    #: When the row became due (queued, its retry time, or a lapsed lease's end), before this claim.
    due_at: datetime | None = None
    #: The W3C traceparent of the decision that queued the effect (None: it was not traced).
    trace_context: str | None = None
    #: The payload's size in bytes as JSON text (what the worker's byte-bounded prefetch counts).
    size: int = 0


class TimerClaim(NamedTuple):
    """A claimed timer; `attempt` counts its claims, `token` names this claim and never repeats."""

    id: int
    workflow_type: str
    workflow_id: str
    key: str
    due_at: datetime
    input_type: str
    payload: Any
    attempt: int
    token: int
    #: The W3C traceparent of the decision that scheduled the timer (None: it was not traced).
    trace_context: str | None = None


class Outbox(Protocol):
    """One worker's claims on the outbox and the timers: the port the effect runtime and the scenario runner use.

    A claim is named by (row id, `worker`, token), the token fresh for every claim and never repeated;
    every call that changes a claimed row is fenced on all three, so a worker whose lease expired and whose
    row was claimed again (by another worker, or by itself later, even after `dead-letters retry` reset
    the attempt count) changes nothing and is told so. Settling a claim together with a decision (effect
    done or dead with a fed-back input, timer fired) is `Store.locked(..., settle=Settle(...))`.
    `MemoryStore.outbox(worker)` and `PostgresStore.outbox(worker)` implement it; the contract suite is
    tests/contract/test_outbox_contract.py.

    One clock: every `now` below is a timezone-aware datetime under a `ManualClock` (`clock.store_time`),
    and None otherwise, meaning the store's own clock (PostgreSQL: the database server's `now()`; memory:
    the process's system clock). Lease lengths and delays are durations added to that clock, never ends
    computed on a worker host, so host clock skew cannot move a lease end or a due time.
    """

    worker: str

    def claim_effects(
        self,
        now: datetime | None,
        lease: timedelta,
        limit: int,
        max_bytes: int | None = None,
        *,
        always_one: bool = True,
        effect_types: Sequence[str] | None = None,
    ) -> list[EffectClaim]:
        """Claim up to `limit` pending effects due at `now`, oldest first, each for `lease`.

        With `max_bytes`, rows are claimed in that order while their payloads (as JSON text) add up to at
        most `max_bytes` bytes. With `always_one` the first row is claimed however large, so a payload over
        the bound cannot starve; a worker that already holds claims passes False. With `effect_types`, only
        rows of those stored type names are claimed (a timers-only worker takes the engine's own rows).

        Returns:
            The claims; each row's attempt count went up by one and it is not due again before `now + lease`.
        """
        ...

    def heartbeat(self, claim: EffectClaim, now: datetime | None, lease: timedelta) -> datetime | None:
        """Extend the lease of `claim` to `now + lease`; returns the new lease end, or None if the claim was lost."""
        ...

    def complete_effects(self, claims: Sequence[EffectClaim], now: datetime | None) -> set[int]:
        """Mark the claimed effects done, in one step; returns the ids whose claim still held."""
        ...

    def retry_effect_later(
        self, claim: EffectClaim, now: datetime | None, delay: timedelta, error: str, traceback: str | None = None
    ) -> bool:
        """Hand the row back, due again at `now + delay`, with `error` and its `traceback` recorded.

        Returns:
            False if the claim was lost.
        """
        ...

    def mark_dead(self, claim: EffectClaim, now: datetime, error: str, traceback: str | None = None) -> bool:
        """Dead-letter the row with `error` and its `traceback` recorded (no input fed back).

        Returns:
            False if the claim was lost.
        """
        ...

    def release_effects(self, claims: Sequence[EffectClaim], now: datetime | None) -> set[int]:
        """Hand back claims that will not run (shutdown): due at `now`, the claim not counted as an attempt.

        Returns:
            The ids whose claim still held.
        """
        ...

    def claim_timers(self, now: datetime | None, lease: timedelta, limit: int) -> list[TimerClaim]:
        """Claim up to `limit` timers due at `now` and not under a live lease, earliest first, each for `lease`."""
        ...

    def retry_timer_later(self, claim: TimerClaim, now: datetime | None, delay: timedelta, error: str) -> bool:
        """Leave the timer unclaimable until `now + delay`, with `error` recorded; False if the claim was lost."""
        ...

    def release_timers(self, claims: Sequence[TimerClaim], now: datetime | None) -> set[int]:
        """Hand back timer claims that will not fire (shutdown), not counted as attempts; returns ids that held."""
        ...

    def next_due(self, now: datetime | None) -> float | None:
        """Seconds from `now` until the earliest pending effect or claimable timer is due (None: nothing waits).

        A timer under a lease or a retry backoff counts from its lease end, and never hides a later timer
        that is claimable sooner. Negative when something is already due. A hint for an idle loop's sleep,
        not a promise: a row claimed meanwhile is simply not there.
        """
        ...


class Pruner(Protocol):
    """Removes finished rows by a `RetentionPolicy`: the port behind `ironflow-py prune` (design/retention.md).

    One pruner at a time per store (PostgreSQL: a transaction-scoped advisory lock taken by every batch,
    safe behind a transaction-pooling PgBouncer); each batch is one transaction, so a pruner killed mid-batch
    leaves nothing half-done. Closed instances are taken oldest close first, only once they have no pending
    effect and every projection has read all their events. `MemoryStore.pruner()` and
    `PostgresStore.pruner()` implement it; the contract suite is tests/contract/test_prune_contract.py.
    """

    def prune_batch(self, policy: RetentionPolicy, now: datetime | None = None) -> PruneReport:
        """Remove at most `policy.batch_size` rows of each kind whose retention has passed, in one transaction.

        Args:
            policy: What to keep and for how long.
            now: The instant retention is counted back from under a `ManualClock` (`clock.store_time`);
                None: the store's own clock (PostgreSQL: the database server's `now()`).

        Returns:
            What was removed (`busy` when another pruner holds the lock: nothing was).

        Raises:
            StoreError: The database could not be reached or refused the statements; nothing was removed.
        """
        ...

    def prune_all(
        self, policy: RetentionPolicy, now: datetime | None = None, *, max_batches: int | None = None
    ) -> PruneReport:
        """Run batches until one is not full (nothing more is due), or `max_batches` have run.

        Args:
            policy: What to keep and for how long.
            now: As for `prune_batch`.
            max_batches: Stop after this many batches (None: no limit).

        Returns:
            The sum of the batches' reports.

        Raises:
            StoreError: As for `prune_batch`; the batches committed before it stay.
        """
        ...


class Reader(Protocol):
    """What rebuilding a state reads: `Transaction`'s two loading calls, also offered without the lock.

    `Store.reading` yields one for a lock-free read (a replica's `WorkflowService.state`); every
    `Transaction` is one too.
    """

    def load(self, *, after_seq: int = 0, with_snapshot: bool = False, known_gen: int | None = None) -> Loaded:
        """Read the events after `after_seq` (and, when asked, the latest snapshot newer than it).

        Args:
            after_seq: a sequence the caller already knows the state up to (0: everything).
            with_snapshot: also read the latest snapshot newer than `after_seq`; the events then start
                after the snapshot's sequence.
            known_gen: the `Loaded.snapshot_gen` the caller's state at `after_seq + 1` was checked against.
                While it is still the instance's generation (no snapshot written, replaced or dropped
                since) and `after_seq` lies in the current run, the snapshot is not read: the caller's state
                is as good as any snapshot (design/snapshots.md, "The warm path"). None: read it.

        Returns:
            What was read, in one consistent view.
        """
        ...

    def events_after(self, seq: int) -> Sequence[LoadedEvent]:
        """The events after `seq`, in sequence order, in the same view as `load`."""
        ...


class Transaction(Protocol):
    """One instance's locked transaction, as yielded by `Store.locked`; valid only inside that block."""

    def load(self, *, after_seq: int = 0, with_snapshot: bool = False, known_gen: int | None = None) -> Loaded:
        """Read the events after `after_seq` and the input key's recorded status.

        Args:
            after_seq: a sequence the caller already knows the state up to (0: everything).
            with_snapshot: also read the latest snapshot newer than `after_seq`; the events then start
                after the snapshot's sequence.
            known_gen: the `Loaded.snapshot_gen` the caller's state at `after_seq + 1` was checked against.
                While it is still the instance's generation (no snapshot written, replaced or dropped
                since) and `after_seq` lies in the current run, the snapshot is not read: the caller's state
                is as good as any snapshot (design/snapshots.md, "The warm path"). None: read it.

        Returns:
            What was read, in one consistent view.
        """
        ...

    def events_after(self, seq: int) -> Sequence[LoadedEvent]:
        """The events after `seq`, in sequence order (to replay past a cache or snapshot that did not fit)."""
        ...

    def instance(self) -> InstanceInfo | None:
        """The instance row as it is under the lock (every writer of its status holds the lock too)."""
        ...

    def key_status(self) -> OutcomeStatus | None:
        """The status recorded for the transaction's input key (None: not seen, or no key)."""
        ...

    def now(self) -> datetime:
        """The store's clock in this transaction (PostgreSQL: the server's `now()`; memory: the system clock).

        What a delay counts from when due-ness is judged by the store's clock (design/operations.md, "One
        clock").
        """
        ...

    def hold(self, paused_at: datetime | None, now: datetime) -> None:
        """Set (a time) or clear (None) the instance's dispatch hold, and record the input key as accepted.

        While `paused_at` is set, workers claim none of the instance's effects or timers (design/lifecycle.md).
        """
        ...

    def events_named(self, type_names: Sequence[str], limit: int) -> Sequence[LoadedEvent]:
        """The instance's first `limit` events stored under one of `type_names`, in sequence order.

        For `ironflow-py events upgrade`, which rewrites rows stored under old names (design/versioning.md).
        """
        ...

    def rewrite_events(self, rows: Sequence[tuple[int, str, str]]) -> None:
        """Replace the stored name and payload of existing events: (seq, type name, JSON text) each.

        Sequence, position, transaction id and time stay as they were, so no projection cursor moves.

        Raises:
            StoreError: the database refused a value (permanent) or is unreachable.
        """
        ...

    def drop_snapshot(self, seq: int) -> bool:
        """Delete the instance's snapshot if it is still the one at `seq`; True if one was deleted."""
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
    """A store's waiters on instance closes.

    A notice only says "re-read the row"; a waiter subscribes before it reads, so a close committed in
    between is never missed.
    """

    def subscribe(self, workflow_type: str, workflow_id: str) -> CloseSubscription:
        """Subscribe a blocking waiter to the close of one instance."""
        ...

    def subscribe_async(self, workflow_type: str, workflow_id: str) -> AsyncCloseSubscription:
        """Subscribe from inside the waiting coroutine's running event loop."""
        ...

    def count(self) -> int:
        """How many subscriptions are live."""
        ...


class Store(Protocol):
    """The port a `WorkflowService` runs on: where instances, their events, outbox and timers live.

    Implemented by `PostgresStore` (durable) and `MemoryStore` (in process); one contract suite runs over
    both (tests/contract). See the module docstring for the transaction contract.
    """

    def locked(
        self, workflow_type: str, workflow_id: str, input_key: str | None = None, *, settle: Settle | None = None
    ) -> AbstractContextManager[Transaction]:
        """Open one transaction holding the instance lock; leaving the block commits, an exception rolls back.

        Args:
            workflow_type: The instance's workflow type.
            workflow_id: The instance's id (it need not exist yet).
            input_key: The idempotency key whose recorded status `Transaction.load` reports, or None.
            settle: A fenced outbox/timer change, applied right after the lock and committed with the rest.

        Returns:
            A context manager yielding the `Transaction`.

        Raises:
            LeaseLost: `settle`'s fence matched no row (another worker owns the claim); nothing is written.
            StoreError: The database is unreachable or refused the transaction.
        """
        ...

    def reading(self, workflow_type: str, workflow_id: str) -> AbstractContextManager[Reader]:
        """Open one read-only view of an instance without its lock: what `WorkflowService.state` folds on a replica.

        Every read inside the block sees the same committed data (PostgreSQL: one REPEATABLE READ READ ONLY
        transaction, which a hot standby allows); no lock is taken, so a decision may commit meanwhile and
        the block does not see it.

        Args:
            workflow_type: The instance's workflow type.
            workflow_id: The instance's id.

        Returns:
            A context manager yielding the `Reader`.

        Raises:
            StoreError: The database could not be reached or refused the transaction.
        """
        ...

    def wal_position(self) -> str | None:
        """A position in the write-ahead log at or after every commit that returned before this call.

        Returns:
            PostgreSQL: `pg_current_wal_insert_lsn()` as `pg_lsn` text (`"0/3000148"`); memory: None (no log).

        Raises:
            StoreError: The database could not be reached, or it is a standby (it writes no WAL of its own).
        """
        ...

    def wait_for_replay(
        self, min_lsn: str, timeout: float, *, workflow_type: str | None = None, workflow_id: str | None = None
    ) -> None:
        """Return once this store's server has replayed the WAL up to `min_lsn`; at once on a primary.

        Args:
            min_lsn: A position from `wal_position` (`Outcome.wal_position`).
            timeout: The longest wait in seconds (monotonic clock).
            workflow_type: Named in the error.
            workflow_id: Named in the error.

        Raises:
            ReplicaBehind: The server had not replayed that far within `timeout`.
            ValueRefused: `min_lsn` is not a WAL position.
            StoreError: The database could not be reached.
        """
        ...

    def outbox(self, worker: str) -> Outbox:
        """The outbox port for one worker: its claims and fenced updates of effects and timers.

        Args:
            worker: The worker id that names its claims; unique per process start (see `EffectRuntime`).

        Returns:
            The port, bound to this store and `worker`.
        """
        ...

    def latest_snapshot(self, workflow_type: str, workflow_id: str) -> StoredSnapshot | None:
        """The newest snapshot of one instance, not decoded (for inspection and tests).

        Args:
            workflow_type: The workflow type.
            workflow_id: The instance.

        Returns:
            The snapshot, or None if it has none.

        Raises:
            StoreError: The database could not be reached or refused the query.
        """
        ...

    def events(self, workflow_type: str, workflow_id: str) -> Sequence[StoredEvent]:
        """Every stored event of one instance, in sequence order, not decoded (a consistent read, no lock).

        Args:
            workflow_type: The workflow type.
            workflow_id: The instance.

        Returns:
            The rows (empty if the instance does not exist).

        Raises:
            StoreError: The database could not be reached or refused the query.
        """
        ...

    def instance(self, workflow_type: str, workflow_id: str) -> InstanceInfo | None:
        """The summary row of one instance: status, last sequence, times, outcome.

        Args:
            workflow_type: The workflow type.
            workflow_id: The instance.

        Returns:
            The row, or None if the instance does not exist.

        Raises:
            StoreError: The database could not be reached or refused the query.
        """
        ...

    def instances_with_events(
        self, workflow_type: str, type_names: Sequence[str], *, after: str | None = None, limit: int = 100
    ) -> Sequence[str]:
        """Ids of the instances of one type that have an event stored under one of `type_names`, a page at a time.

        A scan of the type's events (no index on the name): an operator's command, not a hot path.

        Args:
            workflow_type: The workflow type.
            type_names: Stored event names to look for.
            after: The last id of the previous page (keyset pagination), or None.
            limit: At most this many ids.

        Returns:
            The ids, in ascending order.

        Raises:
            StoreError: The database could not be reached or refused the query.
        """
        ...

    def effects(self, workflow_type: str, workflow_id: str) -> Sequence[EffectInfo]:
        """The outbox rows of one instance (pending, done and dead), oldest first.

        Args:
            workflow_type: The workflow type.
            workflow_id: The instance.

        Returns:
            The rows.

        Raises:
            StoreError: The database could not be reached or refused the query.
        """
        ...

    def timers(self, workflow_type: str, workflow_id: str) -> Sequence[TimerInfo]:
        """The scheduled timers of one instance, earliest due first.

        Args:
            workflow_type: The workflow type.
            workflow_id: The instance.

        Returns:
            The timers.

        Raises:
            StoreError: The database could not be reached or refused the query.
        """
        ...

    def list_instances(
        self,
        workflow_type: str | None = None,
        status: InstanceStatus | None = None,
        *,
        limit: int = 100,
        after: tuple[str, str] | None = None,
    ) -> Sequence[InstanceInfo]:
        """Instances ordered by (workflow type, id), optionally filtered, a page at a time.

        Args:
            workflow_type: Only this workflow type (None: all).
            status: Only instances in this status (None: all).
            limit: At most this many rows.
            after: (workflow_type, workflow_id) of the last row of the previous page (keyset pagination).

        Returns:
            The page of instance rows.

        Raises:
            StoreError: The database could not be reached or refused the query.
        """
        ...

    def open_versions(self, workflow_type: str) -> dict[str, int]:
        """How many open (running) instances of one workflow type record each `Workflow.version`.

        Args:
            workflow_type: The workflow type.

        Returns:
            Version -> count of open instances (versions with none are absent).

        Raises:
            StoreError: The database could not be reached or refused the query.
        """
        ...

    def children(self, workflow_type: str, workflow_id: str, *, open_only: bool = True) -> Sequence[InstanceInfo]:
        """The instances started as children of one parent, ordered by (workflow type, id).

        Args:
            workflow_type: The parent's workflow type.
            workflow_id: The parent's id.
            open_only: Only children still running.

        Returns:
            Their instance rows (each names its parent and `parent_close_policy`).

        Raises:
            StoreError: The database could not be reached or refused the query.
        """
        ...

    def pruner(self, projections: str | Iterable[str] = ()) -> Pruner:
        """The pruning port of this store (design/retention.md).

        Args:
            projections: Names of projections whose checkpoints bound pruning even before they have a
                checkpoint row (one missing holds every instance back); rows present always count. A single
                string is one name, never its characters.

        Returns:
            The pruner.
        """
        ...

    def migrate(self) -> Sequence[int]:
        """Bring the storage schema up to date.

        Returns:
            The versions applied by this call (memory: none).

        Raises:
            MigrationError: The schema has migrations this code does not know.
            StoreError: The database failed; nothing was applied.
        """
        ...

    def closed_waiters(self) -> ClosedWaiters:
        """The store's one hub of waiters on instance closes (PostgreSQL: one LISTEN connection for all).

        Returns:
            The hub; `WorkflowService.wait` subscribes to it.
        """
        ...

    def listening(self, timeout: float) -> bool:
        """Block until close notices are being received.

        Args:
            timeout: The longest wait in seconds (monotonic clock).

        Returns:
            True once notices are received; False if still not (polling then covers the gap).
        """
        ...

    def close(self) -> None:
        """Release the store's connections and threads; it cannot be used afterwards."""
        ...
