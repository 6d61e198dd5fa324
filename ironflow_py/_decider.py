"""The Decider: one input, one locked transaction: rebuild state, decide, write the decision.

The store owns the transaction and the lock; this module owns everything between loading and writing,
so both stores get identical semantics. User code runs here and its exceptions become DecideFailed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs

from ironflow_py.codec import WorkflowCodec
from ironflow_py.decision import Decision
from ironflow_py.errors import CodecError, DecideFailed
from ironflow_py.records import Outcome, OutcomeStatus, RecordedEvent
from ironflow_py.store.base import Loaded, NewTimer, Plan, Store, Writes
from ironflow_py.workflow import AnyWorkflow


class Decider:
    """Executes inputs for one registered workflow against a store."""

    def __init__(self, workflow: AnyWorkflow, codec: WorkflowCodec, store: Store) -> None:
        self.workflow = workflow
        self.codec = codec
        self.store = store
        self.type = workflow.type

    def _fail(self, what: str, workflow_id: str, exc: Exception) -> DecideFailed:
        return DecideFailed(
            f"{what} raised {type(exc).__name__}: {exc}", workflow_type=self.type, workflow_id=workflow_id
        )

    def rebuild(self, workflow_id: str, loaded: Loaded) -> tuple[Any, int]:
        """Fold the loaded events into a state; returns the state and the last sequence it covers."""
        wf, decode = self.workflow, self.codec.decode_event
        try:
            state = wf.initial_state()
        except Exception as exc:
            raise self._fail("initial_state", workflow_id, exc) from exc
        evolve = wf.evolve
        seq = 0
        for seq, type_name, data in loaded.events:
            event = decode(type_name, data, workflow_id, seq)
            try:
                state = evolve(state, event)
            except Exception as exc:
                raise self._fail(f"evolve at sequence {seq}", workflow_id, exc) from exc
        return state, seq

    def execute(self, input: Any, workflow_id: str, input_key: str | None, now: datetime) -> Outcome[Any, Any]:
        def step(loaded: Loaded) -> Plan:
            return self._plan(input, workflow_id, input_key, now, loaded)

        plan, written = self.store.run_locked(self.type, workflow_id, input_key, step)
        result = plan.result
        if not isinstance(result, _Accepted):
            return result  # type: ignore[no-any-return]
        base = result.last_seq - len(result.events)
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

    def _plan(self, input: Any, workflow_id: str, input_key: str | None, now: datetime, loaded: Loaded) -> Plan:
        wf = self.workflow
        state, last_seq = self.rebuild(workflow_id, loaded)
        if loaded.key_status is not None:
            return Plan(
                None,
                Outcome(OutcomeStatus.DUPLICATE, self.type, workflow_id, state, first_status=loaded.key_status),
            )
        try:
            terminal = wf.is_terminal(state)
        except Exception as exc:
            raise self._fail("is_terminal", workflow_id, exc) from exc
        if terminal:
            return Plan(None, Outcome(OutcomeStatus.ALREADY_COMPLETED, self.type, workflow_id, state))
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
                writes = Writes(now, last_seq, input_key=input_key, key_status=OutcomeStatus.REJECTED)
            outcome: Outcome[Any, Any] = Outcome(
                OutcomeStatus.REJECTED, self.type, workflow_id, state, reason=decision.rejection
            )
            return Plan(writes, outcome)
        return self._accept(decision, state, last_seq, workflow_id, input_key, now)

    def _accept(
        self,
        decision: Decision[Any, Any],
        state: Any,
        last_seq: int,
        workflow_id: str,
        input_key: str | None,
        now: datetime,
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
            new_state = wf.fold(state, decision.events)
            completed = wf.is_terminal(new_state)
        except Exception as exc:
            raise self._fail("evolve of the new events", workflow_id, exc) from exc
        writes = Writes(
            now,
            last_seq + len(events),
            events=events,
            effects=effects,
            timers=timers,
            cancel_timers=[k for k in dict.fromkeys(decision.cancel_timers) if k not in scheduled],
            completed=completed,
            input_key=input_key,
            key_status=OutcomeStatus.ACCEPTED if input_key is not None else None,
        )
        return Plan(writes, _Accepted(new_state, decision.events, tuple(t for t, _ in events), writes.last_seq))


@attrs.frozen
class _Accepted:
    """An accepted decision waiting for the store to assign positions and outbox ids."""

    state: Any
    events: tuple[Any, ...]
    type_names: tuple[str, ...]
    last_seq: int
