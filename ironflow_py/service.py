"""`WorkflowService`: the one entry point an application calls to run inputs and read instances."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Literal, overload

import attrs
import cattrs

from ironflow_py._cache import StateCache
from ironflow_py._command_handler import CommandHandler
from ironflow_py._log import get_log
from ironflow_py.clock import Clock, SystemClock, store_time
from ironflow_py.codec import WorkflowCodec, codec_for, make_converter
from ironflow_py.composition import ParentLink
from ironflow_py.decider import Decider, Peers
from ironflow_py.errors import (
    ConfigurationError,
    DecideFailed,
    InvalidDelay,
    InvalidWorkflowId,
    NotCancellable,
    NotFound,
    StoreError,
    UnknownInputType,
    ValueRefused,
    VersionsMissing,
    WaitTimedOut,
)
from ironflow_py.lifecycle import (
    DELAYED_START_INPUT,
    RESERVED_PREFIX,
    RUN_TIMEOUT_INPUT,
    CancelRequest,
    Completed,
    ContinuedAsNew,
    RunOutcome,
    delayed_start_timer,
    input_key_for,
)
from ironflow_py.records import InstanceInfo, InstanceStatus, Outcome, OutcomeStatus, RecordedEvent
from ironflow_py.schedule import Schedule
from ironflow_py.schedule_workflow import ScheduleWorkflow
from ironflow_py.scheduling._control import ScheduleControl
from ironflow_py.store.base import Settle, Store
from ironflow_py.telemetry._observer import Observer
from ironflow_py.values import MAX_KEY_BYTES, MAX_TYPE_BYTES, key_problem
from ironflow_py.workflow import AnyWorkflow, Workflow


@attrs.frozen
class Registration:
    """A registered workflow type: its default version's class, codec and decide step, and its handler.

    The command handler runs every version of the type, each instance on the version it records.

    Attributes:
        workflow: The default version's workflow instance (new instances get it).
        codec: Its stored-name tables and JSON encoding.
        decider: Its pure decide step.
        handler: The shell that runs one input in one transaction, on the instance's own version.
    """

    workflow: AnyWorkflow
    codec: WorkflowCodec
    decider: Decider
    handler: CommandHandler

    @property
    def versions(self) -> dict[str, Decider]:
        """Every registered version of this type: version -> its decider."""
        return self.handler.versions

    def version_of(self, version: str | None) -> Decider:
        """The decider of `version`, or the default version's when it is None or not registered here.

        Args:
            version: A `Workflow.version` (an instance's recorded one), or None.

        Returns:
            Its decider (the default's as a fallback: reads then name what does not decode).
        """
        found = self.handler.versions.get(version) if version is not None else None
        return found if found is not None else self.decider

    def instance_decider(self, store: Store, workflow_id: str) -> Decider:
        """The decider of the version one instance records (one read; none for a type in one version).

        For hooks the effect worker calls outside a decision (`dead_letter_input`, `child_closed_input`),
        which must be the instance's own version's.

        Args:
            store: Where the instance lives.
            workflow_id: The instance.

        Returns:
            Its version's decider (the default's for a new instance or an unregistered version).
        """
        if len(self.handler.versions) == 1:
            return self.decider
        info = store.instance(self.decider.type, workflow_id)
        return self.version_of(info.version if info is not None else None)

    def accepts(self, cls: type) -> bool:
        """Whether some registered version of this type declares input class `cls`.

        Args:
            cls: An input class.

        Returns:
            True if one version's `inputs` lists it.
        """
        return any(cls in d.codec.inputs for d in self.handler.versions.values())

    def codec_declaring(self, kind: str, name: str) -> WorkflowCodec:
        """The codec of a version that declares stored name `name` among its `kind`, the default's first.

        What a timer or an outbox row, which do not say their instance's version, is decoded with.

        Args:
            kind: ``"inputs"`` or ``"effects"``.
            name: The stored type name.

        Returns:
            That codec; the default version's when none declares it (its error then names the name).
        """
        codec = self.codec
        if len(self.handler.versions) == 1 or getattr(codec, kind).class_of(name) is not None:
            return codec
        for decider in self.handler.versions.values():
            if getattr(decider.codec, kind).class_of(name) is not None:
                return decider.codec
        return codec


class WorkflowService:
    """The entry point an application calls: runs inputs on registered workflows and reads instances back.

    Each input is routed by its class to the one workflow that declares it and runs in one transaction:
    lock the instance, rebuild its state, `decide`, write events, effects and timers, commit
    (design/decider.md). Safe to share between threads.

    Args:
        store: Where instances live: `PostgresStore` (durable) or `MemoryStore` (tests, one process).
        workflows: Workflow classes (instantiated with no arguments) or instances to register.
        clock: The clock whose `now()` is passed to `decide` and stored as `recorded_at` (default: the wall
            clock in UTC).
        converter: The cattrs converter for payloads (default: `make_converter()`).
        logger: A structlog-style logger (default: `structlog.get_logger("ironflow_py")`).
        state_cache_size: Latest states kept per workflow type so a hot instance is not refolded (0
            disables); every cached state is validated against the store under the lock before use.
        observer: Where decisions, effect attempts, timer firings and projection batches are reported
            (`ironflow_py.telemetry.Observer` with metrics and/or tracing); default: an Observer that
            reports nowhere. The effect runtime and projection worker of this service use it too.
        schedules: `Schedule` declarations; their built-in workflow (type ``ironflow.schedule``) is
            registered and `service.schedules` controls them.
        default_version: Workflow type -> the `Workflow.version` new instances of that type get, for a type
            registered in several versions (``{"order": "2"}``); a type not named here defaults to the
            version registered last. Existing instances keep the version they recorded.
        show_values: Debug only. By default an error about a stored payload that no longer decodes names
            the field and the expected type, never the value, and chains no driver exception (payloads may
            hold personal data and secrets, and errors reach logs); True quotes the values.
        read_store: A store on a streaming replica of `store`'s server (`PostgresStore.connect(replica_url)`,
            same schema). `state`, `history`, `instance`, `list_instances`, `result` and the inspect/web
            reads then go there; decisions, claims, waits and projections stay on `store`, and `execute`
            returns the commit's `wal_position` for reads that must see it (`min_lsn=`). See
            design/scale-out.md, "Read replicas". None: every read goes to `store`.
        replica_timeout: How long a read given `min_lsn` waits for the replica to replay it, in seconds
            (monotonic clock), before raising `ReplicaBehind`.

    Raises:
        ConfigurationError: A workflow is declared inconsistently (see `register`), or `default_version`
            names a type or version that is not registered.
    """

    def __init__(
        self,
        store: Store,
        *,
        workflows: Iterable[AnyWorkflow | type[AnyWorkflow]] = (),
        clock: Clock | None = None,
        converter: cattrs.Converter | None = None,
        logger: Any = None,
        state_cache_size: int = 10_000,
        observer: Observer | None = None,
        show_values: bool = False,
        schedules: Iterable[Schedule] = (),
        read_store: Store | None = None,
        replica_timeout: float = 5.0,
        default_version: Mapping[str, str] | None = None,
    ) -> None:
        self.store = store
        self._default_version = dict(default_version or {})
        #: Where reads go: the replica's store when one was given, else `store` itself.
        self.read_store: Store = read_store if read_store is not None else store
        #: True when reads go to a replica (a store other than `store`).
        self.reads_replica = read_store is not None and read_store is not store
        self.replica_timeout = replica_timeout
        self.show_values = show_values
        #: Where decisions, effect attempts, timer firings and projection batches are reported (metrics,
        #: traces, liveness); the effect runtime and projection worker use this one too.
        self.observer = observer if observer is not None else Observer()
        self.clock: Clock = clock or SystemClock()
        self.converter = converter or make_converter()
        self._log = get_log("service", logger)
        self.state_cache_size = state_cache_size
        self._by_type: dict[str, Registration] = {}
        self._by_input: dict[type, str] = {}
        self._peers = Peers()
        for workflow in workflows:
            self.register(workflow)
        for wtype, version in self._default_version.items():
            if wtype not in self._by_type or version not in self._by_type[wtype].versions:
                raise ConfigurationError(
                    f"default_version names workflow {wtype!r} version {version!r}, which is not registered"
                )
        declared = tuple(schedules)
        if declared:
            self.register(ScheduleWorkflow(declared))
        #: The declared schedules: reconcile, list, show, pause, resume, trigger, backfill (design/schedules.md).
        self.schedules = ScheduleControl(self, declared)

    def register(self, workflow: AnyWorkflow | type[AnyWorkflow]) -> AnyWorkflow:
        """Register a workflow so inputs of its `inputs` classes are routed to it.

        Args:
            workflow: A `Workflow` subclass (instantiated with no arguments) or an instance.

        Returns:
            The registered instance.

        Raises:
            ConfigurationError: It is not a `Workflow`, its `type` is empty or its (type, version) is
                taken, it declares no inputs or events, a type table is inconsistent (a name or class
                declared twice, a class that is not attrs), it uses a reserved ``ironflow.`` name, or
                another workflow type declares one of its input classes. Registering a class whose `type`
                is taken but whose `version` is new adds that version beside the others (design/versioning.md).
        """
        instance = workflow() if isinstance(workflow, type) else workflow
        if not isinstance(instance, Workflow):
            raise ConfigurationError(f"{instance!r} is not a Workflow")
        wtype = getattr(instance, "type", None)
        if not isinstance(wtype, str) or not wtype.strip():
            raise ConfigurationError(f"{type(instance).__qualname__} needs a non-empty string `type`")
        problem = key_problem(wtype, limit=MAX_TYPE_BYTES)
        if problem is not None:
            raise ConfigurationError(f"{type(instance).__qualname__}.type cannot be stored: {problem}")
        version = getattr(instance, "version", None)
        if not isinstance(version, str) or not version or key_problem(version, limit=MAX_TYPE_BYTES) is not None:
            raise ConfigurationError(f"{type(instance).__qualname__}.version must be a non-empty string")
        existing = self._by_type.get(wtype)
        if existing is not None and version in existing.versions:
            raise ConfigurationError(f"workflow type {wtype!r} version {version!r} is registered twice")
        for attr in ("inputs", "events"):
            if not getattr(instance, attr, None):
                raise ConfigurationError(f"workflow {wtype!r} declares no {attr}")
        codec = codec_for(instance, self.converter, show_values=self.show_values)
        decider = Decider(instance, codec, snapshots=instance.uses_snapshots(), peers=self._peers)
        for table in (codec.inputs, codec.events, codec.effects):
            reserved = [n for n in table.names() if n.startswith(RESERVED_PREFIX)]
            if reserved:
                raise ConfigurationError(
                    f"workflow {wtype!r}: {table.kind} names starting with {RESERVED_PREFIX!r} are reserved "
                    f"for the engine: {reserved}"
                )
        for cls in codec.inputs.classes():
            other = self._by_input.get(cls, wtype)
            if other != wtype:
                raise ConfigurationError(f"input {cls.__qualname__} is declared by both {other!r} and {wtype!r}")
        wanted = self._default_version.get(wtype)
        default = wanted is None or wanted == version
        if existing is None:
            cache = StateCache(self.state_cache_size) if self.state_cache_size > 0 else None
            handler = CommandHandler(decider, self.store, cache=cache, logger=self._log)
            self._by_type[wtype] = Registration(instance, codec, decider, handler)
        else:
            # Another version of a registered type: one handler (and state cache) serves them all.
            existing.handler.add_version(decider, default=default)
            if default:
                self._by_type[wtype] = Registration(instance, codec, decider, existing.handler)
        for cls in codec.inputs.classes():
            self._by_input[cls] = wtype
        self._peers.add(decider, default=existing is None or default)
        return instance

    def registration(self, workflow_type: str) -> Registration:
        """The registration of a workflow type.

        Args:
            workflow_type: A workflow's `type`.

        Returns:
            Its workflow, codec, decide step and command handler.

        Raises:
            NotFound: No workflow of that type is registered.
        """
        try:
            return self._by_type[workflow_type]
        except KeyError:
            raise NotFound(f"workflow type {workflow_type!r} is not registered") from None

    def registration_for(self, input: object) -> Registration:
        """The registration of the workflow that declares the class of `input`.

        Args:
            input: An input object.

        Returns:
            Its workflow's registration.

        Raises:
            UnknownInputType: No registered workflow declares that class.
        """
        wtype = self._by_input.get(type(input))
        if wtype is None:
            raise UnknownInputType(type(input))
        return self._by_type[wtype]

    @property
    def workflow_types(self) -> Sequence[str]:
        """The registered workflow types, in registration order."""
        return tuple(self._by_type)

    def route(self, input: object) -> tuple[Registration, str]:
        """Where an input goes: its workflow's registration and the instance id `workflow_id(input)` gives.

        Args:
            input: An input object.

        Returns:
            (registration, workflow_id).

        Raises:
            UnknownInputType: No registered workflow declares the input's class.
            DecideFailed: `workflow_id(input)` raised.
            InvalidWorkflowId: It returned an empty or non-string id.
        """
        reg = self.registration_for(input)
        wf = reg.workflow
        try:
            workflow_id = wf.workflow_id(input)
        except Exception as exc:
            raise DecideFailed(
                f"workflow_id raised {type(exc).__name__}: {exc}", workflow_type=wf.type, workflow_id=None
            ) from exc
        _check_id(wf.type, workflow_id, f"workflow_id({type(input).__qualname__}) returned an invalid id")
        return reg, workflow_id

    def execute(
        self,
        input: object,
        *,
        input_key: str | None = None,
        settle: Settle | None = None,
        not_before: datetime | None = None,
        delay: timedelta | None = None,
    ) -> Outcome[Any, Any]:
        """Run one input on the instance `workflow_id(input)` names; its writes commit together or not at all.

        Under the instance's lock: rebuild the state, return `duplicate` for an input key seen before or
        `already_completed` for a terminal instance, else call `decide(now, state, input)` and write the
        decision's events, effects and timers in one transaction. Bad input raises before anything is
        written.

        With `not_before` or `delay` the input does not run now: a reserved timer on the instance holds it
        (a delayed start, status `scheduled`; an instance with no events yet shows as scheduled in
        `inspect`), and when it falls due the input runs as if executed then, with the same input key. Two
        calls with the same input key make one timer (the second is a `duplicate`); without a key each call
        makes its own. See design/schedules.md.

        Args:
            input: An input of a registered workflow (an instance of one of its `inputs` classes).
            input_key: An idempotency key for this call, used instead of `workflow.input_key(input)`. With
                a key, retrying after `CommitUnknown` (or any failure) is safe: the input is applied once
                and a repeat reports `duplicate`. At most 512 bytes of UTF-8.
            settle: For the effect runtime only: a fenced change to a claimed outbox row or timer that
                commits in the same transaction, or makes the whole call fail with `LeaseLost`.
            not_before: Run the input no earlier than this time (timezone-aware); due-ness is judged by the
                store's clock, like every timer (design/operations.md, "One clock").
            delay: Run the input no earlier than this long from now, counted on the store's clock (the
                database server's; a `ManualClock`'s time under one). Not with `not_before`.

        Returns:
            The outcome: `accepted` (with the new state and the appended events), `rejected` (with the
            reason), `already_completed` or `duplicate`; `scheduled` for a delayed start. With a
            `read_store`, its `wal_position` is at or after this call's commit (one more round trip; None,
            logged as `wal_position_unavailable`, if the primary could not be asked after the commit).

        Raises:
            InvalidDelay: `not_before` is naive, `delay` is negative, or both are given (nothing is written).
            UnknownInputType: No registered workflow declares the input's class.
            InvalidWorkflowId: The instance id or input key is empty, not a string, over 512 bytes of
                UTF-8, or holds NUL or a lone surrogate.
            DecideFailed: User code (`workflow_id`, `input_key`, `initial_state`, `evolve`, `decide`,
                `is_terminal`) raised, or `decide` returned something that is not a `Decision`.
            EncodeError: An event, effect, timer input, timer key or snapshot cannot be stored (the error
                names the field path).
            DecodeError: A stored event or snapshot no longer matches its class (`UnknownTypeName` if its
                type name is no longer declared).
            LeaseLost: `settle` was given and the worker's claim no longer holds.
            ValueRefused: The database refused a value (permanent); nothing was committed.
            StoreError: The database failed; nothing was committed; retrying later can succeed
                (`ConcurrencyConflict` if the instance lock was bypassed).
            CommitUnknown: The connection was lost while COMMIT was in flight; retry only with an input key.
        """
        reg, workflow_id = self.route(input)
        if not_before is not None or delay is not None:
            outcome = self._delay(reg, workflow_id, input, input_key, not_before, delay)
        else:
            outcome = self._execute(reg, workflow_id, input, settle, input_key)
        if self.reads_replica:
            outcome = attrs.evolve(outcome, wal_position=self._wal_position(outcome))
        return outcome

    def _wal_position(self, outcome: Outcome[Any, Any]) -> str | None:
        """The primary's WAL position after `outcome` committed, or None (logged) if it cannot be read.

        Asked after the commit returned, on any connection: the position is global and only grows. The
        input is applied by then, so failing here must not turn into an exception the caller would take for
        "nothing written".
        """
        try:
            return self.store.wal_position()
        except StoreError as exc:
            self._log.warning(
                "wal_position_unavailable",
                workflow_type=outcome.workflow_type,
                workflow_id=outcome.workflow_id,
                error=type(exc).__name__,
            )
            return None

    def _delay(
        self,
        reg: Registration,
        workflow_id: str,
        input: object,
        explicit_key: str | None,
        not_before: datetime | None,
        delay: timedelta | None,
    ) -> Outcome[Any, Any]:
        """A delayed start: check the time, derive the keys, record the reserved timer under the lock."""
        wf = reg.workflow
        if not_before is not None and delay is not None:
            raise InvalidDelay("give not_before or delay, not both", workflow_type=wf.type, workflow_id=workflow_id)
        if not_before is not None and not_before.utcoffset() is None:
            raise InvalidDelay("not_before must be timezone-aware", workflow_type=wf.type, workflow_id=workflow_id)
        if delay is not None and delay < timedelta(0):
            raise InvalidDelay(f"delay must not be negative: {delay}", workflow_type=wf.type, workflow_id=workflow_id)
        key = self._input_key(reg, workflow_id, input, explicit_key)
        # Unkeyed: a fresh timer per call (the shell makes the id; the pure step never draws one).
        token = key if key is not None else f"unkeyed-{uuid.uuid4().hex}"
        now = self.clock.now()
        with self.observer.decision(wf.type, workflow_id, type(input).__name__) as probe:
            outcome = reg.handler.delay(
                input,
                workflow_id,
                now,
                timer_key=delayed_start_timer(token),
                input_key=key,
                schedule_key=input_key_for("delay", key),
                not_before=not_before,
                delay=delay,
                base=store_time(self.clock),
                probe=probe,
            )
            probe.outcome = outcome.status.value
        return outcome

    def _input_key(self, reg: Registration, workflow_id: str, input: object, explicit_key: str | None) -> str | None:
        """The input's idempotency key: the caller's, else `workflow.input_key(input)`; checked."""
        wf = reg.workflow
        if explicit_key is not None:
            key: str | None = explicit_key
        else:
            try:
                key = wf.input_key(input)
            except Exception as exc:
                raise DecideFailed(
                    f"input_key raised {type(exc).__name__}: {exc}",
                    workflow_type=wf.type,
                    workflow_id=workflow_id,
                ) from exc
        if key is not None:
            problem = key_problem(key)
            if problem is not None:
                raise InvalidWorkflowId(
                    f"invalid input key for {type(input).__qualname__}: {problem}",
                    workflow_type=wf.type,
                    workflow_id=workflow_id,
                )
        return key

    def execute_on(
        self,
        workflow_type: str,
        workflow_id: str,
        input: object,
        *,
        input_key: str | None = None,
        settle: Settle | None = None,
    ) -> Outcome[Any, Any]:
        """Run `input` on a given instance, not the one `workflow_id(input)` names.

        This is how a timer fires on the instance that scheduled it, and how a dead-letter or cancel
        input reaches its instance.

        Args:
            workflow_type: The instance's workflow type.
            workflow_id: The instance's id.
            input: One of that workflow's inputs.
            input_key: As in `execute`.
            settle: As in `execute`.

        Returns:
            The outcome, as in `execute`.

        Raises:
            NotFound: `workflow_type` is not registered.
            UnknownInputType: No registered workflow declares the input's class.
            InvalidWorkflowId: The instance id or input key cannot be stored (as in `execute`).
            DecideFailed: User code (`workflow_id`, `input_key`, `initial_state`, `evolve`, `decide`,
                `is_terminal`) raised, or `decide` returned something that is not a `Decision`.
            EncodeError: An event, effect, timer input, timer key or snapshot cannot be stored.
            DecodeError: A stored event or snapshot no longer matches its class (`UnknownTypeName` if its
                type name is no longer declared).
            LeaseLost: `settle` was given and the worker's claim no longer holds.
            ValueRefused: The database refused a value (permanent); nothing was committed.
            StoreError: The database failed; nothing was committed (`ConcurrencyConflict` if the instance
                lock was bypassed).
            CommitUnknown: The connection was lost while COMMIT was in flight; retry only with an input key.
        """
        reg = self.registration(workflow_type)
        if not reg.accepts(type(input)):
            raise UnknownInputType(type(input))
        _check_id(workflow_type, workflow_id, "invalid instance id")
        return self._execute(reg, workflow_id, input, settle, input_key)

    def _execute(
        self,
        reg: Registration,
        workflow_id: str,
        input: object,
        settle: Settle | None,
        explicit_key: str | None = None,
    ) -> Outcome[Any, Any]:
        wf = reg.workflow
        key = self._input_key(reg, workflow_id, input, explicit_key)
        started = time.perf_counter()
        with self.observer.decision(wf.type, workflow_id, type(input).__name__) as probe:
            outcome = reg.handler.execute(input, workflow_id, key, self.clock.now(), settle, probe=probe)
            probe.outcome = outcome.status.value
            self._log.debug(
                "input_executed",
                workflow_type=wf.type,
                workflow_id=workflow_id,
                input_type=type(input).__name__,
                outcome=outcome.status.value,
                events=len(outcome.events),
                duration_ms=round((time.perf_counter() - started) * 1000, 3),
                **probe.log_fields(),
            )
        return outcome

    def send(
        self,
        workflow_type: str,
        workflow_id: str,
        input_type: str,
        data: Any,
        *,
        input_key: str | None = None,
        not_before: datetime | None = None,
        delay: timedelta | None = None,
    ) -> Outcome[Any, Any]:
        """Execute an input given by its stored type name and JSON data (for operators and non-Python callers).

        Args:
            workflow_type: a registered workflow type.
            workflow_id: the instance to deliver it to.
            input_type: the stored name the workflow declares for the input, e.g. ``"greeting.approval/1"``.
            data: the input's fields as parsed JSON (a dict).
            input_key: an idempotency key for this call (as `execute`).
            not_before: a delayed start: run it no earlier than this time (as `execute`).
            delay: a delayed start: run it no earlier than this long from now (as `execute`).

        Returns:
            What the input did, as `execute` (`scheduled` for a delayed start).

        Raises:
            NotFound: the workflow type is not registered.
            UnknownTypeName: the name is not one of the workflow's inputs.
            DecodeError: the data does not fit the input's class.
            DecideFailed: `input_key` or the workflow's code raised (nothing was written).
            InvalidWorkflowId: the input's key is not a valid key (empty, too long, control characters).
            InvalidDelay: the delayed start's time is unusable (as `execute`).
        """
        reg = self.registration(workflow_type)
        input = reg.codec.decode_input(input_type, data, workflow_id)
        if not_before is not None or delay is not None:
            return self._delay(reg, workflow_id, input, input_key, not_before, delay)
        return self._execute(reg, workflow_id, input, None, input_key)

    def start_child(
        self,
        workflow_type: str,
        workflow_id: str,
        input: object,
        parent: ParentLink,
        *,
        input_key: str,
        inherited_deadline: datetime | None = None,
        settle: Settle | None = None,
    ) -> Outcome[Any, Any]:
        """Start a child instance with its first input: the effect runtime's delivery of `Decision.start_child`.

        Args:
            workflow_type: The child's workflow type.
            workflow_id: The child's id.
            input: Its first input (one of that workflow's inputs).
            parent: The parent it records, with its parent-close policy.
            input_key: The key derived from the start row, so a repeated delivery is a `duplicate`.
            inherited_deadline: The parent's run deadline, which caps the child's own (None: none).
            settle: The fenced "done" of the start row, committed with the child's first decision.

        Returns:
            What the input did; `duplicate` when this parent started this id before.

        Raises:
            NotFound: `workflow_type` is not registered.
            UnknownInputType: The input is not one of that workflow's inputs.
            ChildConflict: The id belongs to an instance with another parent or none (nothing written).
            LeaseLost, DecideFailed, CodecError, StoreError: As `execute_on`.
        """
        reg = self.registration(workflow_type)
        if not reg.accepts(type(input)):
            raise UnknownInputType(type(input))
        _check_id(workflow_type, workflow_id, "invalid child id")
        with self.observer.decision(workflow_type, workflow_id, type(input).__name__) as probe:
            outcome = reg.handler.start_child(
                input, workflow_id, input_key, self.clock.now(), parent, inherited_deadline, settle, probe=probe
            )
            probe.outcome = outcome.status.value
        return outcome

    # -- lifecycle ----------------------------------------------------------------------------------------

    def _existing(self, workflow_type: str, workflow_id: str) -> tuple[Registration, InstanceInfo]:
        reg = self.registration(workflow_type)
        info = self.store.instance(workflow_type, workflow_id)
        if info is None:
            raise NotFound(
                f"workflow {workflow_type!r} has no instance {workflow_id!r}",
                workflow_type=workflow_type,
                workflow_id=workflow_id,
            )
        return reg, info

    def cancel(
        self, workflow_type: str, workflow_id: str, reason: str, *, request_id: str | None = None
    ) -> Outcome[Any, Any]:
        """Ask an instance to cancel, through `Workflow.cancel_input` and the decider.

        `cancel_input` turns the request into one of the workflow's inputs, which then runs like any other,
        so compensations are ordinary effects. An instance that has not started (it only waits for a
        delayed start, status `scheduled`) is closed `cancelled` at once instead: its delayed starts are
        dropped and no workflow code runs, `cancel_input` included.

        Args:
            workflow_type: a registered workflow type.
            workflow_id: the instance.
            reason: why, handed to `cancel_input`.
            request_id: makes the request idempotent: a repeat with the same id is a `duplicate`.

        Returns:
            What the cancel input did: accepted, rejected, already_completed (closed: `cancel_input` is not
            called), or duplicate.

        Raises:
            NotFound: the type is not registered or the instance does not exist.
            NotCancellable: `cancel_input` returned None for a started instance (nothing was written).
            DecideFailed: `cancel_input` raised, or returned an input the workflow does not declare.
            InvalidWorkflowId: the input's key is not a valid key (empty, too long, control characters).
        """
        reg, info = self._existing(workflow_type, workflow_id)
        if info.last_seq == 0 or info.closed_at is not None:
            # Not started (it only waits for a delayed start): close it `cancelled`, no workflow code runs.
            # Closed: answer `duplicate` or `already_completed` without calling cancel_input.
            with self.observer.decision(workflow_type, workflow_id, "cancel") as probe:
                unstarted = reg.handler.cancel_unstarted(workflow_id, reason, self.clock.now(), request_id, probe=probe)
                if unstarted is not None:
                    probe.outcome = unstarted.status.value
            if unstarted is not None:
                return unstarted
        request = CancelRequest(workflow_id, reason, request_id)
        try:
            # The instance's own version turns the request into one of its inputs.
            input = reg.version_of(info.version).workflow.cancel_input(request)
        except Exception as exc:
            raise DecideFailed(
                f"cancel_input raised {type(exc).__name__}: {exc}", workflow_type=workflow_type, workflow_id=workflow_id
            ) from exc
        if input is None:
            raise NotCancellable(
                "cancel_input returned None: this workflow does not accept cancel requests",
                workflow_type=workflow_type,
                workflow_id=workflow_id,
            )
        if not reg.accepts(type(input)):
            raise DecideFailed(
                f"cancel_input returned {type(input).__qualname__}, which is not one of this workflow's inputs",
                workflow_type=workflow_type,
                workflow_id=workflow_id,
            )
        return self._execute(reg, workflow_id, input, None, input_key_for("cancel", request_id))

    def terminate(
        self, workflow_type: str, workflow_id: str, reason: str | None = None, *, request_id: str | None = None
    ) -> Outcome[Any, Any]:
        """Stop an instance now; no workflow code runs (design/lifecycle.md).

        Under the instance lock one statement appends the `ironflow.terminated/1` lifecycle event, deletes
        the instance's timers, marks its pending effects `cancelled` and closes it `terminated`.

        Args:
            workflow_type: a registered workflow type.
            workflow_id: the instance.
            reason: why, kept in the event and in `Terminated(reason)`.
            request_id: makes the request idempotent: a repeat with the same id is a `duplicate`.

        Returns:
            accepted (one lifecycle event), already_completed (it had closed), or duplicate.

        Raises:
            NotFound: the type is not registered or the instance does not exist.
        """
        reg = self.registration(workflow_type)
        with self.observer.decision(workflow_type, workflow_id, "terminate") as probe:
            outcome = reg.handler.terminate(workflow_id, reason, self.clock.now(), request_id, probe=probe)
            probe.outcome = outcome.status.value
        return outcome

    def pause(self, workflow_type: str, workflow_id: str, *, request_id: str | None = None) -> OutcomeStatus:
        """Hold dispatch: until `resume`, workers claim none of the instance's effects or timers.

        Inputs are still accepted and recorded; a timer that falls due meanwhile fires once after resume;
        effects already running finish. Pausing a paused instance changes nothing.

        Args:
            workflow_type: a registered workflow type.
            workflow_id: the instance.
            request_id: makes the request idempotent: a repeat with the same id is a `duplicate`.

        Returns:
            `accepted`, or `duplicate`.

        Raises:
            NotFound: the type is not registered or the instance does not exist.
            InstanceClosed: the instance has closed.
        """
        return self.registration(workflow_type).handler.hold(workflow_id, True, self.clock.now(), request_id)

    def resume(self, workflow_type: str, workflow_id: str, *, request_id: str | None = None) -> OutcomeStatus:
        """Lift a `pause`: held effects and due timers become claimable at once (the workers are notified).

        Args:
            workflow_type: a registered workflow type.
            workflow_id: the instance.
            request_id: makes the request idempotent: a repeat with the same id is a `duplicate`.

        Returns:
            `accepted`, or `duplicate`.

        Raises:
            NotFound: the type is not registered or the instance does not exist.
            InstanceClosed: the instance has closed.
        """
        return self.registration(workflow_type).handler.hold(workflow_id, False, self.clock.now(), request_id)

    def fire_timer(
        self, workflow_type: str, workflow_id: str, input_type: str, data: Any, *, settle: Settle | None = None
    ) -> Outcome[Any, Any]:
        """Deliver a stored timer to its instance: the effect runtime's and the scenario runner's call.

        The reserved run-timeout timer (`ironflow.run_timeout/1`) goes to `Workflow.timeout_input`, or
        closes the instance `timed_out`; any other timer's input is decoded and executed on the instance.

        Args:
            workflow_type: the workflow type of the instance that scheduled the timer.
            workflow_id: that instance.
            input_type: the timer's stored input type name.
            data: the timer's payload as parsed JSON.
            settle: the fenced deletion of the claimed timer, committed with the decision.

        Returns:
            What the delivery did.

        Raises:
            DecideFailed: the workflow's code (`timeout_input`, `decide`, ...) raised; nothing was written.
            InvalidWorkflowId: the input's key is not a valid key (empty, too long, control characters).
            LeaseLost: `settle`'s claim was lost; nothing was written.
        """
        reg = self.registration(workflow_type)
        if input_type == DELAYED_START_INPUT:
            codec = reg.codec_declaring("inputs", data["input_type"])
            delayed = codec.decode_input(data["input_type"], data["data"], workflow_id)
            return self._execute(reg, workflow_id, delayed, settle, data.get("input_key"))
        if input_type == RUN_TIMEOUT_INPUT:
            deadline = datetime.fromisoformat(data["deadline"])
            with self.observer.decision(workflow_type, workflow_id, "run_timeout") as probe:
                outcome = reg.handler.time_out(workflow_id, deadline, self.clock.now(), settle, probe=probe)
                probe.outcome = outcome.status.value
            return outcome
        input = reg.codec_declaring("inputs", input_type).decode_input(input_type, data, workflow_id)
        return self._execute(reg, workflow_id, input, settle)

    # -- outcomes -----------------------------------------------------------------------------------------

    def result(self, workflow_type: str, workflow_id: str, *, min_lsn: str | None = None) -> RunOutcome | None:
        """How an instance ended, without waiting (read from the `read_store`; the final run's outcome).

        Args:
            workflow_type: A registered workflow type.
            workflow_id: The instance.
            min_lsn: With a `read_store`: first wait until the replica has replayed this WAL position
                (`Outcome.wal_position` of an earlier `execute`), so the read sees that call's writes.
                Ignored without a replica (the primary sees every commit).

        Returns:
            The outcome (`Completed`, `Failed`, `Cancelled`, `TimedOut`, `Terminated`), labelled with the
            instance so `unwrap()` can name it; None while it is open or if it does not exist. Decoded
            with the instance's own version's `result_type`.

        Raises:
            NotFound: The workflow type is not registered.
            DecodeError: The stored outcome no longer matches the workflow's `result_type`.
            ReplicaBehind: `min_lsn` was given and the replica had not replayed it within
                `replica_timeout`.
            ValueRefused: `min_lsn` is not a WAL position.
            StoreError: The database could not be reached.
        """
        reg = self.registration(workflow_type)
        info = self._reads(min_lsn, workflow_type, workflow_id).instance(workflow_type, workflow_id)
        return self._closed_outcome(reg, info)

    def _reads(self, min_lsn: str | None, workflow_type: str | None = None, workflow_id: str | None = None) -> Store:
        """The store reads go to, once it has replayed `min_lsn` (checked first, whatever the store)."""
        if min_lsn is not None:
            if not isinstance(min_lsn, str) or _LSN.fullmatch(min_lsn) is None:
                raise ValueRefused(
                    f"min_lsn must be a WAL position such as '0/3000148' (Outcome.wal_position), got {min_lsn!r}",
                    workflow_type=workflow_type,
                    workflow_id=workflow_id,
                )
            if self.reads_replica:
                self.read_store.wait_for_replay(
                    min_lsn, self.replica_timeout, workflow_type=workflow_type, workflow_id=workflow_id
                )
        return self.read_store

    def _closed_outcome(self, reg: Registration, info: InstanceInfo | None) -> RunOutcome | None:
        if info is None or not info.status.closed:
            return None
        if info.outcome_data is None:  # closed before outcomes were stored (migration 004)
            return Completed(None).at(info.workflow_type, info.workflow_id)
        return reg.version_of(info.version).codec.decode_outcome(info.outcome_data, info.workflow_id)

    def _wait_step(
        self,
        reg: Registration,
        info: InstanceInfo | None,
        workflow_type: str,
        workflow_id: str,
        deadline: float | None,
        timeout: float | None,
        allow_missing: bool,
        poll_interval: float,
        run: int | None = None,
    ) -> RunOutcome | ContinuedAsNew | float:
        """One turn of a wait loop, shared by `wait` and the async twin.

        Returns the outcome if the instance has closed (or `ContinuedAsNew` if `run` is given and the
        instance has moved past it), else the seconds to wait for a notice before re-reading (at most
        `poll_interval`, never past `deadline` on the monotonic clock). Raises NotFound or WaitTimedOut as
        `wait` documents.
        """
        if run is not None and info is not None and info.run > run:
            return ContinuedAsNew(run, info.run, workflow_type=workflow_type, workflow_id=workflow_id)
        closed = self._closed_outcome(reg, info)
        if closed is not None:
            return closed
        if info is None and not allow_missing:
            raise NotFound(
                f"workflow {workflow_type!r} has no instance {workflow_id!r}",
                workflow_type=workflow_type,
                workflow_id=workflow_id,
            )
        pause = float(poll_interval)
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                assert timeout is not None
                raise WaitTimedOut(workflow_type=workflow_type, workflow_id=workflow_id, timeout=timeout)
            pause = min(pause, remaining)
        return pause

    @overload
    def wait(
        self,
        workflow_type: str,
        workflow_id: str,
        *,
        timeout: float | None = ...,
        allow_missing: bool = ...,
        poll_interval: float = ...,
        follow_runs: Literal[True] = ...,
        run: None = ...,
    ) -> RunOutcome: ...

    @overload
    def wait(
        self,
        workflow_type: str,
        workflow_id: str,
        *,
        timeout: float | None = ...,
        allow_missing: bool = ...,
        poll_interval: float = ...,
        follow_runs: bool,
        run: int | None = ...,
    ) -> RunOutcome | ContinuedAsNew: ...

    def wait(
        self,
        workflow_type: str,
        workflow_id: str,
        *,
        timeout: float | None = None,
        allow_missing: bool = False,
        poll_interval: float = 2.0,
        follow_runs: bool = True,
        run: int | None = None,
    ) -> RunOutcome | ContinuedAsNew:
        """Block until an instance closes and return how it ended.

        One LISTEN connection per store serves every waiter; the waiter subscribes, then reads the row,
        so a close that commits in between is not missed, and it re-reads every `poll_interval` seconds in
        case a notice was lost (design/lifecycle.md). An instance continued as new stays open across its
        runs: by default the wait follows the chain to the final run's outcome.

        Args:
            workflow_type: A registered workflow type.
            workflow_id: The instance.
            timeout: The longest wait in seconds (monotonic clock); None waits for ever.
            allow_missing: Wait for an instance that does not exist yet instead of raising NotFound.
            poll_interval: Seconds between re-reads when no notice comes (monotonic clock).
            follow_runs: True (the default): wait for the close of whichever run is last. False: return
                `ContinuedAsNew` as soon as the run being waited on continues as new.
            run: With `follow_runs=False`, the run to wait on (None: the instance's run when the wait
                starts; 1 for an instance that does not exist yet).

        Returns:
            The outcome, labelled with the instance; `outcome.unwrap()` gives the result or raises. With
            `follow_runs=False`, `ContinuedAsNew(run, next_run)` when that run continued as new.

        Raises:
            WaitTimedOut: `timeout` passed while the instance was still open (it keeps running).
            NotFound: The type is not registered, or the instance does not exist and `allow_missing` is False.
            DecodeError: The stored outcome no longer matches the workflow's `result_type`.
            StoreError: The database could not be reached.
        """
        reg = self.registration(workflow_type)
        deadline = None if timeout is None else time.monotonic() + timeout
        sub = self.store.closed_waiters().subscribe(workflow_type, workflow_id)
        try:
            self.store.listening(min(timeout, 2.0) if timeout is not None else 2.0)
            while True:
                info = self.store.instance(workflow_type, workflow_id)
                if not follow_runs and run is None:
                    run = info.run if info is not None else 1
                step = self._wait_step(
                    reg, info, workflow_type, workflow_id, deadline, timeout, allow_missing, poll_interval, run
                )
                if not isinstance(step, float):
                    return step
                pause = step
                sub.wait(pause)
        finally:
            sub.close()

    def execute_and_wait(self, input: object, *, timeout: float | None = None) -> RunOutcome:
        """Execute `input`, then wait for its instance to close.

        Args:
            input: An input of a registered workflow (it goes where `workflow_id(input)` says).
            timeout: The longest wait in seconds (monotonic clock) after the input was executed; None
                waits for ever.

        Returns:
            The instance's outcome (the same as `wait`).

        Raises:
            WaitTimedOut: The instance was still open when `timeout` passed.
            NotFound: The input was rejected and the instance does not exist.
            IronflowError: Whatever `execute` raises for bad input (nothing is written then).
        """
        outcome = self.execute(input)
        try:
            return self.wait(outcome.workflow_type, outcome.workflow_id, timeout=timeout)
        except NotFound as exc:
            if outcome.status is OutcomeStatus.REJECTED:
                raise NotFound(
                    f"workflow {outcome.workflow_type!r}: the input was rejected ({outcome.reason!r}) and "
                    f"instance {outcome.workflow_id!r} does not exist",
                    workflow_type=outcome.workflow_type,
                    workflow_id=outcome.workflow_id,
                ) from exc
            raise

    # -- versions -----------------------------------------------------------------------------------------

    def migrate_version(
        self, workflow_type: str, workflow_id: str, *, to: str, input: object | None = None
    ) -> Outcome[Any, Any]:
        """Move one open instance to another registered version of its type, explicitly, under its lock.

        In one transaction: fold the instance's history with version `to`'s code (so a history it cannot
        read fails here, before any write), append ``ironflow.version_migrated/1``, record `to` on the
        instance, and decide `input` (if given) with the new code. Every later decision uses `to`.

        Args:
            workflow_type: A registered workflow type.
            workflow_id: The instance.
            to: The target `Workflow.version` (registered in this service).
            input: An input of the target version to decide right after the move (None: move only).

        Returns:
            accepted (the marker event first), rejected (`input` was refused: nothing was written), or
            duplicate (the instance already runs `to`; nothing was written, `input` was not decided).

        Raises:
            NotFound: The type is not registered or the instance does not exist.
            VersionNotLoaded: `to` is not a registered version of the type.
            InstanceClosed: The instance has closed.
            DecideFailed, CodecError, StoreError: The target's code cannot fold the history or decide.
        """
        reg = self.registration(workflow_type)
        _check_id(workflow_type, workflow_id, "invalid instance id")
        with self.observer.decision(workflow_type, workflow_id, "migrate_version") as probe:
            outcome = reg.handler.migrate_version(workflow_id, to, input, self.clock.now(), probe=probe)
            probe.outcome = outcome.status.value
        return outcome

    def open_versions(self, workflow_type: str) -> dict[str, int]:
        """How many open instances of one workflow type run each version (`ironflow-py inspect versions`).

        Args:
            workflow_type: A workflow type (registered or not: a type this code dropped can be listed).

        Returns:
            Version -> count of open instances.

        Raises:
            StoreError: The database could not be reached.
        """
        return self.store.open_versions(workflow_type)

    def check_versions(self) -> None:
        """Refuse to run without the code of a version that still has open instances.

        For every registered type, compare the versions open instances record with the registered ones
        (a worker calls this before it starts: `EffectRuntime.run`, `ironflow-py worker`).

        Raises:
            VersionsMissing: Some type has open instances of a version no registered class has; it lists
                (type, version, open count) for each.
            StoreError: The database could not be reached.
        """
        missing = [
            (wtype, version, count)
            for wtype, reg in self._by_type.items()
            for version, count in self.store.open_versions(wtype).items()
            if version not in reg.versions
        ]
        if missing:
            raise VersionsMissing(missing)

    # -- reads ------------------------------------------------------------------------------------------

    def history(self, workflow_type: str, workflow_id: str, *, min_lsn: str | None = None) -> list[RecordedEvent[Any]]:
        """Every event of one instance, decoded, in sequence order (read from the `read_store`).

        Args:
            workflow_type: A registered workflow type.
            workflow_id: The instance.
            min_lsn: With a `read_store`: first wait until the replica has replayed this WAL position
                (`Outcome.wal_position` of an earlier `execute`), so the read sees that call's writes.
                Ignored without a replica (the primary sees every commit).

        Returns:
            The recorded events (empty if the instance does not exist). An event stored under an old name
            is upcast (`Workflow.upcasters`) and carries the name its class is declared with now.

        Raises:
            NotFound: The workflow type is not registered.
            DecodeError: A stored event no longer matches its class (`UnknownTypeName` for an undeclared
                type name).
            ReplicaBehind: `min_lsn` was given and the replica had not replayed it within
                `replica_timeout`.
            ValueRefused: `min_lsn` is not a WAL position.
            StoreError: The database could not be reached.
        """
        reg = self.registration(workflow_type)
        reads = self._reads(min_lsn, workflow_type, workflow_id)
        codec = reg.codec
        if len(reg.versions) > 1:
            info = reads.instance(workflow_type, workflow_id)
            codec = reg.version_of(info.version if info is not None else None).codec
        recorded = []
        for e in reads.events(workflow_type, workflow_id):
            event = codec.decode_event(e.type_name, e.data, workflow_id, e.seq)
            # An upcast event is shown under the name its class is declared with now.
            name = e.type_name if e.type_name not in codec.upcasters else codec.events.name_of(type(event))
            recorded.append(
                RecordedEvent(workflow_type, workflow_id, e.seq, e.position, name or e.type_name, event, e.recorded_at)
            )
        return recorded

    def state(self, workflow_type: str, workflow_id: str, *, min_lsn: str | None = None) -> Any:
        """The current state of one instance, rebuilt exactly as the next decision would rebuild it.

        On the primary the read takes the instance's lock and goes through the decisions' own rebuild path
        (state cache, latest snapshot, then the events after it), so it always agrees with what `decide` is
        handed. A snapshot written by an older `evolve` is therefore visible here too: bump `state_version`
        when `evolve` changes, or find such snapshots with `ironflow-py snapshots verify`
        (design/versioning.md). With a `read_store` it is the same fold without the lock or the cache,
        over one consistent view of the replica: the state as of the replica's last replayed commit.

        Args:
            workflow_type: A registered workflow type.
            workflow_id: The instance.
            min_lsn: With a `read_store`: first wait until the replica has replayed this WAL position
                (`Outcome.wal_position` of an earlier `execute`), so the read sees that call's writes.
                Ignored without a replica (the primary sees every commit).

        Returns:
            The state after its last committed event.

        Raises:
            NotFound: The workflow type is not registered, or the instance has no events.
            DecideFailed: `initial_state` or `evolve` raised.
            DecodeError: A stored event no longer matches its class.
            ReplicaBehind: `min_lsn` was given and the replica had not replayed it within
                `replica_timeout`.
            ValueRefused: `min_lsn` is not a WAL position.
            StoreError: The database could not be reached, or the history has a gap.
        """
        handler = self.registration(workflow_type).handler
        reads = self._reads(min_lsn, workflow_type, workflow_id)
        rebuilt = handler.read_unlocked(reads, workflow_id) if self.reads_replica else handler.read(workflow_id)
        if rebuilt.seq == 0:
            raise NotFound(f"workflow {workflow_type!r} has no instance {workflow_id!r}")
        return rebuilt.state

    def instance(self, workflow_type: str, workflow_id: str, *, min_lsn: str | None = None) -> InstanceInfo | None:
        """The summary row of one instance: status, last sequence, times, outcome (from the `read_store`).

        Args:
            workflow_type: The workflow type.
            workflow_id: The instance.
            min_lsn: With a `read_store`: first wait until the replica has replayed this WAL position
                (`Outcome.wal_position` of an earlier `execute`), so the read sees that call's writes.
                Ignored without a replica (the primary sees every commit).

        Returns:
            The row, or None if the instance does not exist.

        Raises:
            ReplicaBehind: `min_lsn` was given and the replica had not replayed it within
                `replica_timeout`.
            ValueRefused: `min_lsn` is not a WAL position.
            StoreError: The database could not be reached.
        """
        return self._reads(min_lsn, workflow_type, workflow_id).instance(workflow_type, workflow_id)

    def list_instances(
        self,
        workflow_type: str | None = None,
        status: InstanceStatus | None = None,
        *,
        limit: int = 100,
        after: tuple[str, str] | None = None,
        min_lsn: str | None = None,
    ) -> Sequence[InstanceInfo]:
        """Instances ordered by (workflow type, id), optionally filtered, a page at a time (`read_store`).

        Args:
            workflow_type: Only this workflow type (None: all).
            status: Only instances in this status (None: all).
            limit: At most this many rows.
            after: (workflow_type, workflow_id) of the last row of the previous page (keyset pagination).
            min_lsn: With a `read_store`: first wait until the replica has replayed this WAL position
                (`Outcome.wal_position` of an earlier `execute`), so the read sees that call's writes.
                Ignored without a replica (the primary sees every commit).

        Returns:
            The page of instance rows.

        Raises:
            ReplicaBehind: `min_lsn` was given and the replica had not replayed it within
                `replica_timeout`.
            ValueRefused: `min_lsn` is not a WAL position.
            StoreError: The database could not be reached.
        """
        reads = self._reads(min_lsn, workflow_type)
        return reads.list_instances(workflow_type, status, limit=limit, after=after)


#: A PostgreSQL `pg_lsn` as text: two hexadecimal halves of the 64-bit position.
_LSN = re.compile(r"[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}")


def _check_id(workflow_type: str, workflow_id: object, what: str) -> None:
    """Refuse an instance id the database would refuse or that would not fit its unique index."""
    problem = key_problem(workflow_id, limit=MAX_KEY_BYTES)
    if problem is not None:
        # The id itself is left out: it may be the very value that is too long or holds NUL.
        raise InvalidWorkflowId(f"{what}: {problem}", workflow_type=workflow_type, workflow_id=None)
