"""The command handler: one input, one locked transaction: lock, load, decide (pure), write, commit.

Read `execute` top to bottom: the store gives the transaction and the SQL, `Decider` (ironflow_py/decider.py)
gives every rule between load and write, so both stores and the test harness share one decide step. User
code runs inside the pure step and its exceptions become DecideFailed; any exception rolls everything back.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import attrs

from ironflow_py._cache import StateCache
from ironflow_py.composition import ParentLink
from ironflow_py.decider import Decider, Rebuilt, Step, Unchanged
from ironflow_py.errors import ChildConflict, CodecError, InstanceClosed, NotFound, VersionNotLoaded
from ironflow_py.lifecycle import input_key_for
from ironflow_py.records import InstanceInfo, Outcome, OutcomeStatus
from ironflow_py.store.base import Reader, Settle, Store, Transaction, Writes, Written
from ironflow_py.telemetry._observer import Probe


class CommandHandler:
    """Executes inputs for one registered workflow type against a store (the imperative shell of `Decider`).

    A type may have several versions side by side (`Workflow.version`): each instance's decisions are made
    by the decider of the version its row records, read in the same statement that takes the lock; a new
    instance gets `decider`, the default version's (design/versioning.md).
    """

    def __init__(self, decider: Decider, store: Store, *, cache: StateCache | None = None, logger: Any = None) -> None:
        self.decider = decider
        self.store = store
        self.type = decider.type
        self.cache = cache
        self._log = logger
        #: Version -> its decider, for every registered class of this type.
        self.versions: dict[str, Decider] = {decider.workflow.version: decider}
        self._snapshots = decider.snapshots

    def add_version(self, decider: Decider, *, default: bool) -> None:
        """Register another version's decider of this type; `default` makes it the one new instances get."""
        self.versions[decider.workflow.version] = decider
        if default:
            self.decider = decider
        # Asked for before the version is known (the load reads both at once): any version's rule counts.
        self._snapshots = any(d.snapshots for d in self.versions.values())

    def decider_for(self, version: str | None, workflow_id: str) -> Decider:
        """The decider of the version an instance records: the one rule for decisions, reads and the tools.

        Args:
            version: The `Workflow.version` the instance row records (None: no row yet, a new instance).
            workflow_id: The instance, named in the error.

        Returns:
            That version's decider; the default version's for None.

        Raises:
            VersionNotLoaded: The version is not registered in this process.
        """
        if version is None:
            return self.decider
        decider = self.versions.get(version)
        if decider is None:
            loaded = tuple(self.versions)
            raise VersionNotLoaded(
                f"it runs version {version!r}, which this process has not registered (registered: "
                f"{', '.join(map(repr, loaded))}); register that class or move it with migrate_version",
                workflow_type=self.type,
                workflow_id=workflow_id,
                version=version,
                loaded=loaded,
            )
        return decider

    def execute(
        self,
        input: object,
        workflow_id: str,
        input_key: str | None,
        now: datetime,
        settle: Settle | None = None,
        *,
        probe: Probe | None = None,
    ) -> Outcome[Any, Any]:
        """Run `input` on one instance; all its writes commit together or not at all.

        Args:
            input: an instance of one of the workflow's input classes.
            workflow_id: the instance.
            input_key: the input's idempotency key, or None.
            now: the decision time (the service's clock, timezone-aware).
            settle: a fenced outbox/timer change that joins the same transaction (the effect runtime's seam).
            probe: the observer's record of this decision: it learns the events replayed and whether the
                instance closed, and gives the trace context stored on the effects and timers written.

        Returns:
            What the input did (accepted, rejected, already completed, duplicate).

        Raises:
            LeaseLost: `settle`'s claim was lost; nothing was written and no user code ran.
            DecideFailed, CodecError, StoreError: see `Decider.decide`, `Decider.fold` and `Store.locked`.
        """
        cached = self.cache.get(workflow_id) if self.cache is not None else None
        # 1. Lock the instance (and settle the claim, if any): nothing is read or written before the lock.
        with self.store.locked(self.type, workflow_id, input_key, settle=settle) as tx:
            # 2. Load what is newer than the cached state (from its own sequence, to prove it still matches);
            #    the instance's recorded version picks the code that decides.
            decider, rebuilt, key_status = self._load(tx, workflow_id, cached, probe)
            if type(input) not in decider.codec.inputs:
                raise CodecError(
                    f"{type(input).__qualname__} is not an input of version {decider.workflow.version!r}, "
                    "which this instance runs",
                    workflow_type=self.type,
                    workflow_id=workflow_id,
                )
            # 3. Decide: the one pure step, shared with WorkflowSpec.
            step = decider.decide(
                rebuilt, input, now, workflow_id=workflow_id, input_key=input_key, key_status=key_status
            )
            writes = _observed(step.writes, probe)
            # 4. Write the decision in one statement.
            written = tx.write(writes) if writes is not None else Written()
        # 5. Committed: remember the state, report the outcome.
        if self.cache is not None:
            self.cache.put(workflow_id, _to_cache(step.rebuilt, rebuilt.snapshot_gen, writes, written))
        return step.result(written)

    def read(self, workflow_id: str) -> Rebuilt:
        """The instance's state as the next decision would see it: the same lock, load and rebuild, no write.

        Reads share the rebuild path of decisions (cache, snapshot, tail), so `WorkflowService.state()` and
        `decide` can never be handed two different states for one history (design/versioning.md).

        Args:
            workflow_id: the instance.

        Returns:
            The rebuilt state and its sequence (0: no events).

        Raises:
            DecideFailed, CodecError, StoreError: see `Decider.fold` and `Store.locked`.
        """
        cached = self.cache.get(workflow_id) if self.cache is not None else None
        with self.store.locked(self.type, workflow_id) as tx:
            _, rebuilt, _ = self._load(tx, workflow_id, cached)
        if self.cache is not None and rebuilt.seq > 0:
            self.cache.put(workflow_id, rebuilt)
        return rebuilt

    def read_unlocked(self, store: Store, workflow_id: str) -> Rebuilt:
        """The instance's state folded from one lock-free view of `store` (a replica), without the lock.

        The decisions' origin and fold (state cache, latest usable snapshot, the events after it), as of the
        data `store` holds; see design/versioning.md, "On a replica". The cache holds states this process
        saw committed on the primary: it is used when the replica already has the cached event (which proves
        it, as under the lock), and otherwise set aside for this read only: a replica behind the cache is
        not a stale cache, so nothing is discarded, and nothing read here is cached.

        Args:
            store: The store to read (`WorkflowService.read_store`).
            workflow_id: the instance.

        Returns:
            The rebuilt state and its sequence (0: no events).

        Raises:
            DecideFailed, CodecError, StoreError: see `Decider.fold` and `Store.reading`.
        """
        cached = self.cache.get(workflow_id) if self.cache is not None else None
        with store.reading(self.type, workflow_id) as reader:
            known = 0 if cached is None else cached.seq - 1  # from the cached event itself, to prove it
            loaded = reader.load(after_seq=known, with_snapshot=self._snapshots)
            decider = self.decider_for(loaded.version, workflow_id)  # the version the replica's row records
            if cached is not None and cached.version != decider.workflow.version:
                cached = None  # folded by another version's code: fold without it (nothing is discarded)
                loaded = reader.load(with_snapshot=self._snapshots)
            origin = decider.origin(workflow_id, loaded, cached)
            if origin.cache_stale:  # the replica has not replayed the cached event (or it is gone): fold without it
                origin = decider.origin(workflow_id, reader.load(with_snapshot=self._snapshots))
            events = origin.events if origin.events is not None else reader.events_after(origin.start.seq)
            rebuilt = decider.rebuild(workflow_id, origin, events)
            return attrs.evolve(rebuilt, run=loaded.run, version=decider.workflow.version)

    def start_child(
        self,
        input: object,
        workflow_id: str,
        input_key: str,
        now: datetime,
        parent: ParentLink,
        inherited_deadline: datetime | None,
        settle: Settle | None,
        *,
        probe: Probe | None = None,
    ) -> Outcome[Any, Any]:
        """Start a child: its first input, with the parent link written with the instance it creates.

        Under the child's lock only (the parent is not locked: a message never locks two instances). A
        child that exists already with this parent is a `duplicate` (starting it again is idempotent);
        one that exists with another parent, or none, is refused.

        Args:
            input: the child's first input.
            workflow_id: the child's id.
            input_key: the key derived from the start row (`delivery_key`).
            now: the decision time.
            parent: the parent the child records, with its parent-close policy.
            inherited_deadline: the parent's run deadline when the child inherits it, else None.
            settle: the fenced "done" of the start row, committed with the child's first decision.
            probe: the observer's record of this decision (see `execute`), or None.

        Returns:
            What the input did (accepted, rejected, duplicate; already_completed for a closed child of this
            parent). A rejected first input writes nothing at all, not even `settle`: no child exists, and
            the caller tells the parent.

        Raises:
            ChildConflict: the id belongs to another instance; nothing was written.
            LeaseLost, DecideFailed, CodecError, StoreError: as `execute`.
        """
        try:
            return self._start_child(input, workflow_id, input_key, now, parent, inherited_deadline, settle, probe)
        except _StartRejected as rejected:
            return rejected.outcome

    def _start_child(
        self,
        input: object,
        workflow_id: str,
        input_key: str,
        now: datetime,
        parent: ParentLink,
        inherited_deadline: datetime | None,
        settle: Settle | None,
        probe: Probe | None,
    ) -> Outcome[Any, Any]:
        cached = self.cache.get(workflow_id) if self.cache is not None else None
        with self.store.locked(self.type, workflow_id, input_key, settle=settle) as tx:
            decider, rebuilt, key_status = self._load(tx, workflow_id, cached, probe)
            step: Step | None = None
            if key_status is None and rebuilt.seq > 0:
                info = tx.instance()
                owner = None if info is None else (info.parent_type, info.parent_id)
                if owner != (parent.workflow_type, parent.workflow_id):
                    held = "no parent" if owner is None or owner[1] is None else f"parent {owner[0]}/{owner[1]}"
                    raise ChildConflict(
                        f"cannot start it as a child of {parent.workflow_type}/{parent.workflow_id}: the id "
                        f"already belongs to an instance with {held}",
                        workflow_type=self.type,
                        workflow_id=workflow_id,
                    )
                # The same parent started this id before (another decision): idempotent, nothing to do.
                step = Unchanged(
                    Outcome(
                        OutcomeStatus.DUPLICATE,
                        self.type,
                        workflow_id,
                        rebuilt.state,
                        first_status=OutcomeStatus.ACCEPTED,
                    ),
                    rebuilt,
                )
            if step is None:
                step = decider.decide(
                    rebuilt,
                    input,
                    now,
                    workflow_id=workflow_id,
                    input_key=input_key,
                    key_status=key_status,
                    parent=parent,
                    inherited_deadline=inherited_deadline,
                )
            if rebuilt.seq == 0 and isinstance(step, Unchanged) and step.outcome.status is OutcomeStatus.REJECTED:
                # A first input the child rejects creates no child. Roll back (the start row's "done" and
                # the key are not written), so the worker tells the parent in the parent's own transaction,
                # with that "done" (design/composition.md, "A child that never starts").
                raise _StartRejected(step.outcome)
            writes = _observed(step.writes, probe)
            written = tx.write(writes) if writes is not None else Written()
        if self.cache is not None:
            self.cache.put(workflow_id, _to_cache(step.rebuilt, rebuilt.snapshot_gen, writes, written))
        return step.result(written)

    def _load(
        self,
        tx: Reader,
        workflow_id: str,
        cached: Rebuilt | None,
        probe: Probe | None = None,
        *,
        version: str | None = None,
    ) -> tuple[Decider, Rebuilt, OutcomeStatus | None]:
        """Load the instance inside the locked transaction and rebuild its state (cache, snapshot, events).

        The decider is the recorded version's (`version` overrides it: `migrate_version` folds with the
        target's code). Nothing before the current run's start is loaded (the store filters it).
        """
        after, known = (cached.seq - 1, cached.snapshot_gen) if cached is not None else (0, None)
        loaded = tx.load(after_seq=after, with_snapshot=self._snapshots, known_gen=known)
        decider = self.decider_for(version or loaded.version, workflow_id)
        # Start over from the store when the cached state was folded by another version's code (the instance
        # was moved), or when the snapshot row changed since the state was checked (another process wrote one,
        # or an operator replaced or dropped it) and no newer one came back: the state may come from a
        # snapshot that is gone (design/snapshots.md, "The warm path").
        if cached is not None and (
            cached.version != decider.workflow.version
            or (cached.snapshot_gen is not None and loaded.snapshot_gen != cached.snapshot_gen and not loaded.snapshot)
        ):
            cached = None
            if self.cache is not None:
                self.cache.discard(workflow_id)
            if after > 0:
                loaded = tx.load(after_seq=0, with_snapshot=self._snapshots)
        origin = decider.origin(workflow_id, loaded, cached)
        if origin.cache_stale and self.cache is not None:
            self.cache.discard(workflow_id)
        if origin.snapshot_problem is not None and self._log is not None:
            self._log.warning(
                "snapshot_ignored",
                workflow_type=self.type,
                workflow_id=workflow_id,
                seq=loaded.snapshot.seq if loaded.snapshot else None,
                why=origin.snapshot_problem,
            )
        events = origin.events if origin.events is not None else tx.events_after(origin.start.seq)
        if probe is not None:
            probe.replayed = len(events)
        rebuilt = decider.rebuild(workflow_id, origin, events)
        rebuilt = attrs.evolve(
            rebuilt, run=loaded.run, version=decider.workflow.version, snapshot_gen=loaded.snapshot_gen
        )
        return decider, rebuilt, loaded.key_status

    def delay(
        self,
        input: object,
        workflow_id: str,
        now: datetime,
        *,
        timer_key: str,
        input_key: str | None,
        schedule_key: str | None,
        not_before: datetime | None = None,
        delay: timedelta | None = None,
        base: datetime | None = None,
        probe: Probe | None = None,
    ) -> Outcome[Any, Any]:
        """Record a delayed start under the instance lock: one reserved timer (see `Decider.delay`).

        Args:
            input: one of the workflow's inputs.
            workflow_id: the instance.
            now: the service clock's time of the call.
            timer_key: the reserved timer key.
            input_key: the key the input runs with when the timer fires.
            schedule_key: the key the scheduling call is recorded under (a repeat is a `duplicate`).
            not_before: the absolute due time, or None to use `delay`.
            delay: how long after `base` it falls due.
            base: the time `delay` counts from; None: the store's clock inside this transaction (PostgreSQL:
                the database server's `now()`), the one clock that judges due-ness.
            probe: the observer's record of this decision, or None.

        Returns:
            scheduled, duplicate or already_completed.
        """
        cached = self.cache.get(workflow_id) if self.cache is not None else None
        with self.store.locked(self.type, workflow_id, schedule_key) as tx:
            decider, rebuilt, key_status = self._load(tx, workflow_id, cached, probe)
            if not_before is not None:
                at = not_before
            else:
                assert delay is not None
                at = (base if base is not None else tx.now()) + delay
            step = decider.delay(
                rebuilt,
                input,
                at,
                now,
                workflow_id=workflow_id,
                timer_key=timer_key,
                input_key=input_key,
                schedule_key=schedule_key,
                key_status=key_status,
            )
            writes = _observed(step.writes, probe)
            written = tx.write(writes) if writes is not None else Written()
        if self.cache is not None:
            self.cache.put(workflow_id, _to_cache(step.rebuilt, rebuilt.snapshot_gen, writes, written))
        return step.result(written)

    def _run(
        self,
        workflow_id: str,
        input_key: str | None,
        settle: Settle | None,
        decide: Any,
        probe: Probe | None = None,
    ) -> Any:
        """Lock, load, `decide(decider, rebuilt, key_status, tx) -> Step | None`, write, commit: the shape of `execute`.

        A `decide` that returns None writes nothing and makes this return None.
        """
        cached = self.cache.get(workflow_id) if self.cache is not None else None
        with self.store.locked(self.type, workflow_id, input_key, settle=settle) as tx:
            decider, rebuilt, key_status = self._load(tx, workflow_id, cached, probe)
            step = decide(decider, rebuilt, key_status, tx)
            if step is None:
                return None
            writes = _observed(step.writes, probe)
            written = tx.write(writes) if writes is not None else Written()
        if self.cache is not None:
            self.cache.put(workflow_id, _to_cache(step.rebuilt, rebuilt.snapshot_gen, writes, written))
        return step.result(written)

    def terminate(
        self,
        workflow_id: str,
        reason: str | None,
        now: datetime,
        request_id: str | None,
        *,
        probe: Probe | None = None,
    ) -> Outcome[Any, Any]:
        """Close the instance `terminated` in one statement under its lock; no workflow code runs.

        Args:
            workflow_id: the instance.
            reason: why, kept in the lifecycle event and the outcome.
            now: the time of the close.
            request_id: the operator's request id (a repeat is a `duplicate`), or None.
            probe: the observer's record of this decision (see `execute`), or None.

        Returns:
            accepted (its one event is the lifecycle event), already_completed, or duplicate.

        Raises:
            NotFound: the instance does not exist.
        """
        key = input_key_for("terminate", request_id)
        outcome: Outcome[Any, Any] = self._run(
            workflow_id,
            key,
            None,
            lambda decider, rebuilt, key_status, tx: decider.terminate(
                rebuilt,
                reason,
                now,
                workflow_id=workflow_id,
                request_id=request_id,
                input_key=key,
                key_status=key_status,
                # An instance with no events but a row only waits for a delayed start: terminate it too.
                exists=rebuilt.seq > 0 or tx.instance() is not None,
            ),
            probe,
        )
        return outcome

    def cancel_unstarted(
        self, workflow_id: str, reason: str, now: datetime, request_id: str | None, *, probe: Probe | None = None
    ) -> Outcome[Any, Any] | None:
        """Close an instance that has not started yet `cancelled`, under its lock (`Decider.cancel_unstarted`).

        Args:
            workflow_id: the instance; the caller has seen its row with no events.
            reason: why, kept in the lifecycle event and the outcome.
            now: the time of the close.
            request_id: the caller's request id (a repeat is a `duplicate`), or None.
            probe: the observer's record of this decision (see `execute`), or None.

        Returns:
            The outcome, or None when the instance has started meanwhile (nothing was written).
        """
        key = input_key_for("cancel", request_id)
        outcome: Outcome[Any, Any] | None = self._run(
            workflow_id,
            key,
            None,
            lambda decider, rebuilt, key_status, _tx: decider.cancel_unstarted(
                rebuilt,
                reason,
                now,
                workflow_id=workflow_id,
                request_id=request_id,
                input_key=key,
                key_status=key_status,
            ),
            probe,
        )
        return outcome

    def time_out(
        self,
        workflow_id: str,
        deadline: datetime,
        now: datetime,
        settle: Settle | None,
        *,
        probe: Probe | None = None,
    ) -> Outcome[Any, Any]:
        """Deliver the run timeout (the reserved deadline timer fired), with its fenced deletion in `settle`."""
        outcome: Outcome[Any, Any] = self._run(
            workflow_id,
            None,
            settle,
            lambda decider, rebuilt, _, _tx: decider.time_out(rebuilt, deadline, now, workflow_id=workflow_id),
            probe,
        )
        return outcome

    def migrate_version(
        self, workflow_id: str, to: str, input: object | None, now: datetime, *, probe: Probe | None = None
    ) -> Outcome[Any, Any]:
        """Move one instance to version `to` under its lock: fold its history with that version's code, record
        ``ironflow.version_migrated/1``, and decide `input` (if any) with the new code, in one transaction.

        Args:
            workflow_id: the instance.
            to: the target version (registered in this process).
            input: an input of the target version to decide right after the move, or None.
            now: the decision time.
            probe: the observer's record of this decision, or None.

        Returns:
            accepted (its events start with the marker), rejected (nothing written), or duplicate when the
            instance already runs `to` (a retried move is harmless; `input` is not decided then).

        Raises:
            VersionNotLoaded: `to` is not registered (the instance's own version need not be).
            NotFound, InstanceClosed: the instance does not exist, or has closed.
            DecideFailed, CodecError, StoreError: the target's code cannot fold the history or decide.
        """
        target = self.decider_for(to, workflow_id)
        with self.store.locked(self.type, workflow_id) as tx:
            info = self._open_instance(tx, workflow_id, f"move it to version {to!r}")
            if self.cache is not None:
                self.cache.discard(workflow_id)
            _, rebuilt, _ = self._load(tx, workflow_id, None, probe, version=to)
            if info.version == to:
                return Outcome(
                    OutcomeStatus.DUPLICATE, self.type, workflow_id, rebuilt.state, first_status=OutcomeStatus.ACCEPTED
                )
            step = target.migrate(rebuilt, info.version, input, now, workflow_id=workflow_id)
            writes = _observed(step.writes, probe)
            written = tx.write(writes) if writes is not None else Written()
        if self.cache is not None:
            self.cache.put(workflow_id, _to_cache(step.rebuilt, rebuilt.snapshot_gen, writes, written))
        return step.result(written)

    def hold(self, workflow_id: str, paused: bool, now: datetime, request_id: str | None) -> OutcomeStatus:
        """Pause or resume dispatch for the instance, under its lock.

        Args:
            workflow_id: the instance.
            paused: True to pause, False to resume.
            now: the time recorded as `paused_at`.
            request_id: the operator's request id (a repeat is a `duplicate`), or None.

        Returns:
            accepted, or duplicate for a request id seen before.

        Raises:
            NotFound: the instance does not exist.
            InstanceClosed: the instance has closed (pausing or resuming it means nothing).
        """
        key = input_key_for("pause" if paused else "resume", request_id)
        with self.store.locked(self.type, workflow_id, key) as tx:
            if tx.key_status() is not None:
                return OutcomeStatus.DUPLICATE
            info = self._open_instance(tx, workflow_id, "pause" if paused else "resume")
            # Idempotent: pausing a paused instance keeps its first paused_at.
            paused_at = (info.paused_at or now) if paused else None
            tx.hold(paused_at, now)
        return OutcomeStatus.ACCEPTED

    def _open_instance(self, tx: Transaction, workflow_id: str, action: str) -> InstanceInfo:
        """The instance row under the lock, for an operator's `action` that needs it to exist and be open.

        Raises:
            NotFound: the instance does not exist.
            InstanceClosed: it has closed (the message says `action` cannot be done and its status).
        """
        info = tx.instance()
        if info is None:
            raise NotFound(
                f"workflow {self.type!r} has no instance {workflow_id!r}",
                workflow_type=self.type,
                workflow_id=workflow_id,
            )
        if info.status.closed:
            raise InstanceClosed(
                f"cannot {action}: it is {info.status.value}", workflow_type=self.type, workflow_id=workflow_id
            )
        return info


