"""JSONPath in the States Language: paths, reference paths, payload templates and the data-flow filters.

Paths are parsed and evaluated by `jsonpath-ng` (its `ext` grammar, for filter expressions). The rules
around it are the States Language's (https://states-language.net/spec.html#path): a path beginning with
``$$`` reads the context object; a *definite* path (only names and indexes) yields one value and fails
with `States.Runtime` when nothing matches; any other path yields the list of its matches. A reference
path (ResultPath) is definite, and writing through it creates the missing objects on the way.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Callable, Mapping
from typing import Any

from jsonpath_ng import Child, Fields, Index, JSONPath, Root
from jsonpath_ng.exceptions import JsonPathLexerError, JsonPathParserError
from jsonpath_ng.ext.parser import parse as _parse

from ironflow_py.asl._errors import DATA_LIMIT_EXCEEDED, RUNTIME, StateError

#: AWS's payload quota: a state's input or output larger than this fails with States.DataLimitExceeded.
PAYLOAD_LIMIT_BYTES = 256 * 1024

#: Evaluates an intrinsic function call (`States.Format(...)`) against (input, context).
Intrinsic = Callable[[str, Any, Any], Any]


def dumps(value: Any) -> str:
    """Compact JSON, as Step Functions writes payloads (and counts their size)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


@functools.lru_cache(maxsize=4096)
def compile_path(path: str) -> tuple[JSONPath, bool]:
    """The parsed form of `path` (``$``/``$$`` prefix) and whether it is definite.

    Raises:
        ValueError: the path does not parse.
    """
    if not path.startswith("$"):
        raise ValueError(f"a path must start with '$', got {path!r}")
    expr = "$" + path[2:] if path.startswith("$$") else path
    try:
        parsed = _parse(expr)
    except (JsonPathLexerError, JsonPathParserError, Exception) as exc:
        raise ValueError(f"invalid JSONPath {path!r}: {exc}") from exc
    return parsed, _definite(parsed)


def _definite(node: JSONPath) -> bool:
    if isinstance(node, Root):
        return True
    if isinstance(node, Child):
        return _definite(node.left) and _definite(node.right)
    if isinstance(node, Fields):
        return len(node.fields) == 1 and node.fields[0] != "*"
    if isinstance(node, Index):
        return len(node.indices) == 1
    return False


def is_reference_path(path: str) -> bool:
    """True if `path` is a definite path on the input (what ResultPath accepts)."""
    if path.startswith("$$"):
        return False
    try:
        return compile_path(path)[1]
    except ValueError:
        return False


def select(path: str, data: Any, context: Any) -> Any:
    """The value `path` names in `data` (or in `context` for ``$$`` paths).

    Returns:
        The single value of a definite path, or the list of matches of an indefinite one.

    Raises:
        StateError: States.Runtime when a definite path matches nothing.
    """
    parsed, definite = compile_path(path)
    source = context if path.startswith("$$") else data
    if isinstance(parsed, Root):
        return source
    matches = parsed.find(source)
    if definite:
        if not matches:
            raise StateError(RUNTIME, f"Invalid path '{path}' : No results for path: {path}")
        return matches[0].value
    return [m.value for m in matches]


def is_present(path: str, data: Any) -> bool:
    """True if a definite `path` matches a value in `data` (for the IsPresent choice operator)."""
    parsed, _ = compile_path(path)
    return isinstance(parsed, Root) or bool(parsed.find(data))


def put(path: str, target: Any, value: Any) -> Any:
    """A copy of `target` with `value` written at reference path `path`, creating missing objects.

    Raises:
        StateError: States.Runtime when the path goes through a value that is not an object.
    """
    parsed, _ = compile_path(path)
    if isinstance(parsed, Root):
        return value
    steps = _steps(parsed)
    result = copy.deepcopy(target)
    node = result
    for i, step in enumerate(steps):
        last = i == len(steps) - 1
        if isinstance(step, str):
            if not isinstance(node, dict):
                raise StateError(
                    RUNTIME,
                    f"Invalid path '{path}': The choice state's result path cannot be applied to "
                    f"{dumps(target)}: {step!r} is not a field of an object",
                )
            if last:
                node[step] = value
            else:
                node = node.setdefault(step, {})
        else:
            if not isinstance(node, list) or not -len(node) <= step < len(node):
                raise StateError(RUNTIME, f"Invalid path '{path}': index {step} is out of range")
            if last:
                node[step] = value
            else:
                node = node[step]
    return result


def _steps(node: JSONPath) -> list[str | int]:
    if isinstance(node, Root):
        return []
    if isinstance(node, Child):
        return _steps(node.left) + _steps(node.right)
    if isinstance(node, Fields):
        return [node.fields[0]]
    if isinstance(node, Index):
        return [node.indices[0]]
    raise ValueError(f"not a reference path step: {node!r}")


def render(template: Any, data: Any, context: Any, intrinsic: Intrinsic) -> Any:
    """A payload template (Parameters, ItemSelector, ResultSelector) filled from `data` and `context`.

    A key ending in ``.$`` takes the value of the path or intrinsic function named by its string value
    and loses the suffix; nested objects and arrays are rendered the same way; other values are literal.

    Raises:
        StateError: a path matched nothing (States.Runtime) or an intrinsic failed.
    """
    if isinstance(template, dict):
        out: dict[str, Any] = {}
        for key, value in template.items():
            if key.endswith(".$") and isinstance(value, str):
                out[key[:-2]] = evaluate(value, data, context, intrinsic)
            else:
                out[key] = render(value, data, context, intrinsic)
        return out
    if isinstance(template, list):
        return [render(v, data, context, intrinsic) for v in template]
    return template


def evaluate(expression: str, data: Any, context: Any, intrinsic: Intrinsic) -> Any:
    """The value of a ``.$`` field: a path, or an intrinsic function call."""
    if expression.startswith("$"):
        return select(expression, data, context)
    return intrinsic(expression, data, context)


def input_path(path: Any, raw: Any, context: Any) -> Any:
    """InputPath: the part of the raw state input the state works on (null: an empty object)."""
    if path is None:
        return {}
    return select(path, raw, context)


def output_path(path: Any, value: Any, context: Any) -> Any:
    """OutputPath: the part of the combined result that becomes the state output (null: an empty object)."""
    if path is None:
        return {}
    return select(path, value, context)


def result_path(path: Any, raw: Any, result: Any) -> Any:
    """ResultPath: where the result goes in the raw input ("$": replace it; null: discard the result)."""
    if path is None:
        return raw
    return put(path, raw, result)


def check_size(value: Any, what: str) -> None:
    """Raise States.DataLimitExceeded when `value`'s JSON text is over 256 KiB."""
    size = len(dumps(value).encode())
    if size > PAYLOAD_LIMIT_BYTES:
        raise StateError(
            DATA_LIMIT_EXCEEDED,
            f"The {what} has a size of {size} bytes, which exceeds the maximum of {PAYLOAD_LIMIT_BYTES} bytes",
        )


def freeze(value: Any) -> Any:
    """A deep copy of a JSON value, so no two events share a mutable object."""
    return copy.deepcopy(value) if isinstance(value, dict | list) else value


def as_mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}
