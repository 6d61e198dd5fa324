"""Choice rules: the comparison operators of the States Language, And/Or/Not, and their Path variants.

Spec: https://states-language.net/spec.html#choice-state. A comparison whose variable has another type
than the operator compares is false (not an error); a Variable path that matches nothing fails the state
with States.Runtime, except under IsPresent.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from ironflow_py.asl._paths import is_present, select

_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def parse_timestamp(value: Any) -> datetime | None:
    """An RFC 3339 timestamp (uppercase T, a zone) as an aware datetime, or None if `value` is not one."""
    if not isinstance(value, str) or not _RFC3339.match(value):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _matches(value: str, pattern: str) -> bool:
    parts: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            parts.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        parts.append(".*" if ch == "*" else re.escape(ch))
        i += 1
    return re.fullmatch("".join(parts), value, re.DOTALL) is not None


def _cmp(kind: str, op: str) -> Callable[[Any, Any], bool]:
    def compare(left: Any, right: Any) -> bool:
        if kind == "String":
            if not isinstance(left, str) or not isinstance(right, str):
                return False
            a: Any = left
            b: Any = right
        elif kind == "Numeric":
            if not _is_number(left) or not _is_number(right):
                return False
            a, b = left, right
        elif kind == "Boolean":
            if not isinstance(left, bool) or not isinstance(right, bool):
                return False
            return op == "Equals" and left == right
        else:
            a, b = parse_timestamp(left), parse_timestamp(right)
            if a is None or b is None:
                return False
        outcome: bool = {
            "Equals": a == b,
            "LessThan": a < b,
            "GreaterThan": a > b,
            "LessThanEquals": a <= b,
            "GreaterThanEquals": a >= b,
        }[op]
        return outcome

    return compare


COMPARATORS: dict[str, Callable[[Any, Any], bool]] = {}
for _kind in ("String", "Numeric", "Boolean", "Timestamp"):
    for _op in ("Equals", "LessThan", "GreaterThan", "LessThanEquals", "GreaterThanEquals"):
        if _kind == "Boolean" and _op != "Equals":
            continue
        COMPARATORS[f"{_kind}{_op}"] = _cmp(_kind, _op)
COMPARATORS["StringMatches"] = lambda v, p: isinstance(v, str) and isinstance(p, str) and _matches(v, p)

TYPE_TESTS: dict[str, Callable[[Any], bool]] = {
    "IsNull": lambda v: v is None,
    "IsNumeric": _is_number,
    "IsString": lambda v: isinstance(v, str),
    "IsBoolean": lambda v: isinstance(v, bool),
    "IsTimestamp": lambda v: parse_timestamp(v) is not None,
}

#: Every operator a choice rule may use, Path variants included (StringMatches has none).
OPERATORS = frozenset(
    [*COMPARATORS, *(f"{k}Path" for k in COMPARATORS if k != "StringMatches"), *TYPE_TESTS, "IsPresent"]
)


def evaluate(rule: Mapping[str, Any], data: Any, context: Any) -> bool:
    """Whether choice rule `rule` (a validated Choices element or nested rule) holds for `data`.

    Raises:
        StateError: States.Runtime when the Variable (or a ...Path operand) matches nothing.
    """
    if "And" in rule:
        return all(evaluate(r, data, context) for r in rule["And"])
    if "Or" in rule:
        return any(evaluate(r, data, context) for r in rule["Or"])
    if "Not" in rule:
        return not evaluate(rule["Not"], data, context)
    variable = rule["Variable"]
    for op in rule:
        if op not in OPERATORS:
            continue
        if op == "IsPresent":
            return bool(is_present(variable, data) == rule[op])
        value = select(variable, data, context)
        if op in TYPE_TESTS:
            return bool(TYPE_TESTS[op](value) == rule[op])
        if op.endswith("Path"):
            return COMPARATORS[op[:-4]](value, select(rule[op], data, context))
        return COMPARATORS[op](value, rule[op])
    raise AssertionError("validated rules name an operator")
