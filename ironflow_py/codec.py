"""Stored form of inputs, events and effects: a stable type name plus a JSON payload.

One cattrs converter, owned by the library (never `cattrs.global_converter`), turns attrs instances into
JSON-ready data and back; a user may pass their own. Each workflow declares its stored names, so the
table below is the only place that maps a class to what is written in the database.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Final
from zoneinfo import ZoneInfo

import attrs
import cattrs
from cattrs.preconf.json import make_converter as _make_json_converter

from ironflow_py.errors import ConfigurationError, DecodeError, EncodeError, UnknownTypeName
from ironflow_py.lifecycle import (
    LIFECYCLE_EVENTS,
    RESERVED_PREFIX,
    Cancelled,
    Completed,
    Failed,
    LifecycleEvent,
    RunOutcome,
    Terminated,
    TimedOut,
)
from ironflow_py.upcasting import Upcasters, UpcastFailed, UpcastFn
from ironflow_py.values import MAX_TYPE_BYTES, RefusedValue, key_problem, to_json

if TYPE_CHECKING:
    from ironflow_py.workflow import AnyWorkflow

#: JSON text that jsonb keeps unchanged; raises RefusedValue (NUL, lone surrogates, NaN) with the path.
dumps: Final[Callable[[Any], str]] = to_json
loads: Final[Callable[[str | bytes], Any]] = json.loads


def datetime_to_text(value: datetime) -> str:
    """A datetime as RFC 3339 text that keeps its zone.

    A `ZoneInfo` zone's IANA key follows in brackets, as RFC 9557 writes it
    (`2026-11-01T09:00:00-05:00[America/New_York]`).

    Args:
        value: naive, or aware in a `datetime.timezone` (fixed offset) or a keyed `zoneinfo.ZoneInfo`.

    Returns:
        The text `datetime_from_text` turns back into an equal datetime with the same tzinfo.

    Raises:
        TypeError: any other tzinfo (pytz, dateutil, a ZoneInfo built from a file without a key): its
            zone rules could not be restored, so arithmetic after a reload would differ.
    """
    zone = value.tzinfo
    if zone is None or type(zone) is timezone:
        return value.isoformat()
    if isinstance(zone, ZoneInfo) and zone.key:
        return f"{value.isoformat()}[{zone.key}]"
    raise TypeError(
        f"a datetime in a {type(zone).__qualname__} zone cannot be stored without losing its rules; "
        "use zoneinfo.ZoneInfo(key) or datetime.timezone"
    )


def datetime_from_text(value: Any, _: Any = None) -> datetime:
    """The datetime `datetime_to_text` wrote (plain ISO 8601 is read too).

    Args:
        value: the stored text (or a datetime, returned as it is).

    Returns:
        The datetime, in its IANA zone when the text names one.
    """
    if isinstance(value, datetime):
        return value
    if value.endswith("]"):
        stamp, _, key = value[:-1].partition("[")
        # The offset in `stamp` fixes the instant (and so the fold of an ambiguous wall time).
        return datetime.fromisoformat(stamp).astimezone(ZoneInfo(key.removeprefix("!")))
    return datetime.fromisoformat(value)


def make_converter() -> cattrs.Converter:
    """A fresh cattrs converter for stored JSON, with no detailed validation on the hot path.

    Datetimes are RFC 3339 text that keeps a `ZoneInfo` zone's IANA key (RFC 9557 suffix).

    Pass it (customised with your own hooks) as `WorkflowService(converter=...)` or `App(converter=...)`;
    the library never touches `cattrs.global_converter` (design/codec.md).

    Returns:
        A new converter, not shared with anyone.
    """
    converter = _make_json_converter(detailed_validation=False)
    converter.register_unstructure_hook(datetime, datetime_to_text)
    converter.register_structure_hook(datetime, datetime_from_text)
    return converter


class TypeTable:
    """A two-way map between stable stored names and attrs classes, for one kind of value."""

    def __init__(self, owner: str, kind: str, names: Mapping[str, type]) -> None:
        self.owner = owner
        self.kind = kind
        self._by_name: dict[str, type] = {}
        self._by_class: dict[type, str] = {}
        for name, cls in names.items():
            problem = key_problem(name, limit=MAX_TYPE_BYTES)
            if problem is not None:
                raise ConfigurationError(f"workflow {owner!r}: a {kind} type name is not storable: {problem}")
            if not isinstance(cls, type) or not attrs.has(cls):
                raise ConfigurationError(f"workflow {owner!r}: {kind} {name!r} must map to an attrs class")
            if cls in self._by_class:
                raise ConfigurationError(
                    f"workflow {owner!r}: {kind} class {cls.__qualname__} is declared twice "
                    f"({self._by_class[cls]!r} and {name!r})"
                )
            self._by_name[name] = cls
            self._by_class[cls] = name

    def __contains__(self, cls: object) -> bool:
        return cls in self._by_class

    def classes(self) -> tuple[type, ...]:
        """The declared classes, in declaration order."""
        return tuple(self._by_class)

    def names(self) -> tuple[str, ...]:
        """The declared stored names, in declaration order."""
        return tuple(self._by_name)

    def name_of(self, cls: type) -> str | None:
        """The stored name of `cls` (None: not declared)."""
        return self._by_class.get(cls)

    def class_of(self, name: str) -> type | None:
        """The class stored under `name` (None: not declared)."""
        return self._by_name.get(name)


class WorkflowCodec:
    """Encodes and decodes one workflow's inputs, events and effects through a shared converter.

    A decode error names the field path and the expected type, never the stored value, and chains no
    exception that could quote it, unless `show_values` (a debug setting) is True.
    """

    def __init__(
        self,
        workflow_type: str,
        *,
        inputs: Mapping[str, type],
        events: Mapping[str, type],
        effects: Mapping[str, type],
        converter: cattrs.Converter,
        state_type: Any = None,
        result_type: Any = None,
        show_values: bool = False,
        upcasters: Mapping[str, UpcastFn] | None = None,
        result_name: str | None = None,
    ) -> None:
        self.workflow_type = workflow_type
        #: Debug only: put stored values (and the converter's own exception) into decode errors.
        self.show_values = show_values
        self.state_type = state_type
        self.result_type = result_type
        #: The stored name of the result type (kept in each outcome, so old results can be upcast), or None.
        self.result_name = result_name
        if result_name is not None:
            problem = key_problem(result_name, limit=MAX_TYPE_BYTES)
            if problem is not None:
                raise ConfigurationError(f"workflow {workflow_type!r}: result_name is not storable: {problem}")
            if result_type is None:
                raise ConfigurationError(f"workflow {workflow_type!r}: result_name needs a result_type")
        self.converter = converter
        self.inputs = TypeTable(workflow_type, "input", inputs)
        self.events = TypeTable(workflow_type, "event", events)
        self.effects = TypeTable(workflow_type, "effect", effects)
        #: Old stored name -> upcaster, checked against every declared name (design/versioning.md).
        self.upcasters = Upcasters(
            workflow_type,
            upcasters or {},
            [
                *self.inputs.names(),
                *self.events.names(),
                *self.effects.names(),
                *([result_name] if result_name else []),
            ],
        )
        # Hooks are looked up once per class: cattrs dispatch is the slow part of a structure call.
        self._unstructure: dict[type, Callable[[Any], Any]] = {}
        self._structure: dict[type, Callable[[Any, type], Any]] = {}
        for table in (self.inputs, self.events, self.effects):
            for cls in table.classes():
                try:
                    self._unstructure[cls] = converter.get_unstructure_hook(cls)
                    self._structure[cls] = converter.get_structure_hook(cls)
                except Exception as exc:
                    raise ConfigurationError(
                        f"workflow {workflow_type!r}: the converter cannot handle {table.kind} "
                        f"{cls.__qualname__}: {exc}"
                    ) from exc

    def _encode(self, table: TypeTable, value: object, workflow_id: str | None) -> tuple[str, str]:
        cls = type(value)
        name = table.name_of(cls)
        if name is None:
            raise EncodeError(
                f"{table.kind} {cls.__qualname__} is not declared in `{table.kind}s`",
                workflow_type=self.workflow_type,
                workflow_id=workflow_id,
            )
        try:
            return name, dumps(self._unstructure[cls](value))
        except RefusedValue as exc:
            raise EncodeError(
                f"cannot store {table.kind} {cls.__qualname__}: {exc.problem}",
                workflow_type=self.workflow_type,
                workflow_id=workflow_id,
                type_name=name,
                path=exc.path,
            ) from exc
        except (TypeError, ValueError, OverflowError, RecursionError) as exc:
            raise EncodeError(
                f"cannot serialize {table.kind} {cls.__qualname__}: {exc}",
                workflow_type=self.workflow_type,
                workflow_id=workflow_id,
                type_name=name,
            ) from exc

    def _why(self, exc: BaseException, data: Any = None, cls: Any = None) -> str:
        """Why a stored value did not decode, naming fields and types but not values (unless `show_values`).

        cattrs' `transform_error` says "invalid value for type, expected int @ $.amount": the path and the
        type, never the value. The hot-path converter has no detailed validation, so on this (rare) failure
        path the value is structured once more by a detailed copy to find the path. Any other exception's
        text may quote the value (int("sk_live_...") does), so only its type is given.
        """
        if self.show_values:
            return repr(exc)
        if not isinstance(exc, cattrs.BaseValidationError) and cls is not None:
            try:
                self.converter.copy(detailed_validation=True).structure(data, cls)
            except cattrs.BaseValidationError as detailed:
                exc = detailed
            except Exception:
                pass
        if isinstance(exc, cattrs.BaseValidationError):
            return "; ".join(cattrs.transform_error(exc))
        return f"{type(exc).__name__} (value hidden; WorkflowService(show_values=True) shows it)"

    def _chained(self, exc: BaseException) -> BaseException | None:
        """The cause to chain: none by default, so a logged traceback cannot quote a stored value either."""
        return exc if self.show_values else None

    def upcast(self, kind: str, name: str, data: Any, workflow_id: str | None, seq: int | None) -> tuple[str, Any]:
        """Follow the upcasters from a stored name the code no longer declares to the declared name.

        Args:
            kind: "input", "event" or "effect": the table the result must be declared in.
            name: The stored name (an old one; a declared name is returned as it is).
            data: The stored payload, parsed JSON.
            workflow_id: The instance, named in errors.
            seq: The event's sequence, named in errors (None for inputs and effects).

        Returns:
            `(declared name, payload in its shape)`.

        Raises:
            UnknownTypeName: No upcaster reads `name` (and it is not declared).
            DecodeError: The chain failed (loop, dead end, an upcaster raised) or ended at a name of another
                kind.
        """
        table = {"input": self.inputs, "event": self.events, "effect": self.effects}[kind]
        if table.class_of(name) is not None:
            return name, data
        if name not in self.upcasters:
            raise UnknownTypeName(
                f"stored {kind} type is not declared by the code",
                workflow_type=self.workflow_type,
                workflow_id=workflow_id,
                type_name=name,
                seq=seq,
            )
        try:
            new_name, new_data = self.upcasters.apply(name, data)
        except UpcastFailed as exc:
            raise DecodeError(
                f"stored {kind} cannot be upcast: {exc}",
                workflow_type=self.workflow_type,
                workflow_id=workflow_id,
                type_name=name,
                seq=seq,
            ) from None
        if table.class_of(new_name) is None:
            raise DecodeError(
                f"stored {kind} was upcast to {new_name!r}, which is not one of the declared {kind}s",
                workflow_type=self.workflow_type,
                workflow_id=workflow_id,
                type_name=name,
                seq=seq,
            )
        return new_name, new_data

    def _decode(self, table: TypeTable, name: str, data: Any, workflow_id: str | None, seq: int | None) -> Any:
        cls = table.class_of(name)
        if cls is None and name in self.upcasters:
            # Only a name the code no longer declares comes here: a declared name costs nothing extra.
            name, data = self.upcast(table.kind, name, data, workflow_id, seq)
            cls = table.class_of(name)
        if cls is None:
            raise UnknownTypeName(
                f"stored {table.kind} type is not declared by the code",
                workflow_type=self.workflow_type,
                workflow_id=workflow_id,
                type_name=name,
                seq=seq,
            )
        try:
            return self._structure[cls](data, cls)
        except Exception as exc:
            raise DecodeError(
                f"stored {table.kind} payload does not match {cls.__qualname__}: {self._why(exc, data, cls)}",
                workflow_type=self.workflow_type,
                workflow_id=workflow_id,
                type_name=name,
                seq=seq,
            ) from self._chained(exc)

    def encode_state(self, state: object, workflow_id: str) -> str:
        """A state as JSON text, for snapshots (the state type is fixed per workflow, so no name is stored)."""
        try:
            return dumps(self.converter.unstructure(state, unstructure_as=self.state_type or type(state)))
        except RefusedValue as exc:
            raise EncodeError(
                f"cannot store state {type(state).__qualname__}: {exc.problem}",
                workflow_type=self.workflow_type,
                workflow_id=workflow_id,
                path=exc.path,
            ) from exc
        except (TypeError, ValueError, OverflowError, RecursionError) as exc:
            raise EncodeError(
                f"cannot serialize state {type(state).__qualname__}: {exc}",
                workflow_type=self.workflow_type,
                workflow_id=workflow_id,
            ) from exc

    def decode_state(self, data: Any, workflow_id: str, seq: int) -> Any:
        """A snapshot's state from its parsed JSON; `DecodeError` if it no longer matches the state type."""
        if self.state_type is None:
            raise DecodeError("no state type declared", workflow_type=self.workflow_type, workflow_id=workflow_id)
        try:
            return self.converter.structure(data, self.state_type)
        except Exception as exc:
            raise DecodeError(
                f"snapshot at sequence {seq} does not match the state type: {self._why(exc, data, self.state_type)}",
                workflow_type=self.workflow_type,
                workflow_id=workflow_id,
            ) from self._chained(exc)

    def encode_event(self, event: object, workflow_id: str) -> tuple[str, str]:
        """(stored name, JSON text) of an event; `EncodeError` if it is undeclared or not serializable."""
        return self._encode(self.events, event, workflow_id)

    def encode_effect(self, effect: object, workflow_id: str) -> tuple[str, str]:
        """(stored name, JSON text) of an effect; `EncodeError` if it is undeclared or not serializable."""
        return self._encode(self.effects, effect, workflow_id)

    def encode_input(self, input: object, workflow_id: str | None) -> tuple[str, str]:
        """(stored name, JSON text) of an input; `EncodeError` if it is undeclared or not serializable."""
        return self._encode(self.inputs, input, workflow_id)

    def decode_event(self, name: str, data: Any, workflow_id: str, seq: int) -> Any:
        """An event from its stored name and parsed JSON; `UnknownTypeName` or `DecodeError` naming `seq`."""
        if name.startswith(RESERVED_PREFIX):
            return self._decode_lifecycle(name, data, workflow_id, seq)
        return self._decode(self.events, name, data, workflow_id, seq)

    def encode_lifecycle_event(self, event: LifecycleEvent, workflow_id: str) -> tuple[str, str]:
        """A lifecycle event (`InstanceTerminated`, `RunTimedOut`, `StartCancelled`) as its reserved name and JSON text.

        Args:
            event: the lifecycle event.
            workflow_id: the instance, named in errors.

        Returns:
            (reserved type name, JSON text).
        """
        name = next(n for n, cls in LIFECYCLE_EVENTS.items() if cls is type(event))
        try:
            return name, dumps(self.converter.unstructure(event))
        except (TypeError, ValueError, OverflowError, RecursionError) as exc:
            raise EncodeError(
                f"cannot serialize {event!r}: {exc}", workflow_type=self.workflow_type, workflow_id=workflow_id
            ) from exc

    def _decode_lifecycle(self, name: str, data: Any, workflow_id: str, seq: int) -> Any:
        cls = LIFECYCLE_EVENTS.get(name)
        if cls is None:
            raise UnknownTypeName(
                "stored lifecycle event type is not known to this version of ironflow_py",
                workflow_type=self.workflow_type,
                workflow_id=workflow_id,
                type_name=name,
                seq=seq,
            )
        try:
            return self.converter.structure(data, cls)
        except Exception as exc:
            raise DecodeError(
                f"stored lifecycle event does not match {cls.__qualname__}: {self._why(exc)}",
                workflow_type=self.workflow_type,
                workflow_id=workflow_id,
                type_name=name,
                seq=seq,
            ) from self._chained(exc)

    def decode_effect(self, name: str, data: Any, workflow_id: str) -> Any:
        """An effect from its stored name and parsed JSON; `UnknownTypeName` or `DecodeError`."""
        return self._decode(self.effects, name, data, workflow_id, None)

    def decode_input(self, name: str, data: Any, workflow_id: str | None) -> Any:
        """An input from its stored name and parsed JSON; `UnknownTypeName` or `DecodeError`."""
        return self._decode(self.inputs, name, data, workflow_id, None)

    def encode_outcome(self, outcome: RunOutcome, workflow_id: str) -> str:
        """An outcome as JSON text for `instances.outcome`: `{"status": ..., <its fields>}`.

        Args:
            outcome: how the instance ended; `Completed.result` is unstructured as `result_type` if declared.
            workflow_id: the instance, named in errors.

        Returns:
            Compact JSON text.

        Raises:
            EncodeError: the result or detail cannot be serialized (nothing is written).
        """
        try:
            data: dict[str, Any] = {"status": outcome.status.value}
            match outcome:
                case Completed(result=None):
                    data["result"] = None
                case Completed(result=result):
                    as_type = self.result_type if self.result_type is not None else type(result)
                    data["result"] = self.converter.unstructure(result, unstructure_as=as_type)
                    if self.result_name is not None:
                        data["result_type"] = self.result_name
                case Failed(code=code, detail=detail):
                    data["code"] = code
                    data["detail"] = self.converter.unstructure(detail)
                case Cancelled(reason=reason) | Terminated(reason=reason):
                    data["reason"] = reason
                case TimedOut(deadline=deadline):
                    data["deadline"] = deadline.isoformat()
            return dumps(data)
        except (TypeError, ValueError, OverflowError, RecursionError) as exc:
            raise EncodeError(
                f"cannot serialize outcome {outcome!r}: {exc}",
                workflow_type=self.workflow_type,
                workflow_id=workflow_id,
            ) from exc

    def decode_outcome(self, data: Any, workflow_id: str) -> RunOutcome:
        """The outcome stored by `encode_outcome`, labelled with its instance (see `Completed.at`).

        Args:
            data: the parsed JSON of `instances.outcome`.
            workflow_id: the instance.

        Returns:
            The outcome; `Completed.result` structured as `result_type` when the workflow declares one.

        Raises:
            DecodeError: the stored outcome does not match its shape or the result type.
        """
        try:
            status = data["status"]
            outcome: RunOutcome
            if status == "completed":
                result = data.get("result")
                stored_name = data.get("result_type")
                if stored_name is not None and stored_name != self.result_name and result is not None:
                    result = self._upcast_result(stored_name, result, workflow_id)
                if self.result_type is not None and result is not None:
                    result = self.converter.structure(result, self.result_type)
                outcome = Completed(result)
            elif status == "failed":
                outcome = Failed(data["code"], data.get("detail"))
            elif status == "cancelled":
                outcome = Cancelled(data.get("reason"))
            elif status == "timed_out":
                outcome = TimedOut(datetime.fromisoformat(data["deadline"]))
            elif status == "terminated":
                outcome = Terminated(data.get("reason"))
            else:
                raise ValueError(f"unknown status {status!r}")
        except DecodeError:
            raise
        except Exception as exc:
            raise DecodeError(
                f"stored outcome does not match its shape: {self._why(exc)}",
                workflow_type=self.workflow_type,
                workflow_id=workflow_id,
            ) from self._chained(exc)
        return outcome.at(self.workflow_type, workflow_id)

    def _upcast_result(self, name: str, data: Any, workflow_id: str) -> Any:
        """A stored result under an old `result_name`, upcast to the current one (design/versioning.md)."""
        if name not in self.upcasters:
            raise UnknownTypeName(
                "stored result type is not the workflow's result_name and no upcaster reads it",
                workflow_type=self.workflow_type,
                workflow_id=workflow_id,
                type_name=name,
            )
        try:
            new_name, new_data = self.upcasters.apply(name, data)
        except UpcastFailed as exc:
            raise DecodeError(
                f"stored result cannot be upcast: {exc}",
                workflow_type=self.workflow_type,
                workflow_id=workflow_id,
                type_name=name,
            ) from None
        if new_name != self.result_name:
            raise DecodeError(
                f"stored result was upcast to {new_name!r}, not the result_name {self.result_name!r}",
                workflow_type=self.workflow_type,
                workflow_id=workflow_id,
                type_name=name,
            )
        return new_data

    def to_data(self, value: object) -> Any:
        """JSON-ready data for any value the converter knows (states and rejection reasons, for display)."""
        return self.converter.unstructure(value)


