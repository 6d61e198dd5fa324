"""An in-memory store with the same behaviour as the PostgreSQL one, for pure tests, the harness and scenarios.

Payloads go through JSON text exactly as they would on the way to PostgreSQL, so a value that the
database would refuse is refused here too. One lock serializes all writers; a failed step writes nothing.
The outbox port (`MemoryOutbox`, from `MemoryStore.outbox(worker)`) lives here too: every change to a
claimed row goes through one fence check, `MemoryStore._fenced`, the twin of the SQL `WHERE` clauses.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, TypeVar

import attrs

from ironflow_py._names import names
from ironflow_py.clock import SystemClock
from ironflow_py.composition import CHILD_CLOSED_ROW, PARENT_CLOSED_ROW, START_CHILD_ROW
from ironflow_py.errors import LeaseLost
from ironflow_py.lifecycle import RUN_CONTINUED_EVENT
from ironflow_py.records import EffectInfo, InstanceInfo, InstanceStatus, OutcomeStatus, TimerInfo
from ironflow_py.retention import ClosedMode, PruneReport, RetentionPolicy
from ironflow_py.store._prune import prune_until_done
from ironflow_py.store._waiters import WaiterHub
from ironflow_py.store.base import (
    EffectClaim,
    Loaded,
    LoadedEvent,
    Settle,
    SettleKind,
    StoredEvent,
    StoredSnapshot,
    TimerClaim,
    Tombstone,
    Writes,
    Written,
)


@attrs.define
class _OutboxRow:
    id: int
    workflow_type: str
    workflow_id: str
    effect_type: str
    payload: Any
    available_at: datetime
    status: str = "pending"
    attempts: int = 0
    claim_token: int | None = None
    locked_by: str | None = None
    locked_until: datetime | None = None
    last_error: str | None = None
    last_traceback: str | None = None
    #: When it became done, dead or cancelled (the retention clock of `prune`).
    completed_at: datetime | None = None
    #: The payload's JSON text size in bytes (the byte-bounded claim counts it).
    size: int = 0


@attrs.define
class _Timer:
    id: int
    workflow_type: str
    workflow_id: str
    timer_key: str
    due_at: datetime
    input_type: str
    payload: Any
    attempts: int = 0
    claim_token: int | None = None
    locked_by: str | None = None
    locked_until: datetime | None = None
    last_error: str | None = None


_Leased = TypeVar("_Leased", _OutboxRow, _Timer)


class MemoryStore:
    """A store that holds everything in dicts behind one lock: not durable, not shared between processes.

    It behaves as `PostgresStore` does (one contract suite runs on both, tests/contract), so the
    harness, `Scenario` and unit tests get the engine's real semantics without a database.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._events: dict[tuple[str, str], list[StoredEvent]] = {}
        self._instances: dict[tuple[str, str], InstanceInfo] = {}
        self._keys: dict[tuple[str, str, str], OutcomeStatus] = {}
        self._snapshots: dict[tuple[str, str], StoredSnapshot] = {}
        #: instances.snapshot_gen (migration 020): how often each instance's snapshot was written or dropped.
        self._snapshot_gens: dict[tuple[str, str], int] = {}
        self._outbox: dict[int, _OutboxRow] = {}
        self._timers: dict[tuple[str, str, str], _Timer] = {}
        #: Instances pruned to a tombstone (design/retention.md), with when.
        self._pruned: dict[tuple[str, str], datetime] = {}
        self._position = 0
        self._next_id = 0
        self._next_token = 0
        self._waiters = WaiterHub()

    def migrate(self) -> list[int]:
        """Nothing to migrate in memory.

        Returns:
            No versions (always empty).
        """
        return []

    def closed_waiters(self) -> WaiterHub:
        """The hub of waiters on instance closes; this store notifies it from the closing write itself.

        Returns:
            The hub.
        """
        return self._waiters

    def listening(self, timeout: float) -> bool:
        """Report whether close notices are received: always, since the closing write announces them in-process.

        Args:
            timeout: Ignored (nothing to wait for).

        Returns:
            True.
        """
        return True

    def close(self) -> None:
        """Do nothing: there is no connection to close."""

    @contextmanager
    def locked(
        self, workflow_type: str, workflow_id: str, input_key: str | None = None, *, settle: Settle | None = None
    ) -> Iterator[MemoryTransaction]:
        """The instance's transaction (see `Store.locked`): here, the one store lock held for the block.

        Args:
            workflow_type: The instance's workflow type.
            workflow_id: The instance's id (it need not exist yet).
            input_key: The input's idempotency key, whose recorded status `load` reads (None: none).
            settle: A fenced change to a claimed outbox row or timer, checked first, applied at the end.

        Yields:
            The transaction: `load`, `events_after`, `write`. Its writes stand when the block ends and are
            discarded if the block raises.

        Raises:
            LeaseLost: `settle` was given and the claim no longer holds; nothing was written.
        """
        with self._lock:
            # Check the fence first and apply it last: under the one lock that is the same all-or-nothing
            # as PostgreSQL's fenced update at the start of the transaction.
            if settle is not None:
                self._check_fence(settle)
            yield MemoryTransaction(self, (workflow_type, workflow_id), input_key)
            # Reached only when the block did not raise.
            if settle is not None:
                self._apply_settle(settle)

    @contextmanager
    def reading(self, workflow_type: str, workflow_id: str) -> Iterator[MemoryTransaction]:
        """A consistent view of one instance (see `Store.reading`): here, the store lock held for the block.

        Args:
            workflow_type: The instance's workflow type.
            workflow_id: The instance's id.

        Yields:
            A transaction used only to read (`load`, `events_after`).
        """
        with self._lock:
            yield MemoryTransaction(self, (workflow_type, workflow_id), None)

    def wal_position(self) -> None:
        """No write-ahead log in memory.

        Returns:
            None.
        """
        return None

    def wait_for_replay(
        self, min_lsn: str, timeout: float, *, workflow_type: str | None = None, workflow_id: str | None = None
    ) -> None:
        """Return at once: a memory store is its own primary, every commit is visible.

        Args:
            min_lsn: Ignored.
            timeout: Ignored.
            workflow_type: Ignored.
            workflow_id: Ignored.
        """

    def outbox(self, worker: str) -> MemoryOutbox:
        """The outbox port for one worker on this store: its claims and fenced updates (`store.base.Outbox`).

        Args:
            worker: The worker id that names its claims; unique per process start (see `EffectRuntime`).

        Returns:
            The port, bound to this store and `worker`.
        """
        return MemoryOutbox(self, worker)

    def pruner(self, projections: str | Iterable[str] = ()) -> MemoryPruner:
        """The pruning port of this store (`store.base.Pruner`, design/retention.md).

        Args:
            projections: Projection names that must have read an instance's events before it is pruned (one
                name as a string, or several).
                The memory store keeps no projection checkpoints, so naming any holds every instance back.

        Returns:
            The pruner.
        """
        return MemoryPruner(self, projections)

    def _timer_by_id(self, timer_id: int) -> _Timer | None:
        return next((t for t in self._timers.values() if t.id == timer_id), None)

    def _fenced(self, row: _Leased | None, worker: str, token: int) -> _Leased | None:
        """The one fence check: `row` while `worker` still holds the claim named `token` on it, else None.

        The twin of `WHERE id = ... AND locked_by = worker AND claim_token = token [AND status = 'pending']`
        in queries.sql; every change to a claimed row, settle included, goes through it.
        """
        if row is None or row.locked_by != worker or row.claim_token != token:
            return None
        if isinstance(row, _OutboxRow) and row.status != "pending":
            return None
        return row

    def _check_fence(self, settle: Settle) -> None:
        if settle.kind is SettleKind.TIMER_FIRED:
            if self._fenced(self._timer_by_id(settle.id), settle.worker, settle.token) is None:
                raise LeaseLost("timer", settle.id, settle.worker)
        elif self._fenced(self._outbox.get(settle.id), settle.worker, settle.token) is None:
            raise LeaseLost("effect", settle.id, settle.worker)

    def _apply_settle(self, settle: Settle) -> None:
        if settle.kind is SettleKind.TIMER_FIRED:
            timer = self._timer_by_id(settle.id)
            if timer is not None:  # None: this very decision rescheduled the key, which replaced it
                del self._timers[(timer.workflow_type, timer.workflow_id, timer.timer_key)]
            return
        row = self._outbox[settle.id]
        row.status = "done" if settle.kind is SettleKind.EFFECT_DONE else "dead"
        row.locked_until, row.completed_at = None, settle.now
        if settle.error is not None:
            row.last_error, row.last_traceback = settle.error, settle.traceback

    def latest_snapshot(self, workflow_type: str, workflow_id: str) -> StoredSnapshot | None:
        """The newest snapshot of one instance, not decoded (for inspection and tests).

        Args:
            workflow_type: The workflow type.
            workflow_id: The instance.

        Returns:
            The snapshot, or None if it has none.
        """
        with self._lock:
            return self._snapshots.get((workflow_type, workflow_id))

    def put_snapshot(self, workflow_type: str, workflow_id: str, snapshot: StoredSnapshot) -> None:
        """Overwrite a snapshot directly (tests use it to plant a stale or corrupt one).

        Args:
            workflow_type: The workflow type.
            workflow_id: The instance.
            snapshot: The snapshot to store.
        """
        with self._lock:
            ref = (workflow_type, workflow_id)
            self._snapshots[ref] = snapshot
            self._snapshot_gens[ref] = self._snapshot_gens.get(ref, 0) + 1

    def retry_dead_letter(self, effect_id: int, now: datetime) -> bool:
        """Make dead effect `effect_id` pending again at `now` with zero attempts (the `retry_dead_letter` SQL).

        Args:
            effect_id: The outbox row.
            now: When it becomes due.

        Returns:
            False if `effect_id` is not a dead effect (nothing changed).
        """
        with self._lock:
            row = self._outbox.get(effect_id)
            if row is None or row.status != "dead":
                return False
            row.status, row.attempts, row.available_at = "pending", 0, now
            row.locked_by, row.locked_until, row.claim_token, row.completed_at = None, None, None, None
            return True

    def _new_token(self) -> int:
        """The next claim token, as `nextval('claim_tokens')` on PostgreSQL: never repeated."""
        self._next_token += 1
        return self._next_token

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def _write(self, ref: tuple[str, str], w: Writes) -> Written:
        # Parse everything first: a payload the database would reject must leave nothing behind.
        events = [(t, json.loads(p)) for t, p in w.events]
        effects = [(t, json.loads(p), len(p.encode())) for t, p in w.effects]
        timers = [(t, json.loads(t.payload)) for t in w.timers]
        snapshot = None
        if w.snapshot is not None:
            snapshot = StoredSnapshot(w.last_seq, w.snapshot.state_version, json.loads(w.snapshot.payload))
        stored = self._events.setdefault(ref, [])
        base = w.last_seq - len(events)
        if stored and stored[-1].seq != base:
            raise AssertionError(f"{ref}: sequence {base + 1} follows {stored[-1].seq}")
        positions = []
        for offset, (type_name, data) in enumerate(events, start=1):
            self._position += 1
            positions.append(self._position)
            stored.append(StoredEvent(base + offset, self._position, type_name, data, w.now))
        effect_ids = []
        for type_name, data, size in effects:
            row = _OutboxRow(self._new_id(), *ref, type_name, data, w.now, size=size)
            self._outbox[row.id] = row
            effect_ids.append(row.id)
        for key in w.cancel_timers:
            self._timers.pop((*ref, key), None)
        if w.terminate:
            for timer_ref in [k for k in self._timers if k[:2] == ref]:
                del self._timers[timer_ref]
            for row in self._outbox.values():
                if (row.workflow_type, row.workflow_id) == ref and row.status == "pending":
                    row.status, row.completed_at = "cancelled", w.now
        for timer, data in timers:
            self._timers[(*ref, timer.key)] = _Timer(
                self._new_id(), *ref, timer.key, timer.due_at, timer.input_type, data
            )
        if w.touches_instance():
            old = self._instances.get(ref)
            status = w.status
            created = old.created_at if old else w.now
            closed_at = w.now if status.closed else None
            paused_at = old.paused_at if old else None
            outcome = None if w.outcome is None else json.loads(w.outcome)
            parent = (old.parent_type, old.parent_id, old.parent_close_policy) if old else (None, None, None)
            if parent[1] is None and w.parent is not None:  # link_parent: written once, never moved
                parent = (w.parent.workflow_type, w.parent.workflow_id, w.parent.on_parent_close)
            version = w.version if w.version is not None else (old.version if old else "1")
            run, run_start = (old.run, old.run_start) if old else (1, 1)
            if w.continue_run:  # the run ends at last_seq; the next one starts right after it
                run, run_start = run + 1, w.last_seq + 1
            self._instances[ref] = InstanceInfo(
                *ref,
                status,
                w.last_seq,
                created,
                w.now,
                closed_at,
                outcome,
                paused_at,
                *parent,
                version,
                run,
                run_start,
            )
            if w.continue_run:
                self._waiters.notify(*ref)  # as the run trigger of migration 017: waiters re-read the row
            if status.closed:
                self._close_relations(ref, w.now)
                # Waiters re-read under this lock, so they see the close once the write below returns.
                self._waiters.notify(*ref)
        if snapshot is not None:
            self._snapshots[ref] = snapshot
            self._snapshot_gens[ref] = self._snapshot_gens.get(ref, 0) + 1
        if w.input_key is not None and w.key_status is not None:
            self._keys[(*ref, w.input_key)] = w.key_status
        gen = self._snapshot_gens.get(ref, 0) if ref in self._instances else None
        return Written(positions=positions, effect_ids=effect_ids, snapshot_gen=gen)

    def _close_relations(self, ref: tuple[str, str], now: datetime) -> None:
        """`close_relations` (queries.sql): the notice to a parent, unstarted children, the parent-close sweep."""
        info = self._instances[ref]
        if info.parent_id is not None:
            payload = {"parent_type": info.parent_type, "parent_id": info.parent_id, "outcome": info.outcome_data}
            row = _OutboxRow(self._new_id(), *ref, CHILD_CLOSED_ROW, payload, now)
            self._outbox[row.id] = row
        sweep = False
        for row in list(self._outbox.values()):
            if (row.workflow_type, row.workflow_id) != ref or row.effect_type != START_CHILD_ROW:
                continue
            if row.payload.get("on_parent_close") == "abandon":
                continue
            if row.status in ("pending", "done"):
                sweep = True
            if row.status == "pending":
                row.status = "cancelled"
                row.locked_until = None
        if sweep:
            row = _OutboxRow(self._new_id(), *ref, PARENT_CLOSED_ROW, {}, now)
            self._outbox[row.id] = row

    def open_versions(self, workflow_type: str) -> dict[str, int]:
        """How many open instances of one type record each version (see `Store.open_versions`).

        Args:
            workflow_type: The workflow type.

        Returns:
            Version -> count of open instances.
        """
        with self._lock:
            found: dict[str, int] = {}
            for (wtype, _), info in self._instances.items():
                if wtype == workflow_type and info.status is InstanceStatus.RUNNING:
                    found[info.version] = found.get(info.version, 0) + 1
            return dict(sorted(found.items()))

    def children(self, workflow_type: str, workflow_id: str, *, open_only: bool = True) -> list[InstanceInfo]:
        """The instances started as children of one parent (see `Store.children`).

        Args:
            workflow_type: The parent's workflow type.
            workflow_id: The parent's id.
            open_only: Only children still running.

        Returns:
            Their instance rows, ordered by (workflow type, id).
        """
        with self._lock:
            rows = sorted(self._instances.items())
        return [
            info
            for _, info in rows
            if (info.parent_type, info.parent_id) == (workflow_type, workflow_id)
            and (not open_only or not info.status.closed)
        ]

    def events(self, workflow_type: str, workflow_id: str) -> list[StoredEvent]:
        """Every stored event of one instance, in sequence order, not decoded (a consistent read, no lock).

        Args:
            workflow_type: The workflow type.
            workflow_id: The instance.

        Returns:
            The rows (empty if the instance does not exist).
        """
        with self._lock:
            return list(self._events.get((workflow_type, workflow_id), []))

    def instances_with_events(
        self, workflow_type: str, type_names: Sequence[str], *, after: str | None = None, limit: int = 100
    ) -> list[str]:
        """Ids of instances with an event under one of `type_names` (see `Store.instances_with_events`).

        Args:
            workflow_type: The workflow type.
            type_names: Stored event names to look for.
            after: The last id of the previous page, or None.
            limit: At most this many ids.

        Returns:
            The ids, in ascending order.
        """
        names = set(type_names)
        with self._lock:
            found = sorted(
                wid
                for (wtype, wid), events in self._events.items()
                if wtype == workflow_type
                and (after is None or wid > after)
                and any(e.type_name in names for e in events)
            )
        return found[:limit]

    def instance(self, workflow_type: str, workflow_id: str) -> InstanceInfo | None:
        """The summary row of one instance: status, last sequence, times, outcome.

        Args:
            workflow_type: The workflow type.
            workflow_id: The instance.

        Returns:
            The row, or None if the instance does not exist.
        """
        with self._lock:
            return self._instances.get((workflow_type, workflow_id))

    def effects(self, workflow_type: str, workflow_id: str) -> list[EffectInfo]:
        """The outbox rows of one instance (pending, done and dead), oldest first.

        Args:
            workflow_type: The workflow type.
            workflow_id: The instance.

        Returns:
            The rows.
        """
        with self._lock:
            rows = [
                r for r in self._outbox.values() if (r.workflow_type, r.workflow_id) == (workflow_type, workflow_id)
            ]
            return [
                EffectInfo(
                    r.id,
                    r.workflow_type,
                    r.workflow_id,
                    r.effect_type,
                    r.payload,
                    r.status,
                    r.attempts,
                    r.available_at,
                    r.locked_by,
                    r.locked_until,
                    r.last_error,
                    r.last_traceback,
                )
                for r in sorted(rows, key=lambda r: r.id)
            ]

    def timers(self, workflow_type: str, workflow_id: str) -> list[TimerInfo]:
        """The scheduled timers of one instance, earliest due first.

        Args:
            workflow_type: The workflow type.
            workflow_id: The instance.

        Returns:
            The timers.
        """
        with self._lock:
            rows = [
                t for t in self._timers.values() if (t.workflow_type, t.workflow_id) == (workflow_type, workflow_id)
            ]
            return [
                TimerInfo(
                    t.id, t.workflow_type, t.workflow_id, t.timer_key, t.due_at, t.input_type, t.payload, t.attempts
                )
                for t in sorted(rows, key=lambda t: (t.due_at, t.id))
            ]

    def list_instances(
        self,
        workflow_type: str | None = None,
        status: InstanceStatus | None = None,
        *,
        limit: int = 100,
        after: tuple[str, str] | None = None,
    ) -> list[InstanceInfo]:
        """Instances ordered by (workflow type, id), optionally filtered, a page at a time.

        Args:
            workflow_type: Only this workflow type (None: all).
            status: Only instances in this status (None: all).
            limit: At most this many rows.
            after: (workflow_type, workflow_id) of the last row of the previous page (keyset pagination).

        Returns:
            The page of instance rows.
        """
        with self._lock:
            rows = sorted(self._instances.items())
        return [
            info
            for key, info in rows
            if (workflow_type is None or info.workflow_type == workflow_type)
            and (status is None or info.status is status)
            and (after is None or key > after)
        ][:limit]


