"""The storability checks of the pure core, and the harness catching what the stores would refuse or change
(design/reliability.md, class 1)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import attrs
import pytest
from cattrs.preconf.json import make_converter as plain_json_converter
from hypothesis import given
from hypothesis import strategies as st

from ironflow_py import Decision, EncodeError, InvalidWorkflowId, Workflow
from ironflow_py.codec import datetime_from_text, datetime_to_text
from ironflow_py.testing import WorkflowSpec, check_codec_round_trip
from ironflow_py.values import RefusedValue, identifier_problem, key_problem, to_json

storable_text = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | storable_text,
    lambda children: st.lists(children) | st.dictionaries(storable_text, children),
    max_leaves=20,
)


@given(json_values)
def test_to_json_round_trips_every_storable_value_with_its_number_types(value: Any) -> None:
    back = json.loads(to_json(value))
    assert back == value

    def types(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: types(x) for k, x in v.items()}
        if isinstance(v, list):
            return [types(x) for x in v]
        return type(v)

    assert types(back) == types(value)


def test_key_problems_count_bytes() -> None:
    assert key_problem("é" * 256) is None
    assert key_problem("é" * 257) == "it is 514 bytes in UTF-8; the limit is 512 bytes"
    assert key_problem("") == "it is empty or blank"
    assert key_problem(5) == "it must be a string, got int"
    assert identifier_problem("é" * 31) is None
    assert identifier_problem("é" * 32) == "it is 64 bytes in UTF-8; PostgreSQL would cut it to 63 bytes"


def test_refused_values_name_the_path_not_the_value() -> None:
    with pytest.raises(RefusedValue) as info:
        to_json({"customer": {"name": "secret\x00"}})
    assert info.value.path == "$.customer.name"
    assert "secret" not in str(info.value)


def test_zone_text_follows_rfc_9557_and_reads_back_ambiguous_wall_times() -> None:
    ny = ZoneInfo("America/New_York")
    second = datetime(2026, 11, 1, 1, 30, tzinfo=ny, fold=1)  # the second 01:30 of the night clocks go back
    text = datetime_to_text(second)
    assert text == "2026-11-01T01:30:00-05:00[America/New_York]"
    back = datetime_from_text(text)
    assert back.tzinfo is ny and back.fold == 1 and back.utcoffset() == timedelta(hours=-5)
    assert datetime_from_text("2026-11-01T06:30:00+00:00") == datetime(2026, 11, 1, 6, 30, tzinfo=UTC)


# -- the harness -------------------------------------------------------------------------------------------


@attrs.frozen
class Say:
    sid: str
    text: Any = None
    key: str | None = None
    at: datetime | None = None


@attrs.frozen
class Said:
    text: Any
    at: datetime | None = None


class Talk(Workflow[int, Say, Said, object]):
    type = "talk"
    inputs = {"talk.say/1": Say}
    events = {"talk.said/1": Said}

    def initial_state(self) -> int:
        return 0

    def workflow_id(self, input: Say) -> str:
        return input.sid

    def input_key(self, input: Say) -> str | None:
        return input.key

    def evolve(self, state: int, event: Said) -> int:
        return state + 1

    def decide(self, now: datetime, state: int, input: Say) -> Decision[Said, object]:
        return Decision.accept(Said(input.text, input.at))


def test_workflow_spec_refuses_what_the_stores_refuse() -> None:
    spec = WorkflowSpec(Talk)
    spec.given().when(Say("s1", "fine")).then(events=[Said("fine")])
    with pytest.raises(EncodeError, match=r"NUL .* at \$\.text"):
        spec.given().when(Say("s1", "a\x00b"))
    with pytest.raises(EncodeError, match=r"surrogate .* at \$\.text\[0\]"):
        spec.given().when(Say("s1", ["\ud800"]))
    with pytest.raises(InvalidWorkflowId, match="514 bytes"):
        spec.given().when(Say("é" * 257))
    with pytest.raises(InvalidWorkflowId, match="input key"):
        spec.given().when(Say("s1", key="k" * 513))


def test_workflow_spec_catches_a_converter_that_loses_the_zone() -> None:
    """With a user's converter that writes a ZoneInfo datetime as a bare offset, the value compares equal
    (same instant) but would give different wall-clock arithmetic after a reload: the harness fails it."""
    at = datetime(2026, 10, 31, 9, 0, tzinfo=ZoneInfo("America/New_York"))
    WorkflowSpec(Talk).given().when(Say("s1", at=at)).then(events=[Said(None, at)])
    lossy = WorkflowSpec(Talk, converter=plain_json_converter())
    with pytest.raises(AssertionError, match="does not survive its stored form"):
        lossy.given().when(Say("s1", at=at))


@attrs.frozen
class Sign:
    sid: str
    text: str


class Signs(Workflow[int, Sign, Sign, object]):
    type = "signs"
    inputs = {"signs.sign/1": Sign}
    events = {"signs.signed/1": Sign}

    def initial_state(self) -> int:
        return 0

    def workflow_id(self, input: Sign) -> str:
        return input.sid

    def evolve(self, state: int, event: Sign) -> int:
        return state + 1

    def decide(self, now: datetime, state: int, input: Sign) -> Decision[Sign, object]:
        return Decision.accept(input)


def test_check_codec_round_trip_skips_values_the_store_refuses() -> None:
    """hypothesis generates strings with NUL; those are refused with a path and skipped, not failures."""
    assert check_codec_round_trip(Signs(), max_examples=60) == 2