def codec_for(
    workflow: AnyWorkflow, converter: cattrs.Converter | None = None, *, show_values: bool = False
) -> WorkflowCodec:
    """The codec of `workflow`'s declared inputs, events and effects, as the engine builds it.

    Args:
        workflow: a workflow instance.
        converter: the cattrs converter to use (None: a fresh `make_converter()`).
        show_values: debug only: let decode errors quote stored values (see `WorkflowCodec`).

    Returns:
        A codec whose state type is the workflow's `state_type`, or, when it declares none, the class of
        its initial state (needed by snapshots and by continue-as-new).

    Raises:
        ConfigurationError: a declared class is not an attrs class, is declared twice, or the converter
            cannot handle it; or an upcaster is for a declared name, or its declared chain loops or
            dead-ends (ironflow_py/upcasting.py).
    """
    state_type = workflow.state_type
    if state_type is None and workflow.uses_snapshots():
        state_type = type(workflow.initial_state())
    elif state_type is None:
        # Any workflow may continue as new, whose snapshot carries the state into the next run; a workflow
        # without snapshots must not fail to register because its initial_state cannot run yet.
        try:
            state_type = type(workflow.initial_state())
        except Exception:
            state_type = None
    return WorkflowCodec(
        workflow.type,
        inputs=workflow.inputs,
        events=workflow.events,
        effects=workflow.effects,
        converter=converter or make_converter(),
        state_type=state_type,
        result_type=workflow.result_type,
        show_values=show_values,
        upcasters=workflow.upcasters,
        result_name=workflow.result_name,
    )