class MemoryTransaction:
    """`Transaction` of a MemoryStore, valid while its `locked` block holds the store lock.

    The decision is applied at `write` (it parses every payload first, so a refused value leaves nothing);
    the command handler writes last, so a failing step has written nothing by then.
    """

    def __init__(self, store: MemoryStore, ref: tuple[str, str], input_key: str | None) -> None:
        self._store = store
        self._ref = ref
        self._input_key = input_key

    def events_after(self, seq: int) -> list[LoadedEvent]:
        """The events after `seq` (see `Transaction.events_after`)."""
        return [LoadedEvent(e.seq, e.type_name, e.data) for e in self._store._events.get(self._ref, []) if e.seq > seq]

    def load(self, *, after_seq: int = 0, with_snapshot: bool = False, known_gen: int | None = None) -> Loaded:
        """The events after `after_seq` or a newer snapshot, and the key's status (see `Transaction.load`).

        As `lock_and_load` (migrations 017, 020): nothing before the run start, whose snapshot is always read
        unless `known_gen` is the instance's snapshot generation.
        """
        store = self._store
        info = store._instances.get(self._ref)
        run_start = info.run_start if info is not None else 1
        gen = store._snapshot_gens.get(self._ref, 0) if info is not None else None
        unchanged = known_gen is not None and known_gen == gen and after_seq >= run_start - 1
        snapshot = store._snapshots.get(self._ref) if (with_snapshot or run_start > 1) and not unchanged else None
        if snapshot is not None and snapshot.seq <= after_seq:
            snapshot = None
        events = self.events_after(max(after_seq, snapshot.seq if snapshot else 0, run_start - 1))
        key = self._input_key
        key_status = store._keys.get((*self._ref, key)) if key is not None else None
        tombstone = None
        if not events and snapshot is None and self._ref in store._pruned:
            info = store._instances[self._ref]
            tombstone = Tombstone(info.last_seq, info.outcome_data)
        version, run = (info.version, info.run) if info is not None else (None, 1)
        return Loaded(events, key_status, snapshot, tombstone, version, run_start, run, gen)

    def instance(self) -> InstanceInfo | None:
        """The instance row (see `Transaction.instance`)."""
        return self._store._instances.get(self._ref)

    def key_status(self) -> OutcomeStatus | None:
        """The input key's recorded status (see `Transaction.key_status`)."""
        key = self._input_key
        return self._store._keys.get((*self._ref, key)) if key is not None else None

    def now(self) -> datetime:
        """The system clock in UTC (see `Transaction.now`)."""
        return SystemClock().now()

    def hold(self, paused_at: datetime | None, now: datetime) -> None:
        """Set or clear the dispatch hold (see `Transaction.hold`)."""
        store = self._store
        info = store._instances[self._ref]
        store._instances[self._ref] = attrs.evolve(info, paused_at=paused_at, updated_at=now)
        if self._input_key is not None:
            store._keys[(*self._ref, self._input_key)] = OutcomeStatus.ACCEPTED

    def events_named(self, type_names: Sequence[str], limit: int) -> list[LoadedEvent]:
        """The first `limit` events stored under one of `type_names` (see `Transaction.events_named`)."""
        names = set(type_names)
        return [e for e in self.events_after(0) if e.type_name in names][:limit]

    def rewrite_events(self, rows: Sequence[tuple[int, str, str]]) -> None:
        """Replace the name and payload of existing events (see `Transaction.rewrite_events`)."""
        parsed = [(seq, name, json.loads(payload)) for seq, name, payload in rows]  # all or nothing
        stored = self._store._events[self._ref]
        first = stored[0].seq if stored else 1  # earlier runs' events may have been pruned
        for seq, name, data in parsed:
            old = stored[seq - first]
            assert old.seq == seq
            stored[seq - first] = StoredEvent(seq, old.position, name, data, old.recorded_at)

    def drop_snapshot(self, seq: int) -> bool:
        """Delete the snapshot if it is at `seq` (see `Transaction.drop_snapshot`)."""
        snapshot = self._store._snapshots.get(self._ref)
        if snapshot is None or snapshot.seq != seq:
            return False
        del self._store._snapshots[self._ref]
        self._store._snapshot_gens[self._ref] = self._store._snapshot_gens.get(self._ref, 0) + 1
        return True

    def write(self, writes: Writes) -> Written:
        """Apply one decision (see `Transaction.write`)."""
        if writes.is_empty():
            return Written()
        return self._store._write(self._ref, writes)


