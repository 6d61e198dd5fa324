"""The decide step, pure: from a rebuilt state and one input to the writes of one decision.

`Decider` binds a workflow to its codec (Chassaing's decider: `initial_state`, `evolve`, `decide`, plus the
stored form). Everything between "the store loaded the instance" and "the store writes the decision" is
here: where folding starts (cache, snapshot or the beginning), the fold with its contiguity check, the
duplicate-key and terminal checks, `decide`, the encoding of every value, and the rule for timers. The
engine's `CommandHandler` and the test harness (`WorkflowSpec`) both call `Decider.decide`, so they cannot
read a decision differently. No I/O: time comes in as `now`, stored rows come in as plain data.

The timer rule (design/decider.md): within one decision the last `Timer` for a key wins, and a key that is
both scheduled and cancelled is scheduled (a reschedule replaces the old timer anyway); `cancelled_timers`
lists only keys left with no timer, each once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import attrs

from ironflow_py.codec import WorkflowCodec, dumps, loads
from ironflow_py.composition import MESSAGE_ROW, START_CHILD_ROW, ParentLink
from ironflow_py.decision import ChildStart, Decision, Message, Timer
from ironflow_py.errors import (
    CodecError,
    DecideFailed,
    DecodeError,
    EncodeError,
    InstanceClosed,
    NotFound,
    StoreError,
)
from ironflow_py.lifecycle import (
    DELAYED_START_INPUT,
    LIFECYCLE_CLASSES,
    RUN_TIMEOUT_INPUT,
    RUN_TIMEOUT_TIMER,
    WORKFLOW_OUTCOMES,
    ClosingEvent,
    Completed,
    InstanceTerminated,
    RunContinued,
    RunOutcome,
    RunTimedOut,
    StartCancelled,
    VersionMigrated,
)
from ironflow_py.records import InstanceStatus, Outcome, OutcomeStatus, RecordedEvent
from ironflow_py.store.base import Loaded, LoadedEvent, NewSnapshot, NewTimer, Writes, Written
from ironflow_py.values import key_problem
from ironflow_py.workflow import AnyWorkflow


@attrs.frozen
class Rebuilt:
    """A state that includes every event up to `seq`; the newest valid snapshot known is at `snapshot_seq`.

    Also what the state cache keeps per instance (with `replace_snapshot` False).
    """

    state: Any
    seq: int
    snapshot_seq: int
    #: True when a stored snapshot was unusable (other version, undecodable) and must be replaced.
    replace_snapshot: bool = False
    #: How the engine closed the instance (a lifecycle event in its history: terminate, run timeout), if it did.
    closed: RunOutcome | None = None
    #: The run the instance is in (set by the command handler from the instance row; 1 in the harness).
    run: int = 1
    #: The `Workflow.version` whose class folded this state (set by the command handler for its cache).
    version: str | None = None
    #: The instance's snapshot generation this state was checked against (`Loaded.snapshot_gen`; set by the
    #: command handler for its cache; None: unknown, so the next load reads the snapshot).
    snapshot_gen: int | None = None


@attrs.frozen
class Origin:
    """Where folding starts, chosen from the cache, the loaded snapshot and the initial state.

    `events` are the loaded events that continue right after `start.seq`; None means the loaded events do
    not start there, and the caller must read the events after `start.seq` (in the same transaction).
    """

    start: Rebuilt
    events: Sequence[LoadedEvent] | None
    #: The cached state no longer matches the store: drop it.
    cache_stale: bool = False
    #: Why the loaded snapshot was ignored (None: it was usable, or there was none).
    snapshot_problem: str | None = None


@attrs.frozen
class Unchanged:
    """A decision that appended nothing: duplicate key, terminal instance, or rejection.

    `writes` is None, or (for a keyed rejection) just the input key to record.
    """

    outcome: Outcome[Any, Any]
    rebuilt: Rebuilt
    writes: Writes | None = None
    #: What `decide` returned (None when it was not called: duplicate key, terminal state).
    decision: Decision[Any, Any] | None = None

    @property
    def state(self) -> Any:
        """The instance's state, unchanged by this input."""
        return self.rebuilt.state

    def result(self, written: Written) -> Outcome[Any, Any]:
        """The caller's outcome; `written` is ignored (nothing that names a row was written)."""
        return self.outcome


