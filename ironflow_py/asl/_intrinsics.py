"""The States Language intrinsic functions (`States.Format(...)` and friends), parsed and evaluated.

Evaluation is pure: functions that need randomness (`States.MathRandom` without a seed, `States.UUID`)
take it from a `Draws` source the interpreter seeds per execution, and whatever they produce is recorded
in the event that carries the rendered payload, so a replay never draws again.
Spec: https://docs.aws.amazon.com/step-functions/latest/dg/intrinsic-functions.html
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
from collections.abc import Callable
from typing import Any

import attrs

from ironflow_py.asl._errors import RUNTIME, StateError
from ironflow_py.asl._paths import dumps, select

_MAX_RANGE = 1000
# An escaped brace in a string literal (``\\{``) is kept apart from a placeholder until States.Format has
# split its template; every other function sees the plain brace.
_OPEN, _CLOSE = "\ue000", "\ue001"


def _unmark(text: str) -> str:
    return text.replace(_OPEN, "{").replace(_CLOSE, "}")


class Draws:
    """A deterministic stream of random numbers: the i-th draw of key k is a hash of (seed, k, i)."""

    def __init__(self, seed: str) -> None:
        self._seed = seed
        self._count = 0

    def bytes(self, n: int) -> bytes:
        """`n` pseudo-random bytes (n <= 32)."""
        self._count += 1
        return hashlib.sha256(f"{self._seed}|{self._count}".encode()).digest()[:n]

    def unit(self) -> float:
        """A float in [0, 1)."""
        return int.from_bytes(self.bytes(7), "big") / float(1 << 56)


@attrs.frozen
class Call:
    name: str
    args: tuple[Any, ...]


@attrs.frozen
class PathArg:
    path: str


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, message: str) -> ValueError:
        return ValueError(f"invalid intrinsic function {self.text!r} at {self.pos}: {message}")

    def skip(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] == " ":
            self.pos += 1

    def call(self) -> Call:
        self.skip()
        start = self.pos
        while self.pos < len(self.text) and (self.text[self.pos].isalnum() or self.text[self.pos] == "."):
            self.pos += 1
        name = self.text[start : self.pos]
        if not name.startswith("States.") or name not in FUNCTIONS:
            raise self.fail(f"unknown function {name!r}")
        self.skip()
        if self.pos >= len(self.text) or self.text[self.pos] != "(":
            raise self.fail("expected '('")
        self.pos += 1
        args: list[Any] = []
        self.skip()
        if self.pos < len(self.text) and self.text[self.pos] == ")":
            self.pos += 1
            return Call(name, ())
        while True:
            args.append(self.arg())
            self.skip()
            if self.pos >= len(self.text):
                raise self.fail("unclosed '('")
            ch = self.text[self.pos]
            self.pos += 1
            if ch == ")":
                return Call(name, tuple(args))
            if ch != ",":
                raise self.fail("expected ',' or ')'")

    def arg(self) -> Any:
        self.skip()
        if self.pos >= len(self.text):
            raise self.fail("missing argument")
        ch = self.text[self.pos]
        if ch == "'":
            return self.string()
        if ch == "$":
            return PathArg(self.path())
        if self.text.startswith("States.", self.pos):
            return self.call()
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in ",) ":
            self.pos += 1
        token = self.text[start : self.pos]
        if token in ("true", "false", "null"):
            return json.loads(token)
        try:
            number = json.loads(token)
        except json.JSONDecodeError:
            raise self.fail(f"bad literal {token!r}") from None
        if not isinstance(number, int | float):
            raise self.fail(f"bad literal {token!r}")
        return number

    def string(self) -> str:
        self.pos += 1
        out: list[str] = []
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if ch == "\\" and self.pos + 1 < len(self.text):
                escaped = self.text[self.pos + 1]
                out.append({"{": _OPEN, "}": _CLOSE}.get(escaped, escaped))
                self.pos += 2
                continue
            if ch == "'":
                self.pos += 1
                return "".join(out)
            out.append(ch)
            self.pos += 1
        raise self.fail("unclosed string")

    def path(self) -> str:
        # A path argument ends at the first ',' or ')' outside brackets and quotes.
        start = self.pos
        depth = 0
        quote: str | None = None
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if quote:
                if ch == quote:
                    quote = None
            elif ch in "'\"":
                quote = ch
            elif ch in "[(":
                depth += 1
            elif ch in "])":
                if depth == 0:
                    break
                depth -= 1
            elif ch == "," and depth == 0:
                break
            self.pos += 1
        return self.text[start : self.pos].strip()


@functools.lru_cache(maxsize=2048)
def parse(text: str) -> Call:
    """Parse an intrinsic function call.

    Raises:
        ValueError: the text is not a well-formed call of a known function.
    """
    parser = _Parser(text.strip())
    call = parser.call()
    parser.skip()
    if parser.pos != len(parser.text):
        raise parser.fail("unexpected text after the call")
    return call


def evaluate(text: str, data: Any, context: Any, draws: Draws) -> Any:
    """The value of intrinsic call `text` with paths read from `data` and `context`.

    Raises:
        StateError: States.IntrinsicFailure on bad arguments, States.Runtime when a path matches nothing.
    """
    try:
        call = parse(text)
    except ValueError as exc:
        raise StateError(RUNTIME, str(exc)) from None
    return _eval(call, data, context, draws)


def _eval(call: Call, data: Any, context: Any, draws: Draws) -> Any:
    args = [
        _eval(a, data, context, draws)
        if isinstance(a, Call)
        else select(a.path, data, context)
        if isinstance(a, PathArg)
        else a
        for a in call.args
    ]
    if call.name != "States.Format":
        args = [_unmark(a) if isinstance(a, str) else a for a in args]
    fn = FUNCTIONS[call.name]
    try:
        return fn(args, draws)
    except StateError:
        raise
    except (TypeError, ValueError, KeyError, IndexError, ZeroDivisionError, OverflowError) as exc:
        raise StateError(RUNTIME, f"{call.name}: {exc}") from None


def _arity(args: list[Any], low: int, high: int | None = None) -> None:
    high = low if high is None else high
    if not low <= len(args) <= high:
        raise ValueError(f"expected {low}{'' if high == low else f' to {high}'} arguments, got {len(args)}")


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
        raise ValueError(f"{dumps(value)} is not an integer")
    return int(value)


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{dumps(value)} is not a string")
    return value


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise ValueError(f"{dumps(value)} is not an array")
    return value


def _format(args: list[Any], draws: Draws) -> str:
    if not args:
        raise ValueError("needs a template")
    template = _str(args[0])
    values = args[1:]
    parts = template.split("{}")
    if len(parts) - 1 != len(values):
        raise ValueError(f"the template has {len(parts) - 1} placeholders but {len(values)} arguments were given")
    out = [_unmark(parts[0])]
    for value, part in zip(values, parts[1:], strict=True):
        out.append(_unmark(value) if isinstance(value, str) else dumps(value))
        out.append(_unmark(part))
    return "".join(out)


def _string_to_json(args: list[Any], draws: Draws) -> Any:
    _arity(args, 1)
    return json.loads(_str(args[0]))


def _json_to_string(args: list[Any], draws: Draws) -> str:
    _arity(args, 1)
    return dumps(args[0])


def _array(args: list[Any], draws: Draws) -> list[Any]:
    return list(args)


def _array_partition(args: list[Any], draws: Draws) -> list[Any]:
    _arity(args, 2)
    items, size = _list(args[0]), _int(args[1])
    if size <= 0:
        raise ValueError("the chunk size must be positive")
    return [items[i : i + size] for i in range(0, len(items), size)]


def _array_contains(args: list[Any], draws: Draws) -> bool:
    _arity(args, 2)
    return args[1] in _list(args[0])


def _array_range(args: list[Any], draws: Draws) -> list[int]:
    _arity(args, 3)
    start, end, step = (_int(a) for a in args)
    if step == 0:
        raise ValueError("the step must not be 0")
    out = list(range(start, end + (1 if step > 0 else -1), step))
    if len(out) > _MAX_RANGE:
        raise ValueError(f"the range has {len(out)} items; at most {_MAX_RANGE} are allowed")
    return out


def _array_get_item(args: list[Any], draws: Draws) -> Any:
    _arity(args, 2)
    items, index = _list(args[0]), _int(args[1])
    if not 0 <= index < len(items):
        raise ValueError(f"index {index} is out of bounds")
    return items[index]


def _array_length(args: list[Any], draws: Draws) -> int:
    _arity(args, 1)
    return len(_list(args[0]))


def _array_unique(args: list[Any], draws: Draws) -> list[Any]:
    _arity(args, 1)
    seen: list[Any] = []
    for item in _list(args[0]):
        if item not in seen:
            seen.append(item)
    return seen


def _base64_encode(args: list[Any], draws: Draws) -> str:
    _arity(args, 1)
    return base64.b64encode(_str(args[0]).encode()).decode()


def _base64_decode(args: list[Any], draws: Draws) -> str:
    _arity(args, 1)
    return base64.b64decode(_str(args[0]), validate=True).decode()


_HASHES = {"MD5": "md5", "SHA-1": "sha1", "SHA-256": "sha256", "SHA-384": "sha384", "SHA-512": "sha512"}


def _hash(args: list[Any], draws: Draws) -> str:
    _arity(args, 2)
    algorithm = _HASHES.get(_str(args[1]))
    if algorithm is None:
        raise ValueError(f"unknown algorithm {args[1]!r}; one of {sorted(_HASHES)}")
    data = args[0] if isinstance(args[0], str) else dumps(args[0])
    return hashlib.new(algorithm, data.encode()).hexdigest()


def _json_merge(args: list[Any], draws: Draws) -> Any:
    _arity(args, 3)
    left, right, deep = args
    if not isinstance(left, dict) or not isinstance(right, dict):
        raise ValueError("both arguments must be objects")
    if deep is not False:
        raise ValueError("only a shallow merge (false) is supported")
    return {**left, **right}


def _math_random(args: list[Any], draws: Draws) -> int:
    _arity(args, 2, 3)
    start, end = _int(args[0]), _int(args[1])
    if end <= start:
        raise ValueError("the end must be greater than the start")
    if len(args) == 3:
        digest = hashlib.sha256(str(_int(args[2])).encode()).digest()
        unit = int.from_bytes(digest[:7], "big") / float(1 << 56)
    else:
        unit = draws.unit()
    return start + int(unit * (end - start))


def _math_add(args: list[Any], draws: Draws) -> int:
    _arity(args, 2)
    return _int(args[0]) + _int(args[1])


def _string_split(args: list[Any], draws: Draws) -> list[str]:
    _arity(args, 2)
    text, delimiters = _str(args[0]), _str(args[1])
    parts = [text]
    for d in delimiters:
        parts = [piece for part in parts for piece in part.split(d)]
    return [p for p in parts if p]


def _uuid(args: list[Any], draws: Draws) -> str:
    _arity(args, 0)
    raw = bytearray(draws.bytes(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


FUNCTIONS: dict[str, Callable[[list[Any], Draws], Any]] = {
    "States.Format": _format,
    "States.StringToJson": _string_to_json,
    "States.JsonToString": _json_to_string,
    "States.Array": _array,
    "States.ArrayPartition": _array_partition,
    "States.ArrayContains": _array_contains,
    "States.ArrayRange": _array_range,
    "States.ArrayGetItem": _array_get_item,
    "States.ArrayLength": _array_length,
    "States.ArrayUnique": _array_unique,
    "States.Base64Encode": _base64_encode,
    "States.Base64Decode": _base64_decode,
    "States.Hash": _hash,
    "States.JsonMerge": _json_merge,
    "States.MathRandom": _math_random,
    "States.MathAdd": _math_add,
    "States.StringSplit": _string_split,
    "States.UUID": _uuid,
}