def _store_now(now: datetime | None) -> datetime:
    """The memory store's clock for the outbox port: the caller's ManualClock time, else the system clock."""
    return now if now is not None else SystemClock().now()


class MemoryOutbox:
    """`store.base.Outbox` over a MemoryStore: the same claims, leases and fences as the SQL, under its lock."""

    def __init__(self, store: MemoryStore, worker: str) -> None:
        self.store = store
        self.worker = worker

    def _paused(self, workflow_type: str, workflow_id: str) -> bool:
        """Paused instances get no claims, as in the SQL claims (design/lifecycle.md)."""
        info = self.store._instances.get((workflow_type, workflow_id))
        return info is not None and info.paused_at is not None

    def _held_effects(self, claims: Iterable[EffectClaim]) -> list[_OutboxRow]:
        store = self.store
        return [r for c in claims if (r := store._fenced(store._outbox.get(c.id), self.worker, c.token)) is not None]

    def _held_timers(self, claims: Iterable[TimerClaim]) -> list[_Timer]:
        store = self.store
        return [t for c in claims if (t := store._fenced(store._timer_by_id(c.id), self.worker, c.token)) is not None]

    # -- effects ------------------------------------------------------------------------------------------

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
        """See `Outbox.claim_effects`; the lease end goes to `available_at`, as on PostgreSQL."""
        now = _store_now(now)
        with self.store._lock:
            due = sorted(
                (
                    r
                    for r in self.store._outbox.values()
                    if r.status == "pending"
                    and r.available_at <= now
                    and not self._paused(r.workflow_type, r.workflow_id)
                    and (effect_types is None or r.effect_type in effect_types)
                ),
                key=lambda r: (r.available_at, r.id),
            )[:limit]
            if max_bytes is not None:
                total, kept = 0, 0
                for row in due:
                    total += row.size
                    if total > max_bytes and (kept or not always_one):
                        break
                    kept += 1
                due = due[:kept]
            claims = []
            for row in due:
                due_at = row.available_at  # before the claim moves it: the schedule-to-start delay's start
                row.locked_by, row.attempts = self.worker, row.attempts + 1
                row.claim_token = self.store._new_token()
                row.locked_until = row.available_at = now + lease
                claims.append(
                    EffectClaim(
                        row.id,
                        row.workflow_type,
                        row.workflow_id,
                        row.effect_type,
                        row.payload,
                        row.attempts,
                        row.claim_token or 0,
                        due_at,
                        None,
                        row.size,
                    )
                )
            return claims

    def heartbeat(self, claim: EffectClaim, now: datetime | None, lease: timedelta) -> datetime | None:
        """See `Outbox.heartbeat`."""
        until = _store_now(now) + lease
        with self.store._lock:
            for row in self._held_effects([claim]):
                row.locked_until = row.available_at = until
                return until
            return None

    def complete_effects(self, claims: Sequence[EffectClaim], now: datetime | None) -> set[int]:
        """See `Outbox.complete_effects`."""
        with self.store._lock:
            held = self._held_effects(claims)
            for row in held:
                row.status, row.locked_until, row.completed_at = "done", None, _store_now(now)
            return {row.id for row in held}

    def retry_effect_later(
        self, claim: EffectClaim, now: datetime | None, delay: timedelta, error: str, traceback: str | None = None
    ) -> bool:
        """See `Outbox.retry_effect_later`."""
        retry_at = _store_now(now) + delay
        with self.store._lock:
            for row in self._held_effects([claim]):
                row.available_at, row.last_error, row.locked_by, row.locked_until = retry_at, error, None, None
                row.last_traceback = traceback
                return True
            return False

    def mark_dead(self, claim: EffectClaim, now: datetime, error: str, traceback: str | None = None) -> bool:
        """See `Outbox.mark_dead`."""
        with self.store._lock:
            for row in self._held_effects([claim]):
                row.status, row.last_error, row.last_traceback, row.locked_until = "dead", error, traceback, None
                row.completed_at = now
                return True
            return False

    def release_effects(self, claims: Sequence[EffectClaim], now: datetime | None) -> set[int]:
        """See `Outbox.release_effects`."""
        now = _store_now(now)
        with self.store._lock:
            held = self._held_effects(claims)
            for row in held:
                row.available_at, row.locked_by, row.locked_until, row.attempts = now, None, None, row.attempts - 1
            return {row.id for row in held}

    # -- timers -------------------------------------------------------------------------------------------

    def claim_timers(self, now: datetime | None, lease: timedelta, limit: int) -> list[TimerClaim]:
        """See `Outbox.claim_timers`."""
        now = _store_now(now)
        with self.store._lock:
            due = sorted(
                (
                    t
                    for t in self.store._timers.values()
                    if t.due_at <= now
                    and (t.locked_until is None or t.locked_until <= now)
                    and not self._paused(t.workflow_type, t.workflow_id)
                ),
                key=lambda t: (t.due_at, t.id),
            )[:limit]
            for t in due:
                t.locked_by, t.attempts, t.locked_until = self.worker, t.attempts + 1, now + lease
                t.claim_token = self.store._new_token()
            return [
                TimerClaim(
                    t.id,
                    t.workflow_type,
                    t.workflow_id,
                    t.timer_key,
                    t.due_at,
                    t.input_type,
                    t.payload,
                    t.attempts,
                    t.claim_token or 0,
                )
                for t in due
            ]

    def retry_timer_later(self, claim: TimerClaim, now: datetime | None, delay: timedelta, error: str) -> bool:
        """See `Outbox.retry_timer_later`: `due_at` stays, the lease end holds the timer back."""
        retry_at = _store_now(now) + delay
        with self.store._lock:
            for timer in self._held_timers([claim]):
                timer.locked_by, timer.locked_until, timer.last_error = None, retry_at, error
                return True
            return False

    def release_timers(self, claims: Sequence[TimerClaim], now: datetime | None) -> set[int]:
        """See `Outbox.release_timers`."""
        with self.store._lock:
            held = self._held_timers(claims)
            for timer in held:
                timer.locked_by, timer.locked_until, timer.attempts = None, None, timer.attempts - 1
            return {timer.id for timer in held}

    def next_due(self, now: datetime | None) -> float | None:
        """See `Outbox.next_due` (the same rule as the `next_due` query)."""
        now = _store_now(now)
        with self.store._lock:
            times = [
                r.available_at
                for r in self.store._outbox.values()
                if r.status == "pending" and not self._paused(r.workflow_type, r.workflow_id)
            ]
            # A timer under a lease or a backoff is claimable at its lease end; it never hides a later one.
            times += [
                max(t.due_at, t.locked_until or t.due_at)
                for t in self.store._timers.values()
                if t.locked_until is not None or not self._paused(t.workflow_type, t.workflow_id)
            ]
            return (min(times) - now).total_seconds() if times else None