@attrs.frozen
class Accepted:
    """An accepted decision, encoded and ready to write in one statement.

    `events`, `effects`, `timers` and `cancelled_timers` are what the decision means after the timer rule
    (the module docstring); `writes` is their stored form.
    """

    workflow_type: str
    workflow_id: str
    now: datetime
    rebuilt: Rebuilt
    events: tuple[Any, ...]
    effects: tuple[Any, ...]
    timers: tuple[Timer[Any], ...]
    cancelled_timers: tuple[str, ...]
    completed: bool
    writes: Writes | None
    decision: Decision[Any, Any] | None
    #: How this decision closed the instance (None: it stays open).
    outcome: RunOutcome | None = None
    #: Messages to other instances, queued as reserved outbox rows after the effects.
    messages: tuple[Message, ...] = ()
    #: Children to start, queued as reserved outbox rows after the messages.
    children: tuple[ChildStart, ...] = ()
    #: What the caller is told: `accepted`, or `scheduled` for a delayed start (its timer is the only write).
    status: OutcomeStatus = OutcomeStatus.ACCEPTED

    @property
    def state(self) -> Any:
        """The state after the new events."""
        return self.rebuilt.state

    def result(self, written: Written) -> Outcome[Any, Any]:
        """The caller's outcome, once the store assigned global positions and outbox ids (`written`)."""
        base = self.rebuilt.seq - len(self.events)
        type_names = [t for t, _ in self.writes.events] if self.writes is not None else []
        recorded = tuple(
            RecordedEvent(self.workflow_type, self.workflow_id, base + i, position, type_name, event, self.now)
            for i, (position, type_name, event) in enumerate(
                zip(written.positions, type_names, self.events, strict=True), start=1
            )
        )
        return Outcome(
            self.status,
            self.workflow_type,
            self.workflow_id,
            self.state,
            recorded,
            effect_ids=tuple(written.effect_ids[: len(self.effects)]),
        )


Step = Unchanged | Accepted


class Peers:
    """The workflows a decision may send messages to or start as children: pure lookups by type and input class.

    The service fills one as workflows register and shares it with every `Decider`, so a message is
    encoded with its target's codec when the decision is made (a value the target could not store fails
    the deciding transaction, not the delivery).
    """

    def __init__(self) -> None:
        self._by_type: dict[str, Decider] = {}
        self._by_input: dict[type, Decider] = {}

    def add(self, decider: Decider, *, default: bool = True) -> None:
        """Make `decider`'s workflow a target, by its type and by each of its input classes.

        For a type in several versions, messages are encoded with the default version's codec (`default`
        True); another version's decider only adds the input classes no version added before.
        """
        if default:
            self._by_type[decider.type] = decider
        for cls in decider.codec.inputs.classes():
            if default or cls not in self._by_input:
                self._by_input[cls] = decider

    def for_type(self, workflow_type: str) -> Decider | None:
        """The decider of a workflow type (None: not registered)."""
        return self._by_type.get(workflow_type)

    def for_input(self, cls: type) -> Decider | None:
        """The decider of the workflow that declares input class `cls` (None: none does)."""
        return self._by_input.get(cls)


