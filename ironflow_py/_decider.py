"""The Decider: one input, one locked transaction: rebuild state, decide, write the decision.

The store owns the transaction and the lock; this module owns everything between loading and writing,
so both stores get identical semantics. User code runs here and its exceptions become DecideFailed.
Rebuilding starts from the newest of: this process's cached state, the stored snapshot, the initial state.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import attrs

from ironflow_py._cache import CachedState, StateCache
from ironflow_py.codec import WorkflowCodec
from ironflow_py.decision import Decision
from ironflow_py.errors import CodecError, DecideFailed, DecodeError, StoreError
from ironflow_py.records import Outcome, OutcomeStatus, RecordedEvent
from ironflow_py.store.base import Loaded, LoadedEvent, NewSnapshot, NewTimer, Plan, Settle, Store, Writes
from ironflow_py.workflow import AnyWorkflow


@attrs.frozen
class Rebuilt:
    """A rebuilt state: it includes events up to `seq`; the newest valid snapshot is at `snapshot_seq`."""

    state: Any
    seq: int
    snapshot_seq: int
    #: True when a stored snapshot was unusable (other version, undecodable) and must be replaced.
    replace_snapshot: bool = False


class Decider:
    """Executes inputs for one registered workflow against a store."""

    def __init__(
        self,
        workflow: AnyWorkflow,
        codec: WorkflowCodec,
        store: Store,
        *,
        cache: StateCache | None = None,
        logger: Any = None,
    ) -> None:
        self.workflow = workflow
        self.codec = codec
        self.store = store
        self.type = workflow.type
        self.cache = cache
        self.snapshots = workflow.uses_snapshots()
        self._log = logger

    def _fail(self, what: str, workflow_id: str, exc: Exception) -> DecideFailed:
        return DecideFailed(
            f"{what} raised {type(exc).__name__}: {exc}", workflow_type=self.type, workflow_id=workflow_id
        )

    # -- rebuilding -------------------------------------------------------------------------------------

    def fold(self, workflow_id: str, state: Any, seq: int, events: Sequence[LoadedEvent]) -> tuple[Any, int]:
        """Decode and apply `events`, which must continue the history right after `seq`."""
        decode, evolve = self.codec.decode_event, self.workflow.evolve
        for event_seq, type_name, data in events:
            if event_seq != seq + 1:
                raise StoreError(
                    f"history has a gap: sequence {event_seq} follows {seq}",
                    workflow_type=self.type,
                    workflow_id=workflow_id,
                )
            seq = event_seq
            event = decode(type_name, data, workflow_id, seq)
            try:
                state = evolve(state, event)
            except Exception as exc:
                raise self._fail(f"evolve at sequence {seq}", workflow_id, exc) from exc
        return state, seq

    def initial(self, workflow_id: str) -> Any:
        try:
            return self.workflow.initial_state()
        except Exception as exc:
            raise self._fail("initial_state", workflow_id, exc) from exc

    def rebuild(self, workflow_id: str, loaded: Loaded, cached: CachedState | None = None) -> Rebuilt:
        """The state after every loaded event, starting from the cache, a snapshot or the beginning."""
        events = loaded.events
        if cached is not None:
            # Loaded from the cached sequence itself: its presence proves the cache still matches the store.
            if not events or events[0].seq != cached.seq:
                return self._rebuild_from_scratch(workflow_id, loaded)
            start = Rebuilt(cached.state, cached.seq, cached.snapshot_seq)
            events = events[1:]
        else:
            start = Rebuilt(self.initial(workflow_id), 0, 0)
        snap = loaded.snapshot
        if snap is not None and snap.seq > start.seq:
            problem = None
            if snap.state_version != self.workflow.state_version:
                problem = f"version {snap.state_version}, code has {self.workflow.state_version}"
            else:
                try:
                    start = Rebuilt(self.codec.decode_state(snap.data, workflow_id, snap.seq), snap.seq, snap.seq)
                except DecodeError as exc:
                    problem = str(exc)
            if problem is not None:
                if self._log is not None:
                    self._log.warning(
                        "snapshot_ignored", workflow_type=self.type, workflow_id=workflow_id, seq=snap.seq, why=problem
                    )
                assert loaded.reload is not None
                events = loaded.reload(start.seq)
                start = attrs.evolve(start, replace_snapshot=True)
        state, seq = self.fold(workflow_id, start.state, start.seq, events)
        return attrs.evolve(start, state=state, seq=seq)

    def _rebuild_from_scratch(self, workflow_id: str, loaded: Loaded) -> Rebuilt:
        """The cache no longer matches the store: drop it, replay everything, and re-snapshot if enabled."""
        if self.cache is not None:
            self.cache.discard(workflow_id)
        assert loaded.reload is not None
        state, seq = self.fold(workflow_id, self.initial(workflow_id), 0, loaded.reload(0))
        return Rebuilt(state, seq, 0, replace_snapshot=self.snapshots)

    # -- executing --------------------------------------------------------------------------------------

    def execute(
        self,
        input: Any,
        workflow_id: str,
        input_key: str | None,
        now: datetime,
        settle: Settle | None = None,
    ) -> Outcome[Any, Any]:
        """Run `input` on one instance; `settle` (a fenced outbox/timer change) joins the same transaction."""
        cached = self.cache.get(workflow_id) if self.cache is not None else None

        def step(loaded: Loaded) -> Plan:
            return self._plan(input, workflow_id, input_key, now, loaded, cached)

        after = cached.seq - 1 if cached is not None else 0
        plan, written = self.store.run_locked(
            self.type,
            workflow_id,
            input_key,
            step,
            after_seq=after,
            with_snapshot=self.snapshots,
            settle=settle,
        )
        result = plan.result
        if self.cache is not None:
            self.cache.put(workflow_id, CachedState(result.seq, result.state, result.snapshot_seq))
        if not isinstance(result, _Accepted):
            return result.outcome  # type: ignore[no-any-return]
        base = result.seq - len(result.events)
        recorded = tuple(
            RecordedEvent(self.type, workflow_id, base + i, position, type_name, event, now)
            for i, (position, type_name, event) in enumerate(
                zip(written.positions, result.type_names, result.events, strict=True), start=1
            )
        )
        return Outcome(
            OutcomeStatus.ACCEPTED,
            self.type,
            workflow_id,
            result.state,
            recorded,
            effect_ids=tuple(written.effect_ids),
        )

    def _plan(
        self,
        input: Any,
        workflow_id: str,
        input_key: str | None,
        now: datetime,
        loaded: Loaded,
        cached: CachedState | None,
    ) -> Plan:
        wf = self.workflow
        rebuilt = self.rebuild(workflow_id, loaded, cached)
        state = rebuilt.state

        def unchanged(outcome: Outcome[Any, Any], writes: Writes | None = None) -> Plan:
            return Plan(writes, _Unchanged(outcome, state, rebuilt.seq, rebuilt.snapshot_seq))

        if loaded.key_status is not None:
            return unchanged(
                Outcome(OutcomeStatus.DUPLICATE, self.type, workflow_id, state, first_status=loaded.key_status)
            )
        try:
            terminal = wf.is_terminal(state)
        except Exception as exc:
            raise self._fail("is_terminal", workflow_id, exc) from exc
        if terminal:
            return unchanged(Outcome(OutcomeStatus.ALREADY_COMPLETED, self.type, workflow_id, state))
        try:
            decision = wf.decide(now, state, input)
        except Exception as exc:
            raise self._fail("decide", workflow_id, exc) from exc
        if not isinstance(decision, Decision):
            raise DecideFailed(
                f"decide returned {type(decision).__name__}, not a Decision",
                workflow_type=self.type,
                workflow_id=workflow_id,
            )
        if decision.rejected:
            writes = None
            if input_key is not None:
                writes = Writes(now, rebuilt.seq, input_key=input_key, key_status=OutcomeStatus.REJECTED)
            rejected: Outcome[Any, Any] = Outcome(
                OutcomeStatus.REJECTED, self.type, workflow_id, state, reason=decision.rejection
            )
            return unchanged(rejected, writes)
        return self._accept(decision, rebuilt, workflow_id, input_key, now)

    def _accept(
        self, decision: Decision[Any, Any], rebuilt: Rebuilt, workflow_id: str, input_key: str | None, now: datetime
    ) -> Plan:
        wf, codec = self.workflow, self.codec
        events = [codec.encode_event(e, workflow_id) for e in decision.events]
        effects = [codec.encode_effect(f, workflow_id) for f in decision.effects]
        timers = []
        for timer in decision.timers:
            if timer.input.__class__ not in codec.inputs:
                raise CodecError(
                    f"timer {timer.key!r} carries {type(timer.input).__qualname__}, which is not one of this "
                    "workflow's inputs",
                    workflow_type=self.type,
                    workflow_id=workflow_id,
                )
            input_type, payload = codec.encode_input(timer.input, workflow_id)
            timers.append(NewTimer(timer.key, timer.at, input_type, payload))
        scheduled = {t.key for t in timers}
        try:
            new_state = wf.fold(rebuilt.state, decision.events)
            completed = wf.is_terminal(new_state)
        except Exception as exc:
            raise self._fail("evolve of the new events", workflow_id, exc) from exc
        last_seq = rebuilt.seq + len(events)
        snapshot = None
        snapshot_seq = rebuilt.snapshot_seq
        if self.snapshots and last_seq > 0:
            try:
                due = rebuilt.replace_snapshot or (
                    bool(events) and wf.should_snapshot(new_state, last_seq, last_seq - rebuilt.snapshot_seq)
                )
            except Exception as exc:
                raise self._fail("should_snapshot", workflow_id, exc) from exc
            if due:
                snapshot = NewSnapshot(wf.state_version, codec.encode_state(new_state, workflow_id))
                snapshot_seq = last_seq
        writes = Writes(
            now,
            last_seq,
            events=events,
            effects=effects,
            timers=timers,
            cancel_timers=[k for k in dict.fromkeys(decision.cancel_timers) if k not in scheduled],
            completed=completed,
            input_key=input_key,
            key_status=OutcomeStatus.ACCEPTED if input_key is not None else None,
            snapshot=snapshot,
        )
        accepted = _Accepted(new_state, last_seq, snapshot_seq, decision.events, tuple(t for t, _ in events))
        return Plan(writes, accepted)


@attrs.frozen
class _Unchanged:
    """A decision that appended nothing: its outcome, and the state to cache."""

    outcome: Outcome[Any, Any]
    state: Any
    seq: int
    snapshot_seq: int


@attrs.frozen
class _Accepted:
    """An accepted decision waiting for the store to assign positions and outbox ids."""

    state: Any
    seq: int
    snapshot_seq: int
    events: tuple[Any, ...]
    type_names: tuple[str, ...]