class MemoryPruner:
    """`store.base.Pruner` over a MemoryStore: the SQL pruner's rules, under the store's one lock."""

    def __init__(self, store: MemoryStore, projections: str | Iterable[str] = ()) -> None:
        self.store = store
        self.projections = names(projections)

    def prune_all(
        self, policy: RetentionPolicy, now: datetime | None = None, *, max_batches: int | None = None
    ) -> PruneReport:
        """See `Pruner.prune_all`."""
        return prune_until_done(self, policy, now, max_batches)

    def prune_batch(self, policy: RetentionPolicy, now: datetime | None = None) -> PruneReport:
        """See `Pruner.prune_batch` (one batch under the store lock: all or nothing, like one transaction)."""
        now = _store_now(now)
        store = self.store
        with store._lock:
            report = PruneReport(batches=1)
            for status, keep in (("done", policy.done_effects), ("dead", policy.dead_effects)):
                if keep is None:
                    continue
                rows = sorted(
                    (
                        r
                        for r in store._outbox.values()
                        if (r.status in ("done", "cancelled") if status == "done" else r.status == "dead")
                        and r.completed_at is not None
                        and r.completed_at < now - keep
                    ),
                    key=lambda r: (r.completed_at, r.id),
                )[: policy.batch_size]
                for row in rows:
                    del store._outbox[row.id]
                if status == "done":
                    report = report + PruneReport(effects=len(rows))
                else:
                    report = report + PruneReport(dead_effects=len(rows))
            if policy.closed_instances is not None and not self.projections:
                report = report + self._instances(policy, now)
            if policy.previous_runs is not None and not self.projections:
                report = report + self._runs(policy.previous_runs, policy.batch_size, now)
            return report

    def _runs(self, keep: timedelta, limit: int, now: datetime) -> PruneReport:
        """`prune_pick_runs` and `prune_run_events`: events before the newest run marker older than `keep`."""
        store = self.store
        picked: list[tuple[datetime, tuple[str, str], int]] = []
        for ref, info in store._instances.items():
            if info.run_start <= 1 or ref in store._pruned:
                continue
            events = store._events.get(ref, [])
            markers = [
                e
                for e in events
                if e.seq < info.run_start and e.type_name == RUN_CONTINUED_EVENT and e.recorded_at < now - keep
            ]
            if markers and events and events[0].seq < markers[-1].seq:
                picked.append((markers[-1].recorded_at, ref, markers[-1].seq))
        picked = sorted(picked)[:limit]
        removed = 0
        for _, ref, upto in picked:
            kept = [e for e in store._events[ref] if e.seq >= upto]
            removed += len(store._events[ref]) - len(kept)
            store._events[ref] = kept
        return PruneReport(runs=len(picked), events=removed)

    def _dead_kept(self, row: _OutboxRow, policy: RetentionPolicy, now: datetime) -> bool:
        keep = policy.dead_effects
        return row.status == "dead" and (keep is None or row.completed_at is None or row.completed_at >= now - keep)

    def _instances(self, policy: RetentionPolicy, now: datetime) -> PruneReport:
        store = self.store
        assert policy.closed_instances is not None
        delete = policy.closed_mode is ClosedMode.DELETE
        by_instance: dict[tuple[str, str], list[_OutboxRow]] = {}
        for row in store._outbox.values():
            by_instance.setdefault((row.workflow_type, row.workflow_id), []).append(row)
        chosen = sorted(
            (
                info
                for ref, info in store._instances.items()
                if info.closed_at is not None
                and ref not in store._pruned
                and info.closed_at < now - policy.closed_instances
                and not any(
                    r.status == "pending" or (delete and self._dead_kept(r, policy, now))
                    for r in by_instance.get(ref, [])
                )
            ),
            key=lambda info: info.closed_at or now,
        )[: policy.batch_size]
        counts = dict.fromkeys(("timers", "input_keys", "snapshots", "events", "effects", "dead_effects"), 0)
        for info in chosen:
            ref = (info.workflow_type, info.workflow_id)
            # Dependency order, as on PostgreSQL: what names the instance, then the instance itself.
            for timer_ref in [k for k in store._timers if k[:2] == ref]:
                del store._timers[timer_ref]
                counts["timers"] += 1
            for key_ref in [k for k in store._keys if k[:2] == ref]:
                del store._keys[key_ref]
                counts["input_keys"] += 1
            counts["snapshots"] += store._snapshots.pop(ref, None) is not None
            store._snapshot_gens.pop(ref, None)
            counts["events"] += len(store._events.pop(ref, []))
            for row in by_instance.get(ref, []):
                if not self._dead_kept(row, policy, now):
                    del store._outbox[row.id]
                    counts["dead_effects" if row.status == "dead" else "effects"] += 1
            if delete:
                del store._instances[ref]
            else:
                store._pruned[ref] = now
        return PruneReport(
            effects=counts["effects"],
            dead_effects=counts["dead_effects"],
            instances=len(chosen),
            events=counts["events"],
            input_keys=counts["input_keys"],
            timers=counts["timers"],
            snapshots=counts["snapshots"],
        )
