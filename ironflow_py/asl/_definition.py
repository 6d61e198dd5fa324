"""`StateMachine.parse`: an Amazon States Language definition, validated, with every error's JSON pointer.

The parsed machine keeps each state's fields as given (JSON values) and indexes the nested machines of
Parallel branches and Map iterators by a stable *machine path* ("" for the top, then
``/<State>/<branch index>`` or ``/<State>/it``), which the interpreter stores instead of the definition.
Spec: https://states-language.net/spec.html
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import attrs

from ironflow_py.asl import _choice, _intrinsics
from ironflow_py.asl._errors import ALL, AslValidationError
from ironflow_py.asl._paths import compile_path, is_reference_path

_COMMON = {"Type", "Comment"}
_IO = {"InputPath", "OutputPath"}
_FLOW = {"Next", "End"}
_FIELDS: dict[str, set[str]] = {
    "Pass": _COMMON | _IO | _FLOW | {"Result", "ResultPath", "Parameters"},
    "Task": _COMMON
    | _IO
    | _FLOW
    | {
        "Resource",
        "Parameters",
        "ResultSelector",
        "ResultPath",
        "Retry",
        "Catch",
        "TimeoutSeconds",
        "TimeoutSecondsPath",
        "HeartbeatSeconds",
        "HeartbeatSecondsPath",
        "Credentials",
    },
    "Choice": _COMMON | _IO | {"Choices", "Default"},
    "Wait": _COMMON | _IO | _FLOW | {"Seconds", "SecondsPath", "Timestamp", "TimestampPath"},
    "Succeed": _COMMON | _IO,
    "Fail": _COMMON | {"Error", "ErrorPath", "Cause", "CausePath"},
    "Parallel": _COMMON | _IO | _FLOW | {"Branches", "Parameters", "ResultSelector", "ResultPath", "Retry", "Catch"},
    "Map": _COMMON
    | _IO
    | _FLOW
    | {
        "Iterator",
        "ItemProcessor",
        "ItemsPath",
        "ItemSelector",
        "Parameters",
        "MaxConcurrency",
        "ResultSelector",
        "ResultPath",
        "Retry",
        "Catch",
        "ToleratedFailurePercentage",
        "ToleratedFailureCount",
        "Label",
    },
}
#: States that end a machine by themselves and so take neither Next nor End.
_TERMINAL_TYPES = {"Succeed", "Fail"}


def _ptr(*parts: object) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


@attrs.frozen(eq=False)
class StateDef:
    """One validated state, as written in the definition.

    Attributes:
        name: the state's name.
        type: its Type (Pass, Task, Choice, Wait, Succeed, Fail, Parallel, Map).
        fields: every field of the state, as JSON values.
    """

    name: str
    type: str
    fields: Mapping[str, Any]

    @property
    def next(self) -> str | None:
        """The state after this one, or None when it ends its machine."""
        value = self.fields.get("Next")
        return value if isinstance(value, str) else None

    def get(self, key: str, default: Any = None) -> Any:
        """A field of the state.

        Args:
            key: the field name, e.g. ``"ResultPath"``.
            default: what to return when the field is absent.

        Returns:
            The field's JSON value, or `default`.
        """
        return self.fields.get(key, default)


@attrs.frozen(eq=False)
class StateMachine:
    """A validated ASL state machine; build one with `StateMachine.parse(definition)`.

    Attributes:
        start_at: the name of the first state.
        states: the states by name.
        definition: the definition as given (JSON values).
        machines: every nested machine of the tree (Parallel branches, Map iterators) by machine path,
            ``""`` being the top-level machine.
        comment: the definition's Comment, if any.
    """

    start_at: str
    states: Mapping[str, StateDef]
    definition: Mapping[str, Any]
    #: nested machines (Parallel branches, Map iterators) of the whole tree, by machine path
    machines: Mapping[str, StateMachine] = attrs.field(factory=dict)
    comment: str | None = None

    @staticmethod
    def parse(definition: Mapping[str, Any] | str | bytes) -> StateMachine:
        """Validate an ASL definition (a dict or its JSON text) and return the machine.

        Args:
            definition: the state machine as a JSON object or its JSON text.

        Returns:
            The validated machine.

        Raises:
            AslValidationError: the definition breaks a rule; the message starts with the JSON pointer of
                the offending field, e.g. ``/States/Charge/Next: state "Nope" does not exist``.
        """
        if isinstance(definition, str | bytes):
            try:
                definition = json.loads(definition)
            except json.JSONDecodeError as exc:
                raise AslValidationError("", f"not valid JSON: {exc}") from None
        registry: dict[str, StateMachine] = {}
        machine = _parse_machine(definition, "", "", registry)
        top = attrs.evolve(machine, machines=MappingProxyType(registry))
        registry[""] = top
        return top

    def machine(self, path: str) -> StateMachine:
        """The nested machine at a machine path.

        Args:
            path: ``""`` for this machine, ``/<State>/<branch index>`` or ``/<State>/it`` (nested further
                by appending).

        Returns:
            That machine.
        """
        return self if path == "" else self.machines[path]

    def state(self, machine_path: str, name: str) -> StateDef:
        """A state of one of the machines.

        Args:
            machine_path: the machine's path (see `machine`).
            name: the state's name.

        Returns:
            The state.
        """
        return self.machine(machine_path).states[name]


def _parse_machine(raw: Any, pointer: str, path: str, registry: dict[str, StateMachine]) -> StateMachine:
    if not isinstance(raw, Mapping):
        raise AslValidationError(pointer, "a state machine must be a JSON object")
    for key in raw:
        if key not in {"StartAt", "States", "Comment", "Version", "TimeoutSeconds", "QueryLanguage", "ProcessorConfig"}:
            raise AslValidationError(pointer + _ptr(key), f"unknown field {key!r}")
    states = raw.get("States")
    if not isinstance(states, Mapping) or not states:
        raise AslValidationError(pointer + "/States", "must be a non-empty object of states")
    start = raw.get("StartAt")
    if not isinstance(start, str):
        raise AslValidationError(pointer + "/StartAt", "must be the name of a state")
    if start not in states:
        raise AslValidationError(pointer + "/StartAt", f'state "{start}" does not exist')
    if raw.get("QueryLanguage", "JSONPath") != "JSONPath":
        raise AslValidationError(pointer + "/QueryLanguage", "only JSONPath is supported")
    parsed: dict[str, StateDef] = {}
    for name, body in states.items():
        where = pointer + _ptr("States", name)
        if len(name) > 80:
            raise AslValidationError(where, "a state name has at most 80 characters")
        parsed[name] = _parse_state(name, body, where, path, states, registry)
    return StateMachine(start, MappingProxyType(parsed), raw, comment=raw.get("Comment"))


def _check_next(value: Any, where: str, states: Mapping[str, Any]) -> None:
    if not isinstance(value, str):
        raise AslValidationError(where, "must be the name of a state")
    if value not in states:
        raise AslValidationError(where, f'state "{value}" does not exist')


def _check_path(value: Any, where: str, *, nullable: bool = True, reference: bool = False) -> None:
    if value is None and nullable:
        return
    if not isinstance(value, str):
        raise AslValidationError(where, "must be a JSONPath string" + (" or null" if nullable else ""))
    try:
        compile_path(value)
    except ValueError as exc:
        raise AslValidationError(where, str(exc)) from None
    if reference and not is_reference_path(value):
        raise AslValidationError(where, f"{value!r} is not a reference path (names and indexes only)")


def _check_template(value: Any, where: str) -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            if key.endswith(".$"):
                if not isinstance(item, str):
                    raise AslValidationError(where + _ptr(key), "a '.$' field needs a path or intrinsic string")
                if item.startswith("$"):
                    _check_path(item, where + _ptr(key), nullable=False)
                else:
                    try:
                        _intrinsics.parse(item)
                    except ValueError as exc:
                        raise AslValidationError(where + _ptr(key), str(exc)) from None
            else:
                _check_template(item, where + _ptr(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_template(item, where + _ptr(i))


def _check_positive_int(value: Any, where: str, *, zero: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < (0 if zero else 1):
        raise AslValidationError(where, f"must be a {'non-negative' if zero else 'positive'} integer")


def _parse_state(
    name: str, body: Any, where: str, path: str, states: Mapping[str, Any], registry: dict[str, StateMachine]
) -> StateDef:
    if not isinstance(body, Mapping):
        raise AslValidationError(where, "a state must be a JSON object")
    stype = body.get("Type")
    if stype not in _FIELDS:
        raise AslValidationError(where + "/Type", f"unknown state type {stype!r}; one of {sorted(_FIELDS)}")
    for key in body:
        if key not in _FIELDS[stype]:
            raise AslValidationError(where + _ptr(key), f"field {key!r} is not allowed in a {stype} state")
    if stype not in _TERMINAL_TYPES and stype != "Choice":
        has_next, end = "Next" in body, body.get("End")
        if has_next and end is not None:
            raise AslValidationError(where + "/End", "a state has either Next or End, not both")
        if not has_next and end is not True:
            raise AslValidationError(where + "/Next", f"a {stype} state needs Next (or End: true)")
        if has_next:
            _check_next(body["Next"], where + "/Next", states)
    for key in ("InputPath", "OutputPath"):
        if key in body:
            _check_path(body[key], where + _ptr(key))
    if "ResultPath" in body:
        _check_path(body["ResultPath"], where + "/ResultPath", reference=True)
    for key in ("Parameters", "ResultSelector", "ItemSelector"):
        if key in body:
            _check_template(body[key], where + _ptr(key))
    if "ItemsPath" in body:
        _check_path(body["ItemsPath"], where + "/ItemsPath", nullable=False)
    for key in ("Retry", "Catch"):
        if key in body:
            _check_handlers(key, body[key], where + _ptr(key), states)
    check = _CHECKS.get(stype)
    if check is not None:
        check(body, where, path, name, states, registry)
    return StateDef(name, stype, MappingProxyType(dict(body)))


def _check_handlers(kind: str, handlers: Any, where: str, states: Mapping[str, Any]) -> None:
    if not isinstance(handlers, list):
        raise AslValidationError(where, f"{kind} must be an array")
    for i, handler in enumerate(handlers):
        here = where + _ptr(i)
        if not isinstance(handler, Mapping):
            raise AslValidationError(here, "must be an object")
        allowed = (
            {
                "ErrorEquals",
                "IntervalSeconds",
                "MaxAttempts",
                "BackoffRate",
                "MaxDelaySeconds",
                "JitterStrategy",
                "Comment",
            }
            if kind == "Retry"
            else {"ErrorEquals", "Next", "ResultPath", "Comment"}
        )
        for key in handler:
            if key not in allowed:
                raise AslValidationError(here + _ptr(key), f"field {key!r} is not allowed in a {kind[:5]}er")
        errors = handler.get("ErrorEquals")
        if not isinstance(errors, list) or not errors or not all(isinstance(e, str) for e in errors):
            raise AslValidationError(here + "/ErrorEquals", "must be a non-empty array of error names")
        if ALL in errors:
            if len(errors) != 1:
                raise AslValidationError(here + "/ErrorEquals", f"{ALL} must appear alone")
            if i != len(handlers) - 1:
                raise AslValidationError(here + "/ErrorEquals", f"{ALL} must be in the last {kind[:5]}er")
        if kind == "Catch":
            _check_next(handler.get("Next"), here + "/Next", states)
            if "ResultPath" in handler:
                _check_path(handler["ResultPath"], here + "/ResultPath", reference=True)
        else:
            if "IntervalSeconds" in handler:
                _check_positive_int(handler["IntervalSeconds"], here + "/IntervalSeconds")
            if "MaxAttempts" in handler:
                _check_positive_int(handler["MaxAttempts"], here + "/MaxAttempts", zero=True)
            if "MaxDelaySeconds" in handler:
                _check_positive_int(handler["MaxDelaySeconds"], here + "/MaxDelaySeconds")
            rate = handler.get("BackoffRate", 2.0)
            if isinstance(rate, bool) or not isinstance(rate, int | float) or rate < 1.0:
                raise AslValidationError(here + "/BackoffRate", "must be a number >= 1.0")
            if handler.get("JitterStrategy", "NONE") not in ("FULL", "NONE"):
                raise AslValidationError(here + "/JitterStrategy", 'must be "FULL" or "NONE"')


def _check_task(
    body: Mapping[str, Any], where: str, path: str, name: str, states: Mapping[str, Any], registry: Any
) -> None:
    if not isinstance(body.get("Resource"), str) or not body["Resource"]:
        raise AslValidationError(where + "/Resource", "a Task needs a Resource string")
    for key in ("TimeoutSeconds", "HeartbeatSeconds"):
        if key in body:
            _check_positive_int(body[key], where + _ptr(key))
        if key in body and key + "Path" in body:
            raise AslValidationError(where + _ptr(key + "Path"), f"{key} and {key}Path are exclusive")
        if key + "Path" in body:
            _check_path(body[key + "Path"], where + _ptr(key + "Path"), nullable=False)
    timeout = body.get("TimeoutSeconds")
    heartbeat = body.get("HeartbeatSeconds")
    if isinstance(timeout, int) and isinstance(heartbeat, int) and heartbeat >= timeout:
        raise AslValidationError(where + "/HeartbeatSeconds", "must be smaller than TimeoutSeconds")


def _check_choice(
    body: Mapping[str, Any], where: str, path: str, name: str, states: Mapping[str, Any], registry: Any
) -> None:
    choices = body.get("Choices")
    if not isinstance(choices, list) or not choices:
        raise AslValidationError(where + "/Choices", "must be a non-empty array of choice rules")
    for i, rule in enumerate(choices):
        here = where + _ptr("Choices", i)
        _check_rule(rule, here, top=True)
        _check_next(rule.get("Next"), here + "/Next", states)
    if "Default" in body:
        _check_next(body["Default"], where + "/Default", states)


def _check_rule(rule: Any, where: str, *, top: bool) -> None:
    if not isinstance(rule, Mapping):
        raise AslValidationError(where, "a choice rule must be an object")
    logical = [k for k in ("And", "Or", "Not") if k in rule]
    ops = [k for k in rule if k in _choice.OPERATORS]
    allowed_extra = {"Next", "Comment"} if top else {"Comment"}
    if logical:
        if len(logical) > 1 or ops or "Variable" in rule:
            raise AslValidationError(where, "a rule is either And, Or, Not, or one comparison")
        key = logical[0]
        sub = rule[key]
        if key == "Not":
            _check_rule(sub, where + "/Not", top=False)
        else:
            if not isinstance(sub, list) or not sub:
                raise AslValidationError(where + _ptr(key), "must be a non-empty array of rules")
            for i, r in enumerate(sub):
                _check_rule(r, where + _ptr(key, i), top=False)
        extra = set(rule) - {key} - allowed_extra
    else:
        if len(ops) != 1:
            raise AslValidationError(where, "a comparison needs exactly one operator (e.g. StringEquals)")
        _check_path(rule.get("Variable"), where + "/Variable", nullable=False)
        op = ops[0]
        value = rule[op]
        if op.endswith("Path"):
            _check_path(value, where + _ptr(op), nullable=False)
        elif op.startswith("Is") and not isinstance(value, bool):
            raise AslValidationError(where + _ptr(op), "must be true or false")
        elif op.startswith(("String",)) and not isinstance(value, str):
            raise AslValidationError(where + _ptr(op), "must be a string")
        elif op.startswith("Numeric") and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise AslValidationError(where + _ptr(op), "must be a number")
        elif op.startswith("Boolean") and not isinstance(value, bool):
            raise AslValidationError(where + _ptr(op), "must be true or false")
        elif op.startswith("Timestamp") and _choice.parse_timestamp(value) is None:
            raise AslValidationError(where + _ptr(op), "must be an RFC 3339 timestamp")
        extra = set(rule) - {op, "Variable"} - allowed_extra
    if extra:
        raise AslValidationError(where + _ptr(sorted(extra)[0]), "field not allowed in a choice rule")


def _check_wait(
    body: Mapping[str, Any], where: str, path: str, name: str, states: Mapping[str, Any], registry: Any
) -> None:
    given = [k for k in ("Seconds", "SecondsPath", "Timestamp", "TimestampPath") if k in body]
    if len(given) != 1:
        raise AslValidationError(where, "a Wait needs exactly one of Seconds, SecondsPath, Timestamp, TimestampPath")
    key = given[0]
    if key == "Seconds":
        _check_positive_int(body[key], where + "/Seconds", zero=True)
    elif key == "Timestamp":
        if _choice.parse_timestamp(body[key]) is None:
            raise AslValidationError(where + "/Timestamp", "must be an RFC 3339 timestamp")
    else:
        _check_path(body[key], where + _ptr(key), nullable=False)


def _check_fail(
    body: Mapping[str, Any], where: str, path: str, name: str, states: Mapping[str, Any], registry: Any
) -> None:
    for key in ("Error", "Cause"):
        if key in body and key + "Path" in body:
            raise AslValidationError(where + _ptr(key + "Path"), f"{key} and {key}Path are exclusive")
        if key in body and not isinstance(body[key], str):
            raise AslValidationError(where + _ptr(key), "must be a string")
        if key + "Path" in body:
            value = body[key + "Path"]
            if isinstance(value, str) and value.startswith("States."):
                try:
                    _intrinsics.parse(value)
                except ValueError as exc:
                    raise AslValidationError(where + _ptr(key + "Path"), str(exc)) from None
            else:
                _check_path(value, where + _ptr(key + "Path"), nullable=False)


def _check_parallel(
    body: Mapping[str, Any],
    where: str,
    path: str,
    name: str,
    states: Mapping[str, Any],
    registry: dict[str, StateMachine],
) -> None:
    branches = body.get("Branches")
    if not isinstance(branches, list) or not branches:
        raise AslValidationError(where + "/Branches", "must be a non-empty array of state machines")
    for i, branch in enumerate(branches):
        sub_path = f"{path}/{name}/{i}"
        registry[sub_path] = _parse_machine(branch, where + _ptr("Branches", i), sub_path, registry)


def _check_map(
    body: Mapping[str, Any],
    where: str,
    path: str,
    name: str,
    states: Mapping[str, Any],
    registry: dict[str, StateMachine],
) -> None:
    keys = [k for k in ("Iterator", "ItemProcessor") if k in body]
    if len(keys) != 1:
        raise AslValidationError(where + "/ItemProcessor", "a Map needs exactly one of ItemProcessor or Iterator")
    if "ItemSelector" in body and "Parameters" in body:
        raise AslValidationError(where + "/Parameters", "ItemSelector and Parameters are exclusive")
    if "Parameters" in body:
        _check_template(body["Parameters"], where + "/Parameters")
    if "MaxConcurrency" in body:
        _check_positive_int(body["MaxConcurrency"], where + "/MaxConcurrency", zero=True)
    for key in ("ToleratedFailurePercentage", "ToleratedFailureCount"):
        if key in body:
            raise AslValidationError(where + _ptr(key), "tolerated failures (Distributed Map) are not supported")
    key = keys[0]
    processor = body[key]
    if key == "ItemProcessor" and isinstance(processor, Mapping):
        mode = processor.get("ProcessorConfig", {}).get("Mode", "INLINE")
        if mode != "INLINE":
            raise AslValidationError(where + "/ItemProcessor/ProcessorConfig/Mode", "only INLINE Map is supported")
    sub_path = f"{path}/{name}/it"
    registry[sub_path] = _parse_machine(processor, where + _ptr(key), sub_path, registry)


_CHECKS: dict[str, Any] = {
    "Task": _check_task,
    "Choice": _check_choice,
    "Wait": _check_wait,
    "Fail": _check_fail,
    "Parallel": _check_parallel,
    "Map": _check_map,
}
