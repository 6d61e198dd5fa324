"""Checks a user runs on their own workflow: replay is deterministic and every type survives storage."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ironflow_py.codec import WorkflowCodec, codec_for, loads
from ironflow_py.errors import EncodeError
from ironflow_py.testing.harness import same_stored
from ironflow_py.workflow import AnyWorkflow


def _codec(workflow: AnyWorkflow, converter: Any) -> WorkflowCodec:
    return codec_for(workflow, converter)


def check_replay_determinism(workflow: AnyWorkflow, events: Sequence[object], *, converter: Any = None) -> Any:
    """Fold `events` twice, and once more after a trip through storage; all three states must be equal.

    Catches `evolve` that reads the clock, randomness or mutable globals, and events whose stored form
    loses information.

    Args:
        workflow: The workflow instance to check.
        events: Events of that workflow in sequence order (for example from a scenario or production).
        converter: The cattrs converter the service uses (default: `make_converter()`).

    Returns:
        The folded state.

    Raises:
        AssertionError: Two folds disagree; the message shows both states.
        EncodeError: An event cannot be stored.
        DecodeError: A stored event cannot be read back.
    """
    codec = _codec(workflow, converter)
    first = workflow.fold(workflow.initial_state(), events)
    second = workflow.fold(workflow.initial_state(), events)
    if first != second:
        raise AssertionError(f"workflow {workflow.type!r}: folding the same events twice gave {first!r} and {second!r}")
    stored = []
    for seq, event in enumerate(events, start=1):
        name, text = codec.encode_event(event, "replay-check")
        stored.append(codec.decode_event(name, loads(text), "replay-check", seq))
    third = workflow.fold(workflow.initial_state(), stored)
    if not same_stored(first, third):
        raise AssertionError(
            f"workflow {workflow.type!r}: state from stored events {third!r} differs from in-memory {first!r}"
        )
    return first


def check_codec_round_trip(workflow: AnyWorkflow, *, max_examples: int = 50, converter: Any = None) -> int:
    """Check that hypothesis-generated values of every declared input, event and effect class round-trip.

    Each value is encoded to its stored JSON form and decoded back, and must compare equal with the same
    time zones (`same_stored`). Values the codec refuses by design (a string with NUL, which PostgreSQL
    cannot store) are skipped. Needs hypothesis (a test dependency).

    Args:
        workflow: The workflow instance whose `inputs`, `events` and `effects` are checked.
        max_examples: Values generated per class.
        converter: The cattrs converter the service uses (default: `make_converter()`).

    Returns:
        How many classes were checked.

    Raises:
        AssertionError: A value came back different (hypothesis reports the smallest example).
        EncodeError: A value cannot be serialized at all (not a refused string or number).
        DecodeError: A stored value cannot be read back.
    """
    codec = _codec(workflow, converter)
    tables = [
        (codec.inputs, codec.encode_input, codec.decode_input),
        (codec.events, codec.encode_event, None),
        (codec.effects, codec.encode_effect, codec.decode_effect),
    ]
    checked = 0
    for table, encode, decode in tables:
        for cls in table.classes():
            _round_trip_property(codec, table.kind, encode, decode, cls, max_examples)()
            checked += 1
    return checked


def _round_trip_property(
    codec: WorkflowCodec, kind: str, encode: Any, decode: Any, cls: type, max_examples: int
) -> Any:
    from hypothesis import HealthCheck, given, reject, settings
    from hypothesis import strategies as st

    @settings(max_examples=max_examples, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.builds(cls))
    def prop(value: Any) -> None:
        try:
            name, text = encode(value, "round-trip")
        except EncodeError as exc:
            if exc.path is None:
                raise
            reject()  # refused with a named path: the store would refuse it too, which is what we want
        if decode is None:
            back = codec.decode_event(name, loads(text), "round-trip", 1)
        else:
            back = decode(name, loads(text), "round-trip")
        if not same_stored(value, back):
            raise AssertionError(f"{kind} {name!r}: {value!r} came back as {back!r}")

    return prop
