"""Stored names and JSON payloads: round trips, clear errors, stable names."""

from __future__ import annotations

from datetime import UTC, datetime

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ironflow_py import ConfigurationError, DecodeError, EncodeError, UnknownTypeName
from ironflow_py.codec import WorkflowCodec, make_converter
from ironflow_py.examples.orders import Line, OrderPlaced, OrderWorkflow


def codec() -> WorkflowCodec:
    wf = OrderWorkflow()
    return WorkflowCodec(wf.type, inputs=wf.inputs, events=wf.events, effects=wf.effects, converter=make_converter())


#: Strings PostgreSQL stores: no NUL, no lone surrogates.
text = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"))
lines = st.lists(
    st.builds(Line, text.filter(lambda s: len(s) <= 20), st.integers(-(2**53), 2**53), st.integers(0, 10**9)),
    max_size=5,
).map(tuple)
placed = st.builds(
    OrderPlaced,
    text,
    lines,
    st.integers(-(2**53), 2**53),
    st.datetimes(timezones=st.just(UTC)),
)


@given(placed)
def test_events_round_trip_through_json(event: OrderPlaced) -> None:
    c = codec()
    name, text = c.encode_event(event, "o1")
    assert name == "order.placed/1"
    from ironflow_py.codec import loads

    assert c.decode_event(name, loads(text), "o1", 1) == event


def test_stored_name_not_class_name_is_written() -> None:
    name, text = codec().encode_event(OrderPlaced("ada", (), 0, datetime(2026, 1, 1, tzinfo=UTC)), "o1")
    assert name == "order.placed/1"
    assert "OrderPlaced" not in text


def test_undeclared_class_cannot_be_encoded() -> None:
    @attrs.frozen
    class Stray:
        x: int

    with pytest.raises(EncodeError, match="Stray is not declared"):
        codec().encode_event(Stray(1), "o1")


def test_nan_is_refused_at_encode_time() -> None:
    @attrs.frozen
    class Measured:
        value: float

    c = WorkflowCodec("m", inputs={}, events={"m/1": Measured}, effects={}, converter=make_converter())
    with pytest.raises(EncodeError, match=r"NaN and infinity .* at \$\.value"):
        c.encode_event(Measured(float("nan")), "x")


def test_unknown_name_and_bad_payload_name_type_instance_and_sequence() -> None:
    with pytest.raises(UnknownTypeName) as unknown:
        codec().decode_event("order.gone/1", {}, "o7", 4)
    assert (unknown.value.type_name, unknown.value.workflow_id, unknown.value.seq) == (
        "order.gone/1",
        "o7",
        4,
    )
    with pytest.raises(DecodeError, match=r"does not match OrderPlaced.*sequence 3"):
        codec().decode_event("order.placed/1", {"customer": "x"}, "o7", 3)


def test_declaring_a_class_twice_or_a_non_attrs_class_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="declared twice"):
        WorkflowCodec("w", inputs={}, events={"a/1": Line, "b/1": Line}, effects={}, converter=make_converter())
    with pytest.raises(ConfigurationError, match="attrs class"):
        WorkflowCodec("w", inputs={}, events={"a/1": dict}, effects={}, converter=make_converter())


def test_the_library_converter_is_not_the_global_one() -> None:
    import cattrs

    assert make_converter() is not cattrs.global_converter
    assert make_converter() is not make_converter()