@attrs.frozen
class Decider:
    """One workflow's pure decide step with its codec; `snapshots` says whether decisions save snapshots.

    `peers` are the workflows its decisions may message or start as children (None: only itself).
    """

    workflow: AnyWorkflow
    codec: WorkflowCodec
    snapshots: bool = False
    peers: Peers | None = attrs.field(default=None, eq=False, repr=False)

    @property
    def type(self) -> str:
        """The workflow type this decider serves."""
        return self.workflow.type

    def _fail(self, what: str, workflow_id: str | None, exc: Exception) -> DecideFailed:
        return DecideFailed(
            f"{what} raised {type(exc).__name__}: {exc}", workflow_type=self.type, workflow_id=workflow_id
        )

    # -- rebuilding -------------------------------------------------------------------------------------

    def initial(self, workflow_id: str) -> Any:
        """The workflow's initial state.

        Raises:
            DecideFailed: `initial_state` raised.
        """
        try:
            return self.workflow.initial_state()
        except Exception as exc:
            raise self._fail("initial_state", workflow_id, exc) from exc

    def fold(self, workflow_id: str, state: Any, seq: int, events: Sequence[LoadedEvent]) -> tuple[Any, int]:
        """Decode and apply `events`, which must continue the history right after `seq`.

        Returns:
            The state after the last event and that event's sequence (`seq` itself when `events` is empty).

        Raises:
            StoreError: the sequences are not contiguous (a gap or a repeat in the stored history).
            UnknownTypeName, DecodeError: a stored event the code cannot read.
            DecideFailed: `evolve` raised.
        """
        state, seq, _ = self.fold_closed(workflow_id, state, seq, events)
        return state, seq

    def fold_closed(
        self, workflow_id: str, state: Any, seq: int, events: Sequence[LoadedEvent], closed: RunOutcome | None = None
    ) -> tuple[Any, int, RunOutcome | None]:
        """`fold`, also reporting how a lifecycle event in `events` closed the instance (else `closed`).

        Lifecycle events (`ironflow.*`) are the engine's: they close the instance and are never passed to
        `evolve`.
        """
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
            if isinstance(event, LIFECYCLE_CLASSES):
                closed = event.outcome()
                continue
            if isinstance(event, RunContinued | VersionMigrated):
                continue  # the engine's markers: the state carries over unchanged
            try:
                state = evolve(state, event)
            except Exception as exc:
                raise self._fail(f"evolve at sequence {seq}", workflow_id, exc) from exc
        return state, seq, closed

    def outcome_of(self, state: Any, workflow_id: str) -> RunOutcome | None:
        """`Workflow.outcome(state)`, checked: None or one of `Completed`, `Failed`, `Cancelled`, `TimedOut`.

        Raises:
            DecideFailed: `outcome` (or `is_terminal`) raised or returned something else.
        """
        try:
            outcome = self.workflow.outcome(state)
        except Exception as exc:
            raise self._fail("outcome", workflow_id, exc) from exc
        if outcome is not None and not isinstance(outcome, WORKFLOW_OUTCOMES):
            raise DecideFailed(
                f"outcome returned {outcome!r}; it must be Completed, Failed, Cancelled, TimedOut or None",
                workflow_type=self.type,
                workflow_id=workflow_id,
            )
        return outcome

    def origin(self, workflow_id: str, loaded: Loaded, cached: Rebuilt | None = None) -> Origin:
        """Choose where folding starts: the newest of the cached state, the loaded snapshot, the initial state.

        Args:
            workflow_id: the instance.
            loaded: what the locked transaction read; when `cached` is given, the events after `cached.seq - 1`.
            cached: this process's state of the instance, or None.

        Returns:
            The start and the loaded events that continue it (None: read the events after `start.seq`).
        """
        events: Sequence[LoadedEvent] = loaded.events
        tomb = loaded.tombstone
        if tomb is not None and not events:
            # Pruned to a tombstone (design/retention.md): no history, but closed for good at its last sequence.
            closed = self.codec.decode_outcome(tomb.outcome, workflow_id) if tomb.outcome is not None else None
            start = Rebuilt(self.initial(workflow_id), tomb.seq, tomb.seq, closed=closed or Completed(None))
            return Origin(start, (), cache_stale=cached is not None)
        if cached is not None and cached.seq == 0:
            # Cached before any event (a decision that appended none): no stored event can prove it, and it
            # is the initial state anyway. Treating it as stale replayed from scratch and forced a snapshot.
            cached = None
        if cached is not None and loaded.snapshot is not None:
            # A snapshot at or after the cached sequence came back, and the events after it: the cached
            # event is not among them to prove the cache, and the snapshot is as new. Start from it.
            cached = None
        if cached is not None:
            # Loaded from the cached sequence itself: its presence proves the cache still matches the store.
            if not events or events[0].seq != cached.seq:
                return Origin(
                    Rebuilt(self.initial(workflow_id), 0, 0, replace_snapshot=self.snapshots), None, cache_stale=True
                )
            start = Rebuilt(cached.state, cached.seq, cached.snapshot_seq, closed=cached.closed)
            events = events[1:]
        else:
            start = Rebuilt(self.initial(workflow_id), 0, 0)
        snap = loaded.snapshot
        if snap is None or snap.seq <= start.seq:
            return Origin(start, events)
        if snap.state_version != self.workflow.state_version:
            problem = f"version {snap.state_version}, code has {self.workflow.state_version}"
        else:
            try:
                state = self.codec.decode_state(snap.data, workflow_id, snap.seq)
                return Origin(Rebuilt(state, snap.seq, snap.seq), events)
            except DecodeError as exc:
                problem = str(exc)
        # The loaded events start after the snapshot: replay from the start instead, and replace it.
        return Origin(attrs.evolve(start, replace_snapshot=True), None, snapshot_problem=problem)

    def rebuild(self, workflow_id: str, origin: Origin, events: Sequence[LoadedEvent]) -> Rebuilt:
        """Fold `events` (those after `origin.start.seq`) onto the origin's state; see `fold` for errors."""
        start = origin.start
        state, seq, closed = self.fold_closed(workflow_id, start.state, start.seq, events, start.closed)
        return attrs.evolve(start, state=state, seq=seq, closed=closed)

    # -- deciding ---------------------------------------------------------------------------------------

    def decide(
        self,
        rebuilt: Rebuilt,
        input: object,
        now: datetime,
        *,
        workflow_id: str,
        input_key: str | None = None,
        key_status: OutcomeStatus | None = None,
        parent: ParentLink | None = None,
        inherited_deadline: datetime | None = None,
    ) -> Step:
        """The one decide step: key check, terminal check, `decide`, encoding, the new state and snapshot.

        Args:
            rebuilt: the instance's state (from `rebuild`).
            input: the input to decide on (an instance of one of the workflow's input classes).
            now: the decision time (the service's clock; timezone-aware), passed to `decide` and stored.
            workflow_id: the instance.
            input_key: the input's idempotency key, or None.
            key_status: the status recorded for `input_key` by an earlier execution (None: not seen).
            parent: the parent a new child records (a start-child delivery), or None.
            inherited_deadline: a parent's run deadline that caps a new child's own (`deadline="inherit"`).

        Returns:
            `Unchanged` (duplicate, already completed, rejected) or `Accepted`, each with the writes to make.

        Raises:
            DecideFailed: `is_terminal`, `decide`, `evolve` or `should_snapshot` raised, or `decide` did not
                return a Decision.
            EncodeError, CodecError: an event, effect, timer input or snapshot cannot be stored.
        """
        wf, state = self.workflow, rebuilt.state

        def unchanged(status: OutcomeStatus, **extra: Any) -> Unchanged:
            return Unchanged(Outcome(status, self.type, workflow_id, state, **extra), rebuilt)

        if key_status is not None:
            return unchanged(OutcomeStatus.DUPLICATE, first_status=key_status)
        if rebuilt.closed is not None or self.outcome_of(state, workflow_id) is not None:
            return unchanged(OutcomeStatus.ALREADY_COMPLETED)
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
            outcome: Outcome[Any, Any] = Outcome(
                OutcomeStatus.REJECTED, self.type, workflow_id, state, reason=decision.rejection
            )
            return Unchanged(outcome, rebuilt, writes, decision)
        return self._accept(decision, rebuilt, workflow_id, input_key, now, input, parent, inherited_deadline)

    # -- messages and children ----------------------------------------------------------------------------

    def _target(self, input: object, workflow_type: str | None, workflow_id: str, what: str) -> Decider:
        peers = self.peers
        if workflow_type is None:
            target = self if type(input) in self.codec.inputs else None
            if target is None and peers is not None:
                target = peers.for_input(type(input))
        elif workflow_type == self.type:
            target = self
        else:
            target = peers.for_type(workflow_type) if peers is not None else None
        if target is None or type(input) not in target.codec.inputs:
            to = "any registered workflow" if workflow_type is None else f"workflow {workflow_type!r}"
            raise CodecError(
                f"{what} carries {type(input).__qualname__}, which is not an input of {to}",
                workflow_type=self.type,
                workflow_id=workflow_id,
            )
        return target

    def _target_id(self, target: Decider, input: object, given: str | None, workflow_id: str, what: str) -> str:
        if given is None:
            try:
                given = target.workflow.workflow_id(input)
            except Exception as exc:
                raise self._fail(f"{what}: {target.type}.workflow_id", workflow_id, exc) from exc
        problem = key_problem(given)
        if problem is not None:
            raise EncodeError(
                f"{what}: the target id cannot be stored: {problem}", workflow_type=self.type, workflow_id=workflow_id
            )
        assert isinstance(given, str)
        return given

    def _relation_row(self, row_type: str, item: Message | ChildStart, workflow_id: str) -> tuple[str, str]:
        """The reserved outbox row (type name, JSON text) that carries a message or a child start."""
        if isinstance(item, Message):
            what = f"message {type(item.input).__qualname__}"
            target = self._target(item.input, item.workflow_type, workflow_id, what)
            target_id = self._target_id(target, item.input, item.workflow_id, workflow_id, what)
            extra = ""
        else:
            what = f"child start {type(item.input).__qualname__}"
            target = self._target(item.input, None, workflow_id, what)
            target_id = self._target_id(target, item.input, item.id, workflow_id, what)
            extra = f',"on_parent_close":{dumps(item.on_parent_close)},"deadline":{dumps(item.deadline)}'
        input_type, payload = target.codec.encode_input(item.input, target_id)
        head = f'{{"to_type":{dumps(target.type)},"to_id":{dumps(target_id)},"input_type":{dumps(input_type)}'
        return row_type, f'{head},"input":{payload}{extra}}}'

    def _accept(
        self,
        decision: Decision[Any, Any],
        rebuilt: Rebuilt,
        workflow_id: str,
        input_key: str | None,
        now: datetime,
        input: object,
        parent: ParentLink | None = None,
        inherited_deadline: datetime | None = None,
    ) -> Accepted:
        wf, codec = self.workflow, self.codec
        # The timer rule: the last Timer per key wins; a scheduled key is not also cancelled.
        timers = tuple({t.key: t for t in decision.timers}.values())
        scheduled = {t.key for t in timers}
        cancelled = tuple(k for k in dict.fromkeys(decision.cancel_timers) if k not in scheduled)
        # Encode everything before anything is written: a value the database would refuse raises here.
        for key in [*scheduled, *cancelled]:
            problem = key_problem(key)
            if problem is not None:
                raise EncodeError(
                    f"a timer key cannot be stored: {problem}", workflow_type=self.type, workflow_id=workflow_id
                )
        events = [codec.encode_event(e, workflow_id) for e in decision.events]
        effects = [codec.encode_effect(f, workflow_id) for f in decision.effects]
        effects += [self._relation_row(MESSAGE_ROW, m, workflow_id) for m in decision.messages]
        effects += [self._relation_row(START_CHILD_ROW, c, workflow_id) for c in decision.children]
        new_timers = []
        for timer in timers:
            if timer.input.__class__ not in codec.inputs:
                raise CodecError(
                    f"timer {timer.key!r} carries {type(timer.input).__qualname__}, which is not one of this "
                    "workflow's inputs",
                    workflow_type=self.type,
                    workflow_id=workflow_id,
                )
            input_type, payload = codec.encode_input(timer.input, workflow_id)
            new_timers.append(NewTimer(timer.key, timer.at, input_type, payload))
        try:
            new_state = wf.fold(rebuilt.state, decision.events)
        except Exception as exc:
            raise self._fail("evolve of the new events", workflow_id, exc) from exc
        outcome = self.outcome_of(new_state, workflow_id)
        if outcome is not None and decision.continue_run:
            raise DecideFailed(
                "decide returned a decision that both closes the instance and continues it as new",
                workflow_type=self.type,
                workflow_id=workflow_id,
            )
        status = InstanceStatus.RUNNING if outcome is None else outcome.status
        # Encoded with the events: the outcome commits with the closing events or not at all.
        encoded_outcome = None if outcome is None else codec.encode_outcome(outcome, workflow_id)
        writes_cancelled: tuple[str, ...] = cancelled
        if outcome is not None:
            writes_cancelled = (*cancelled, RUN_TIMEOUT_TIMER)  # the run deadline goes when the instance closes
        elif rebuilt.seq == 0 and events:
            new_timers.extend(self._run_deadline(input, now, workflow_id, inherited_deadline))
        recorded = tuple(decision.events)
        if decision.continue_run:
            # The run's marker is its last event; the snapshot at its sequence carries the state into the next run.
            marker = RunContinued(rebuilt.run)
            events.append(codec.encode_lifecycle_event(marker, workflow_id))
            recorded = (*recorded, marker)
        last_seq = rebuilt.seq + len(events)
        snapshot = self._snapshot(new_state, rebuilt, last_seq, bool(events), decision.continue_run, workflow_id)
        snapshot_seq = last_seq if snapshot is not None else rebuilt.snapshot_seq
        writes: Writes | None = Writes(
            now,
            last_seq,
            events=events,
            effects=effects,
            timers=new_timers,
            cancel_timers=writes_cancelled,
            status=status,
            outcome=encoded_outcome,
            input_key=input_key,
            key_status=OutcomeStatus.ACCEPTED if input_key is not None else None,
            snapshot=snapshot,
            parent=parent if rebuilt.seq == 0 else None,
            version=self.workflow.version,
            continue_run=decision.continue_run,
        )
        if writes is not None and writes.is_empty():
            writes = None
        return Accepted(
            self.type,
            workflow_id,
            now,
            Rebuilt(
                new_state,
                last_seq,
                snapshot_seq,
                run=rebuilt.run + decision.continue_run,
                version=self.workflow.version,
            ),
            recorded,
            tuple(decision.effects),
            timers,
            cancelled,
            outcome is not None,
            writes,
            decision,
            outcome,
            messages=tuple(decision.messages),
            children=tuple(decision.children),
        )

    def _snapshot(
        self, state: Any, rebuilt: Rebuilt, last_seq: int, appended: bool, continued: bool, workflow_id: str
    ) -> NewSnapshot | None:
        """The snapshot a decision writes at `last_seq`: always when it continues the run as new (it carries
        the state into the next run), else by the workflow's rule (design/snapshots.md)."""
        wf = self.workflow
        if not continued:
            if not self.snapshots or last_seq == 0:
                return None
            try:
                due = rebuilt.replace_snapshot or (
                    appended and wf.should_snapshot(state, last_seq, last_seq - rebuilt.snapshot_seq)
                )
            except Exception as exc:
                raise self._fail("should_snapshot", workflow_id, exc) from exc
            if not due:
                return None
        return NewSnapshot(wf.state_version, self.codec.encode_state(state, workflow_id))

    def _run_deadline(
        self, input: object, now: datetime, workflow_id: str, inherited: datetime | None = None
    ) -> list[NewTimer]:
        """The reserved run-timeout timer of a new instance: its own timeout, capped by an inherited deadline."""
        try:
            timeout = self.workflow.run_timeout_for(input)
        except Exception as exc:
            raise self._fail("run_timeout_for", workflow_id, exc) from exc
        deadline = None if timeout is None else now + timeout
        if inherited is not None and (deadline is None or inherited < deadline):
            deadline = inherited
        if deadline is None:
            return []
        return [NewTimer(RUN_TIMEOUT_TIMER, deadline, RUN_TIMEOUT_INPUT, dumps({"deadline": deadline.isoformat()}))]

    # -- delayed start ------------------------------------------------------------------------------------

    def delay(
        self,
        rebuilt: Rebuilt,
        input: object,
        at: datetime,
        now: datetime,
        *,
        workflow_id: str,
        timer_key: str,
        input_key: str | None = None,
        schedule_key: str | None = None,
        key_status: OutcomeStatus | None = None,
    ) -> Step:
        """Schedule `input` to run on the instance at `at` instead of now: one reserved timer, nothing else.

        `decide` is not called: the input is encoded (so a value the database would refuse fails now, not
        when the timer fires) and written as the payload of the timer `timer_key`, whose firing decodes it
        and executes it with `input_key` (design/schedules.md, "Delayed start").

        Args:
            rebuilt: the instance's state (an instance with no events yet is fine: it is then "scheduled").
            input: one of the workflow's inputs.
            at: when it may run, timezone-aware (judged by the store's clock, like every timer).
            now: the time of this call (stored as the instance's `updated_at`).
            workflow_id: the instance.
            timer_key: the reserved timer key (`lifecycle.delayed_start_timer`).
            input_key: the key the input runs with when the timer fires (None: the workflow's own, if any).
            schedule_key: the key this scheduling call is recorded under, so a repeat is a `duplicate`.
            key_status: the status recorded for `schedule_key` (None: not seen).

        Returns:
            `Unchanged` (duplicate, already completed) or an `Accepted` with status `scheduled`.

        Raises:
            EncodeError: the input cannot be stored.
        """
        state = rebuilt.state
        if key_status is not None:  # this key was scheduled before: one timer per input key
            return Unchanged(
                Outcome(OutcomeStatus.DUPLICATE, self.type, workflow_id, state, first_status=key_status), rebuilt
            )
        if rebuilt.closed is not None or self.outcome_of(state, workflow_id) is not None:
            return Unchanged(Outcome(OutcomeStatus.ALREADY_COMPLETED, self.type, workflow_id, state), rebuilt)
        input_type, payload = self.codec.encode_input(input, workflow_id)
        data = dumps({"input_type": input_type, "input_key": input_key, "data": loads(payload)})
        writes = Writes(
            now,
            rebuilt.seq,
            timers=[NewTimer(timer_key, at, DELAYED_START_INPUT, data)],
            input_key=schedule_key,
            key_status=OutcomeStatus.ACCEPTED if schedule_key is not None else None,
            version=self.workflow.version,
        )
        timer = Timer(timer_key, at, input)
        return Accepted(
            self.type,
            workflow_id,
            now,
            rebuilt,
            (),
            (),
            (timer,),
            (),
            False,
            writes,
            None,
            status=OutcomeStatus.SCHEDULED,
        )

    # -- closing by the engine ----------------------------------------------------------------------------

    def terminate(
        self,
        rebuilt: Rebuilt,
        reason: str | None,
        now: datetime,
        *,
        workflow_id: str,
        request_id: str | None = None,
        input_key: str | None = None,
        key_status: OutcomeStatus | None = None,
        exists: bool = False,
    ) -> Step:
        """Close the instance `terminated` without running any workflow code.

        Args:
            rebuilt: the instance's state.
            reason: why (shown in the outcome and the lifecycle event).
            now: the time of the close.
            workflow_id: the instance.
            request_id: the operator's request id, kept in the event.
            input_key: the key derived from `request_id` (`input_key_for`), or None.
            key_status: the status recorded for that key (None: not seen).
            exists: the instance row exists (read under the lock): one with no events only waits for a
                delayed start, and is terminated like any other (its timers go with it).

        Returns:
            `Unchanged` (duplicate request, already closed) or `Accepted` whose writes append one lifecycle
            event, delete every timer, cancel the pending effects and close the instance.

        Raises:
            NotFound: the instance has no events and no row.
        """
        state = rebuilt.state
        if key_status is not None:
            return Unchanged(
                Outcome(OutcomeStatus.DUPLICATE, self.type, workflow_id, state, first_status=key_status), rebuilt
            )
        if rebuilt.seq == 0 and not exists:
            raise NotFound(
                f"workflow {self.type!r} has no instance {workflow_id!r}",
                workflow_type=self.type,
                workflow_id=workflow_id,
            )
        if rebuilt.closed is not None or self.outcome_of(state, workflow_id) is not None:
            return Unchanged(Outcome(OutcomeStatus.ALREADY_COMPLETED, self.type, workflow_id, state), rebuilt)
        return self._close(rebuilt, InstanceTerminated(reason, request_id), now, workflow_id, input_key, terminate=True)

    def cancel_unstarted(
        self,
        rebuilt: Rebuilt,
        reason: str,
        now: datetime,
        *,
        workflow_id: str,
        request_id: str | None = None,
        input_key: str | None = None,
        key_status: OutcomeStatus | None = None,
    ) -> Step | None:
        """Close an instance that has not started (it only waits for a delayed start) `cancelled`.

        No workflow code runs, `cancel_input` included: there is no state to compensate. Like `terminate`,
        the one lifecycle event (`StartCancelled`) deletes every timer, so the delayed starts never run.

        Args:
            rebuilt: the instance's state; the caller has checked the instance row exists.
            reason: why, kept in the event and in `Cancelled(reason)`.
            now: the time of the close.
            workflow_id: the instance.
            request_id: the caller's request id, kept in the event.
            input_key: the key derived from `request_id` (`input_key_for("cancel", ...)`), or None.
            key_status: the status recorded for that key (None: not seen).

        Returns:
            `Unchanged` (duplicate request, already closed); None for an open instance with events (it
            started meanwhile: cancel it through `cancel_input`); otherwise an `Accepted` that closes it.
        """
        state = rebuilt.state
        if key_status is not None:
            return Unchanged(
                Outcome(OutcomeStatus.DUPLICATE, self.type, workflow_id, state, first_status=key_status), rebuilt
            )
        if rebuilt.closed is not None or self.outcome_of(state, workflow_id) is not None:
            return Unchanged(Outcome(OutcomeStatus.ALREADY_COMPLETED, self.type, workflow_id, state), rebuilt)
        if rebuilt.seq > 0:
            return None
        return self._close(rebuilt, StartCancelled(reason, request_id), now, workflow_id, input_key, terminate=True)

    def time_out(self, rebuilt: Rebuilt, deadline: datetime, now: datetime, *, workflow_id: str) -> Step:
        """The run timeout fell due: deliver `timeout_input(deadline)`, or close the instance `timed_out`.

        Args:
            rebuilt: the instance's state.
            deadline: when the run timeout fell due.
            now: the decision time.
            workflow_id: the instance.

        Returns:
            `Unchanged` for a closed instance; otherwise the step of the timeout input, or an `Accepted`
            that appends the `ironflow.timed_out/1` lifecycle event and closes the instance.
        """
        state = rebuilt.state
        if rebuilt.closed is not None or self.outcome_of(state, workflow_id) is not None:
            return Unchanged(Outcome(OutcomeStatus.ALREADY_COMPLETED, self.type, workflow_id, state), rebuilt)
        try:
            input = self.workflow.timeout_input(deadline)
        except Exception as exc:
            raise self._fail("timeout_input", workflow_id, exc) from exc
        if input is not None:
            if type(input) not in self.codec.inputs:
                raise CodecError(
                    f"timeout_input returned {type(input).__qualname__}, which is not one of this workflow's inputs",
                    workflow_type=self.type,
                    workflow_id=workflow_id,
                )
            return self.decide(rebuilt, input, now, workflow_id=workflow_id)
        return self._close(rebuilt, RunTimedOut(deadline), now, workflow_id, None, terminate=False)

    def _close(
        self,
        rebuilt: Rebuilt,
        event: ClosingEvent,
        now: datetime,
        workflow_id: str,
        input_key: str | None,
        *,
        terminate: bool,
    ) -> Accepted:
        outcome = event.outcome()
        last_seq = rebuilt.seq + 1
        writes = Writes(
            now,
            last_seq,
            events=[self.codec.encode_lifecycle_event(event, workflow_id)],
            cancel_timers=() if terminate else (RUN_TIMEOUT_TIMER,),
            status=outcome.status,
            outcome=self.codec.encode_outcome(outcome, workflow_id),
            terminate=terminate,
            input_key=input_key,
            key_status=OutcomeStatus.ACCEPTED if input_key is not None else None,
            version=self.workflow.version,
        )
        closed = attrs.evolve(rebuilt, seq=last_seq, closed=outcome)
        return Accepted(self.type, workflow_id, now, closed, (event,), (), (), (), True, writes, None, outcome)

    # -- moving an instance to another version -------------------------------------------------------------

    def migrate(
        self, rebuilt: Rebuilt, from_version: str, input: object | None, now: datetime, *, workflow_id: str
    ) -> Step:
        """Move an instance to this decider's version: the marker event, then `input` decided by this version.

        `rebuilt` must be the state this version's `evolve` folds from the instance's history (the caller
        rebuilds it with this decider), so the first decision of the new version sees the state its own
        code computes.

        Args:
            rebuilt: the instance's state, folded by this version.
            from_version: the version the instance records now.
            input: an input of this version to decide right after the move, or None for the move alone.
            now: the decision time.
            workflow_id: the instance.

        Returns:
            `Accepted` writing ``ironflow.version_migrated/1`` (and the input's decision), with the new
            version; `Unchanged` (rejected, nothing written) if `decide` rejects `input`.

        Raises:
            NotFound: the instance has no events.
            InstanceClosed: it has closed.
            DecideFailed, EncodeError, CodecError: as `decide`.
        """
        if rebuilt.seq == 0:
            raise NotFound(
                f"workflow {self.type!r} has no instance {workflow_id!r}",
                workflow_type=self.type,
                workflow_id=workflow_id,
            )
        if rebuilt.closed is not None or self.outcome_of(rebuilt.state, workflow_id) is not None:
            raise InstanceClosed(
                f"cannot move it to version {self.workflow.version!r}: it has closed",
                workflow_type=self.type,
                workflow_id=workflow_id,
            )
        marker = VersionMigrated(from_version, self.workflow.version)
        encoded = self.codec.encode_lifecycle_event(marker, workflow_id)
        moved = attrs.evolve(rebuilt, seq=rebuilt.seq + 1)
        step: Accepted | None = None
        if input is not None:
            if type(input) not in self.codec.inputs:
                raise CodecError(
                    f"{type(input).__qualname__} is not an input of version {self.workflow.version!r}",
                    workflow_type=self.type,
                    workflow_id=workflow_id,
                )
            decided = self.decide(moved, input, now, workflow_id=workflow_id)
            if isinstance(decided, Unchanged):
                return Unchanged(decided.outcome, rebuilt, None, decided.decision)
            step = decided
        if step is None or step.writes is None:
            writes = Writes(now, moved.seq, events=[encoded], version=self.workflow.version)
            return Accepted(self.type, workflow_id, now, moved, (marker,), (), (), (), False, writes, None)
        writes = attrs.evolve(step.writes, events=[encoded, *step.writes.events])
        return attrs.evolve(step, writes=writes, events=(marker, *step.events))
