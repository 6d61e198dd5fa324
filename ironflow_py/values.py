"""What PostgreSQL stores unchanged: the checks every stored value passes before any write.

A value PostgreSQL would refuse (`text` and `jsonb` refuse NUL; UTF-8 has no lone surrogates; an index
entry has a size limit) or silently change (`jsonb` drops the sign of -0.0 and reads `1e+16` back as an
integer) is refused or normalised here, in the pure core, so that both stores and the test harness agree
and a bad value is named (field path, never the value) before anything is written. See
design/reliability.md.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Final

#: Longest instance id, input key or timer key, in UTF-8 bytes. The unique indexes on (workflow type,
#: id, key) hold each entry in one btree tuple of at most about 2,700 bytes; 512 + 512 + a 128-byte type
#: name leaves room for the tuple header. Checked in bytes, not characters: "é" is two bytes.
MAX_KEY_BYTES: Final = 512
#: Longest workflow type or stored type name, in UTF-8 bytes (part of the same unique indexes).
MAX_TYPE_BYTES: Final = 128
#: PostgreSQL cuts identifiers (a schema name, a channel name) at 63 bytes (NAMEDATALEN - 1).
MAX_IDENTIFIER_BYTES: Final = 63

_SURROGATE: Final = re.compile("[\ud800-\udfff]")
#: What, in JSON text, may come from a value `_scan` refuses or rewrites: NUL, a float in exponent form, -0.0.
_SUSPECT: Final = re.compile(r"\\u0000|[0-9][eE]|-0\.0")
_ENCODER: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
_encode: Final[Callable[[Any], str]] = _ENCODER.encode


class RefusedValue(ValueError):
    """A value PostgreSQL would refuse; `path` locates it in the payload (`$.lines[2].sku`)."""

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"at {path}: {problem}")


def text_problem(text: str) -> str | None:
    """Why PostgreSQL's `text` and `jsonb` would refuse `text`, or None if they store it unchanged.

    Args:
        text: any string.

    Returns:
        A sentence naming the problem (never quoting the value), or None.
    """
    if "\x00" in text:
        return "a string contains NUL (\\x00), which PostgreSQL text and jsonb refuse"
    if not text.isascii() and _SURROGATE.search(text) is not None:
        return "a string contains a lone UTF-16 surrogate (U+D800..U+DFFF), which is not valid UTF-8"
    return None


def storable_text(text: str) -> str:
    """`text` with what PostgreSQL's `text` refuses replaced: NUL by `\\x00`, lone surrogates by U+FFFD.

    For diagnostics the engine stores (an error message in `last_error`), where refusing would lose the
    failure itself.

    Args:
        text: any string.

    Returns:
        A string PostgreSQL stores unchanged.
    """
    if text_problem(text) is None:
        return text
    return _SURROGATE.sub("\ufffd", text.replace("\x00", "\\x00"))


def key_problem(value: object, *, limit: int = MAX_KEY_BYTES) -> str | None:
    """Why `value` cannot be an instance id, input key or timer key, or None if it can.

    Args:
        value: the candidate key.
        limit: the longest allowed UTF-8 encoding, in bytes.

    Returns:
        A sentence naming the problem (never quoting the value), or None.
    """
    if not isinstance(value, str):
        return f"it must be a string, got {type(value).__name__}"
    if not value.strip():
        return "it is empty or blank"
    problem = text_problem(value)
    if problem is not None:
        return problem
    size = len(value.encode())
    if size > limit:
        return f"it is {size} bytes in UTF-8; the limit is {limit} bytes"
    return None


def identifier_problem(name: str) -> str | None:
    """Why PostgreSQL would refuse or alter `name` as an identifier (a schema name), or None.

    Args:
        name: the identifier, unquoted.

    Returns:
        A sentence naming the problem, or None. PostgreSQL silently truncates identifiers longer than 63
        bytes, so two long names would share one schema; they are refused instead.
    """
    if not name:
        return "it is empty"
    problem = text_problem(name)
    if problem is not None:
        return problem
    size = len(name.encode())
    if size > MAX_IDENTIFIER_BYTES:
        return f"it is {size} bytes in UTF-8; PostgreSQL would cut it to {MAX_IDENTIFIER_BYTES} bytes"
    return None


def to_json(data: Any) -> str:
    """JSON text that `jsonb` stores and gives back unchanged, for JSON-ready `data`.

    Every string and key is checked (no NUL, no lone surrogate), NaN and infinities are refused, and
    floats that `jsonb` would rewrite are written the way it keeps them: exponent forms positionally
    with a decimal point (so `1e16` stays a float on the way back), and -0.0 as 0.0 (numeric has no
    negative zero; the two are equal).

    Args:
        data: dicts, lists, tuples, strings, numbers, booleans and None (what a cattrs converter gives).

    Returns:
        The JSON text.

    Raises:
        RefusedValue: a string or number PostgreSQL would refuse, with its path.
        TypeError: an object JSON cannot represent.
    """
    try:
        text = _encode(data)
    except (TypeError, ValueError, RecursionError):
        pass  # the walk below names what is wrong, with its path
    else:
        # The fast path, in C: the text needs no fix when it holds no escaped NUL, no exponent or negative
        # zero that could be a float (a match inside a string only costs the walk) and no lone surrogate.
        if _SUSPECT.search(text) is None and (text.isascii() or _SURROGATE.search(text) is None):
            return text
    fixes: list[str] = []
    text = _encode(_scan(data, "$", fixes))
    for index, number in enumerate(fixes):
        # The placeholder holds NUL, which _scan has just proven no real string contains.
        text = text.replace(f'"\\u0000{index}\\u0000"', number, 1)
    return text


def _positional(number: float) -> str | None:
    """The text to write instead of repr(number), or None when repr is already what jsonb keeps."""
    if number == 0.0 and math.copysign(1.0, number) < 0:
        return "0.0"
    text = repr(number)
    if "e" not in text:
        return None
    text = format(Decimal(text), "f")
    return text if "." in text else text + ".0"


def _scan(value: Any, path: str, fixes: list[str]) -> Any:
    """Check every string and number under `value`; returns it with rewritten floats as placeholders."""
    if isinstance(value, str):
        problem = text_problem(value)
        if problem is not None:
            raise RefusedValue(path, problem)
        return value
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise RefusedValue(path, "NaN and infinity are not JSON numbers; jsonb refuses them")
        number = _positional(value)
        if number is None:
            return value
        fixes.append(number)
        return f"\x00{len(fixes) - 1}\x00"
    if isinstance(value, dict):
        out: dict[Any, Any] | None = None
        for key, item in value.items():
            here = _child(path, key)
            if isinstance(key, str):
                problem = text_problem(key)
                if problem is not None:
                    raise RefusedValue(here, "the key: " + problem)
            elif isinstance(key, float) and (math.isnan(key) or math.isinf(key)):
                raise RefusedValue(here, "a NaN or infinite key")
            new = _scan(item, here, fixes)
            if new is not item and out is None:
                out = dict(value)
            if out is not None:
                out[key] = new
        return value if out is None else out
    if isinstance(value, list | tuple):
        seq: list[Any] | None = None
        for index, item in enumerate(value):
            new = _scan(item, f"{path}[{index}]", fixes)
            if new is not item and seq is None:
                seq = list(value)
            if seq is not None:
                seq[index] = new
        return value if seq is None else seq
    return value


def _child(path: str, key: object) -> str:
    if isinstance(key, str) and key.isidentifier():
        return f"{path}.{key}"
    return f"{path}[{key!r}]" if isinstance(key, str) and text_problem(key) is None else f"{path}[<key>]"
