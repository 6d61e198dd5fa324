"""The intrinsic functions, and random draws recorded in events so a refold never draws again."""

from __future__ import annotations

import re
from typing import Any, cast

import pytest

from ironflow_py.asl._model import AslEvent
from tests.asl.helpers import machine, run


def _eval(expression: str, input: Any = None) -> Any:
    d = machine({"P": {"Type": "Pass", "Parameters": {"v.$": expression}, "OutputPath": "$.v", "End": True}})
    result, _, _ = run(d, {} if input is None else input)
    assert result.status == "succeeded", result
    return result.output


@pytest.mark.parametrize(
    ("expression", "input", "expected"),
    [
        (
            "States.Format('Hello, {}! You are {}.', $.name, $.age)",
            {"name": "Ada", "age": 36},
            "Hello, Ada! You are 36.",
        ),
        ("States.Format('brace \\{ {}', $.o)", {"o": {"a": 1}}, 'brace { {"a":1}'),
        ("States.Format('literal \\{\\} then {}', $.n)", {"n": 7}, "literal {} then 7"),
        ("States.StringSplit('a\\{b', '\\{')", {}, ["a", "b"]),
        ("States.StringToJson($.s)", {"s": '{"a":[1,2]}'}, {"a": [1, 2]}),
        ("States.JsonToString($.o)", {"o": {"a": [1, 2]}}, '{"a":[1,2]}'),
        ("States.Array($.a, 'x', 3, true, null)", {"a": 1}, [1, "x", 3, True, None]),
        ("States.ArrayPartition($.a, 2)", {"a": [1, 2, 3, 4, 5]}, [[1, 2], [3, 4], [5]]),
        ("States.ArrayContains($.a, 3)", {"a": [1, 2, 3]}, True),
        ("States.ArrayRange(1, 9, 2)", {}, [1, 3, 5, 7, 9]),
        ("States.ArrayGetItem($.a, 1)", {"a": ["x", "y"]}, "y"),
        ("States.ArrayLength($.a)", {"a": [1, 2, 3]}, 3),
        ("States.ArrayUnique($.a)", {"a": [1, 2, 2, 3, 1]}, [1, 2, 3]),
        ("States.Base64Encode($.s)", {"s": "Data to encode"}, "RGF0YSB0byBlbmNvZGU="),
        ("States.Base64Decode($.s)", {"s": "RGF0YSB0byBlbmNvZGU="}, "Data to encode"),
        ("States.Hash($.s, 'SHA-1')", {"s": "input data"}, "aaff4a450a104cd177d28d18d74485e8cae074b7"),
        (
            "States.JsonMerge($.a, $.b, false)",
            {"a": {"x": 1, "y": {"p": 1}}, "b": {"y": {"q": 2}}},
            {"x": 1, "y": {"q": 2}},
        ),
        ("States.MathAdd($.n, -1)", {"n": 111}, 110),
        ("States.StringSplit($.s, ',')", {"s": "1,2,3,4,5"}, ["1", "2", "3", "4", "5"]),
        ("States.StringSplit($.s, '.+')", {"s": "This.is+a.test"}, ["This", "is", "a", "test"]),
        ("States.ArrayLength(States.Array(1, 2))", {}, 2),
        ("States.MathRandom(1, 999, 1234)", {}, None),  # a seeded call: the same on every run
    ],
)
def test_intrinsic(expression: str, input: Any, expected: Any) -> None:
    got = _eval(expression, input)
    if expected is None:
        assert got == _eval(expression, input) and 1 <= got < 999
    else:
        assert got == expected


@pytest.mark.parametrize(
    "expression",
    [
        "States.ArrayGetItem($.a, 5)",
        "States.MathAdd($.s, 1)",
        "States.Format('{} {}', $.s)",
        "States.StringToJson($.bad)",
        "States.Hash($.s, 'CRC32')",
        "States.ArrayRange(1, 2000, 1)",
    ],
)
def test_bad_arguments_fail_with_states_runtime(expression: str) -> None:
    d = machine({"P": {"Type": "Pass", "Parameters": {"v.$": expression}, "End": True}})
    result, _, _ = run(d, {"a": [1], "s": "x", "bad": "{"})
    assert result.error == "States.Runtime", result


def test_uuid_and_math_random_are_drawn_in_decide_and_recorded() -> None:
    d = machine(
        {
            "P": {
                "Type": "Pass",
                "Parameters": {"id.$": "States.UUID()", "n.$": "States.MathRandom(0, 1000000)"},
                "Next": "Q",
            },
            "Q": {"Type": "Pass", "Parameters": {"id.$": "States.UUID()", "first.$": "$.id"}, "End": True},
        }
    )
    result, scenario, wf = run(d, {})
    out = result.output
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", out["id"])
    assert out["id"] != out["first"]  # a second draw in the same decision differs
    events = scenario.events("machine", "exec-1")
    again = wf().fold(wf().initial_state(), cast("list[AslEvent]", events))
    assert again.output == out  # folding reads the recorded value
    other, _, _ = run(d, {})
    assert other.output == out  # same execution id and history: decide is deterministic
