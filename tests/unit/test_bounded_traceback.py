"""The traceback kept on an outbox row is bounded, and keeps its end: the failing frame and the exception."""

from __future__ import annotations

from ironflow_py.effects._attempt import bounded_traceback


def _deep(n: int) -> None:
    if n == 0:
        raise KeyError("missing")
    _deep(n - 1)


def _caught(depth: int) -> BaseException:
    try:
        _deep(depth)
    except KeyError as exc:
        return exc
    raise AssertionError("unreachable")


def test_a_short_traceback_is_kept_whole() -> None:
    text = bounded_traceback(_caught(1))
    assert text is not None
    assert text.startswith("Traceback (most recent call last):") and text.endswith("KeyError: 'missing'\n")


def test_a_long_traceback_keeps_its_last_lines_within_the_limit() -> None:
    whole = bounded_traceback(_caught(8))
    assert whole is not None and len(whole) > 500, "8 frames (Python folds identical repeated lines)"
    text = bounded_traceback(_caught(8), limit=300)
    assert text is not None
    marker, rest = text.split("\n", 1)
    assert marker == "... (earlier lines cut)"
    assert len(rest) <= 300 and whole.endswith(rest)
    assert whole[-len(rest) - 1] == "\n", "cut at a line boundary"
    assert rest.endswith("KeyError: 'missing'\n")


def test_no_exception_no_traceback() -> None:
    assert bounded_traceback(None) is None