class _StartRejected(Exception):
    """Rolls back a child start whose first input was rejected; carries the outcome out of the transaction."""

    def __init__(self, outcome: Outcome[Any, Any]) -> None:
        super().__init__("the child's first input was rejected")
        self.outcome = outcome


def _to_cache(new: Rebuilt, loaded_gen: int | None, writes: Writes | None, written: Written) -> Rebuilt:
    """The state to cache after a committed decision, with the snapshot generation it was checked against: the
    one the load saw when the decision wrote no snapshot, else the one the write reported (None, when the write
    did not report one, makes the next decision read the snapshot: design/snapshots.md, "The warm path")."""
    gen = written.snapshot_gen
    if writes is None or (writes.snapshot is None and gen is None):
        gen = loaded_gen  # nothing touched the snapshot
    return new if new.snapshot_gen == gen else attrs.evolve(new, snapshot_gen=gen)


def _observed(writes: Writes | None, probe: Probe | None) -> Writes | None:
    """Tell the probe whether this decision closes the instance, and stamp its trace context on the writes
    (`write_decision` stores it with every effect and timer, so their attempts continue this trace)."""
    if probe is None or writes is None:
        return writes
    if writes.status.closed:
        probe.closed = writes.status.value
    trace_context = probe.trace_context
    return writes if trace_context is None else attrs.evolve(writes, trace_context=trace_context)
