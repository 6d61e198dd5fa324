"""StateMachine.parse rejects a bad definition with the JSON pointer of the offending field."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ironflow_py.asl import AslValidationError, StateMachine

TASK = "arn:aws:lambda:us-east-1:123456789012:function:f"


def _bad(definition: Any, pointer: str, words: str) -> None:
    with pytest.raises(AslValidationError) as info:
        StateMachine.parse(definition)
    assert info.value.pointer == pointer
    assert words in str(info.value)
    assert str(info.value).startswith(f"{pointer or '/'}: ")


def test_a_missing_next_names_the_next_field() -> None:
    _bad({"StartAt": "A", "States": {"A": {"Type": "Pass"}}}, "/States/A/Next", "needs Next")


def test_a_next_that_names_no_state() -> None:
    d = {"StartAt": "Charge", "States": {"Charge": {"Type": "Task", "Resource": TASK, "Next": "Nope"}}}
    _bad(d, "/States/Charge/Next", 'state "Nope" does not exist')


def test_an_unknown_state_type() -> None:
    _bad({"StartAt": "A", "States": {"A": {"Type": "Sleep", "End": True}}}, "/States/A/Type", "unknown state type")


def test_states_all_must_be_the_last_catcher() -> None:
    d = {
        "StartAt": "T",
        "States": {
            "T": {
                "Type": "Task",
                "Resource": TASK,
                "End": True,
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "F"}, {"ErrorEquals": ["X"], "Next": "F"}],
            },
            "F": {"Type": "Fail"},
        },
    }
    _bad(d, "/States/T/Catch/0/ErrorEquals", "States.ALL must be in the last")


def test_states_all_must_be_the_last_retrier_and_alone() -> None:
    retry = [{"ErrorEquals": ["States.ALL", "X"]}]
    d = {"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": TASK, "End": True, "Retry": retry}}}
    _bad(d, "/States/T/Retry/0/ErrorEquals", "must appear alone")


@pytest.mark.parametrize(
    ("definition", "pointer", "words"),
    [
        ({"States": {"A": {"Type": "Succeed"}}}, "/StartAt", "name of a state"),
        ({"StartAt": "B", "States": {"A": {"Type": "Succeed"}}}, "/StartAt", 'state "B" does not exist'),
        ({"StartAt": "A", "States": {}}, "/States", "non-empty"),
        (
            {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True, "Bogus": 1}}},
            "/States/A/Bogus",
            "not allowed",
        ),
        ({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "A", "End": True}}}, "/States/A/End", "not both"),
        ({"StartAt": "A", "States": {"A": {"Type": "Choice", "Choices": []}}}, "/States/A/Choices", "non-empty"),
        (
            {
                "StartAt": "A",
                "States": {"A": {"Type": "Choice", "Choices": [{"Variable": "$.x", "Next": "A"}]}},
            },
            "/States/A/Choices/0",
            "exactly one operator",
        ),
        (
            {
                "StartAt": "A",
                "States": {
                    "A": {"Type": "Choice", "Choices": [{"Variable": "$.x", "NumericEquals": "1", "Next": "A"}]}
                },
            },
            "/States/A/Choices/0/NumericEquals",
            "must be a number",
        ),
        (
            {"StartAt": "A", "States": {"A": {"Type": "Choice", "Choices": [{"Variable": "$.x", "IsNull": True}]}}},
            "/States/A/Choices/0/Next",
            "name of a state",
        ),
        ({"StartAt": "A", "States": {"A": {"Type": "Wait", "End": True}}}, "/States/A", "exactly one of Seconds"),
        (
            {"StartAt": "A", "States": {"A": {"Type": "Wait", "Timestamp": "tomorrow", "End": True}}},
            "/States/A/Timestamp",
            "RFC 3339",
        ),
        (
            {"StartAt": "A", "States": {"A": {"Type": "Pass", "ResultPath": "$.a[*]", "End": True}}},
            "/States/A/ResultPath",
            "reference path",
        ),
        (
            {"StartAt": "A", "States": {"A": {"Type": "Pass", "InputPath": "a.b", "End": True}}},
            "/States/A/InputPath",
            "must start with",
        ),
        (
            {"StartAt": "A", "States": {"A": {"Type": "Pass", "Parameters": {"x.$": "States.Nope()"}, "End": True}}},
            "/States/A/Parameters/x.$",
            "unknown function",
        ),
        ({"StartAt": "A", "States": {"A": {"Type": "Task", "End": True}}}, "/States/A/Resource", "Resource"),
        (
            {
                "StartAt": "A",
                "States": {
                    "A": {
                        "Type": "Task",
                        "Resource": TASK,
                        "End": True,
                        "Retry": [{"ErrorEquals": ["X"], "BackoffRate": 0.5}],
                    }
                },
            },
            "/States/A/Retry/0/BackoffRate",
            ">= 1.0",
        ),
        (
            {
                "StartAt": "P",
                "States": {
                    "P": {
                        "Type": "Parallel",
                        "End": True,
                        "Branches": [{"StartAt": "X", "States": {"X": {"Type": "Pass"}}}],
                    }
                },
            },
            "/States/P/Branches/0/States/X/Next",
            "needs Next",
        ),
        (
            {
                "StartAt": "M",
                "States": {
                    "M": {
                        "Type": "Map",
                        "End": True,
                        "ItemProcessor": {"StartAt": "X", "States": {"X": {"Type": "Bogus"}}},
                    }
                },
            },
            "/States/M/ItemProcessor/States/X/Type",
            "unknown state type",
        ),
        ({"StartAt": "A/B", "States": {"A/B": {"Type": "Pass", "Next": "C"}}}, "/States/A~1B/Next", "does not exist"),
        (
            {
                "StartAt": "M",
                "States": {
                    "M": {
                        "Type": "Map",
                        "End": True,
                        "ToleratedFailureCount": 1,
                        "Iterator": {"StartAt": "X", "States": {"X": {"Type": "Succeed"}}},
                    }
                },
            },
            "/States/M/ToleratedFailureCount",
            "not supported",
        ),
    ],
)
def test_each_rule_names_its_pointer(definition: Any, pointer: str, words: str) -> None:
    _bad(definition, pointer, words)


def test_json_text_is_accepted_and_bad_json_is_an_error() -> None:
    assert StateMachine.parse(json.dumps({"StartAt": "A", "States": {"A": {"Type": "Succeed"}}})).start_at == "A"
    _bad("{not json", "", "not valid JSON")


def test_nested_machines_are_indexed_by_machine_path() -> None:
    d = {
        "StartAt": "P",
        "States": {
            "P": {
                "Type": "Parallel",
                "Next": "M",
                "Branches": [{"StartAt": "X", "States": {"X": {"Type": "Succeed"}}}] * 2,
            },
            "M": {"Type": "Map", "End": True, "Iterator": {"StartAt": "Y", "States": {"Y": {"Type": "Succeed"}}}},
        },
    }
    m = StateMachine.parse(d)
    assert sorted(m.machines) == ["", "/M/it", "/P/0", "/P/1"]
    assert m.state("/M/it", "Y").type == "Succeed"
