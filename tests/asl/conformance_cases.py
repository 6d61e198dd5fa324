"""Definitions, inputs and scripted task results run on both moto and ironflow (test_conformance.py).

Each case: (category, name, definition, input, script, difference). `difference` is None when both
interpreters must agree on status, output, error and cause; "cause: why" when only the cause text may
differ; "disagree: why" when we believe moto is wrong (the reason cites the AWS documentation) or the
behaviour is unverified: such a case is a strict xfail, so it is reported, and noticed if moto changes.
"""

from __future__ import annotations

from typing import Any

L = "arn:aws:lambda:us-east-1:123456789012:function:f"
Case = tuple[str, str, dict[str, Any], Any, dict[str, list[dict[str, Any]]], str | None]


def m(states: dict[str, Any], start: str | None = None) -> dict[str, Any]:
    return {"StartAt": start or next(iter(states)), "States": states}


def pass_(**fields: Any) -> dict[str, Any]:
    return m({"P": {"Type": "Pass", "End": True, **fields}})


def param(expression: str) -> dict[str, Any]:
    return pass_(Parameters={"v.$": expression})


def choice(rule: dict[str, Any]) -> dict[str, Any]:
    return m(
        {
            "C": {"Type": "Choice", "Choices": [{**rule, "Next": "Yes"}], "Default": "No"},
            "Yes": {"Type": "Pass", "Result": "yes", "End": True},
            "No": {"Type": "Pass", "Result": "no", "End": True},
        }
    )


def task(**fields: Any) -> dict[str, Any]:
    extra = fields.pop("states", {})
    return m({"T": {"Type": "Task", "Resource": L, "End": True, **fields}, **extra}, "T")


def ret(*values: Any) -> list[dict[str, Any]]:
    return [{"Return": v} for v in values]


def throw(*errors: str) -> list[dict[str, Any]]:
    return [{"Throw": {"Error": e, "Cause": f"cause of {e}"}} for e in errors]


HANDLED = {"H": {"Type": "Pass", "End": True}}

CASES: list[Case] = [
    # -- pass and data flow
    ("dataflow", "pass-through", pass_(), {"a": 1}, {}, None),
    ("dataflow", "pass-result", pass_(Result={"r": [1, 2]}), {"a": 1}, {}, None),
    ("dataflow", "result-path-field", pass_(Result=5, ResultPath="$.r"), {"a": 1}, {}, None),
    ("dataflow", "result-path-create-nested", pass_(Result=5, ResultPath="$.x.y.z"), {"a": 1}, {}, None),
    ("dataflow", "result-path-null", pass_(Result=5, ResultPath=None), {"a": 1}, {}, None),
    ("dataflow", "result-path-overwrite", pass_(Result=5, ResultPath="$.a"), {"a": 1}, {}, None),
    ("dataflow", "input-path", pass_(InputPath="$.a"), {"a": {"b": 2}}, {}, None),
    ("dataflow", "input-path-null", pass_(InputPath=None), {"a": 1}, {}, None),
    ("dataflow", "output-path", pass_(OutputPath="$.a.b"), {"a": {"b": [3]}}, {}, None),
    ("dataflow", "output-path-null", pass_(OutputPath=None), {"a": 1}, {}, None),
    (
        "dataflow",
        "parameters",
        pass_(Parameters={"x.$": "$.a", "k": "v", "n": {"y.$": "$.b[1]"}}),
        {"a": 1, "b": [5, 6]},
        {},
        None,
    ),
    ("dataflow", "parameters-with-result-path", pass_(Parameters={"x.$": "$.a"}, ResultPath="$.p"), {"a": 1}, {}, None),
    ("dataflow", "parameters-wildcard", pass_(Parameters={"s.$": "$.l[*].s"}), {"l": [{"s": 1}, {"s": 2}]}, {}, None),
    (
        "dataflow",
        "parameters-filter",
        pass_(Parameters={"s.$": "$.l[?(@.n > 1)].s"}),
        {"l": [{"s": "a", "n": 1}, {"s": "b", "n": 2}]},
        {},
        None,
    ),
    (
        "dataflow",
        "context-execution-input",
        pass_(Parameters={"i.$": "$$.Execution.Input", "n.$": "$$.State.Name"}),
        {"a": 1},
        {},
        None,
    ),
    ("dataflow", "array-input", pass_(), [1, 2, 3], {}, None),
    (
        "dataflow",
        "missing-path-fails",
        pass_(Parameters={"x.$": "$.nope"}),
        {"a": 1},
        {},
        "cause: each interpreter words a runtime error's cause its own way",
    ),
    (
        "dataflow",
        "chain-of-passes",
        m(
            {
                "A": {"Type": "Pass", "Result": 1, "ResultPath": "$.a", "Next": "B"},
                "B": {"Type": "Pass", "Result": 2, "ResultPath": "$.b", "End": True},
            }
        ),
        {},
        {},
        None,
    ),
    # -- choice
    ("choice", "string-equals", choice({"Variable": "$.s", "StringEquals": "a"}), {"s": "a"}, {}, None),
    (
        "choice",
        "string-matches",
        choice({"Variable": "$.s", "StringMatches": "log-*.txt"}),
        {"s": "log-7.txt"},
        {},
        None,
    ),
    ("choice", "numeric-gt", choice({"Variable": "$.n", "NumericGreaterThan": 3}), {"n": 4}, {}, None),
    ("choice", "numeric-lte-false", choice({"Variable": "$.n", "NumericLessThanEquals": 3}), {"n": 4}, {}, None),
    ("choice", "numeric-type-mismatch", choice({"Variable": "$.n", "NumericEquals": 3}), {"n": "3"}, {}, None),
    ("choice", "boolean-equals", choice({"Variable": "$.b", "BooleanEquals": False}), {"b": False}, {}, None),
    (
        "choice",
        "timestamp-lt",
        choice({"Variable": "$.t", "TimestampLessThan": "2026-01-01T00:00:00Z"}),
        {"t": "2025-12-31T23:00:00Z"},
        {},
        None,
    ),
    (
        "choice",
        "numeric-equals-path",
        choice({"Variable": "$.a", "NumericEqualsPath": "$.b"}),
        {"a": 2, "b": 2},
        {},
        None,
    ),
    (
        "choice",
        "string-lt-path",
        choice({"Variable": "$.a", "StringLessThanPath": "$.b"}),
        {"a": "a", "b": "b"},
        {},
        None,
    ),
    ("choice", "is-present-false", choice({"Variable": "$.x", "IsPresent": True}), {"y": 1}, {}, None),
    ("choice", "is-null", choice({"Variable": "$.x", "IsNull": True}), {"x": None}, {}, None),
    ("choice", "is-numeric", choice({"Variable": "$.x", "IsNumeric": True}), {"x": 1.5}, {}, None),
    ("choice", "is-string", choice({"Variable": "$.x", "IsString": True}), {"x": 1}, {}, None),
    ("choice", "is-boolean", choice({"Variable": "$.x", "IsBoolean": True}), {"x": True}, {}, None),
    (
        "choice",
        "is-timestamp",
        choice({"Variable": "$.x", "IsTimestamp": True}),
        {"x": "2026-01-01T00:00:00Z"},
        {},
        None,
    ),
    (
        "choice",
        "and",
        choice({"And": [{"Variable": "$.a", "NumericGreaterThan": 0}, {"Variable": "$.a", "NumericLessThan": 10}]}),
        {"a": 5},
        {},
        None,
    ),
    (
        "choice",
        "or",
        choice({"Or": [{"Variable": "$.a", "StringEquals": "x"}, {"Variable": "$.a", "StringEquals": "y"}]}),
        {"a": "y"},
        {},
        None,
    ),
    ("choice", "not", choice({"Not": {"Variable": "$.a", "StringEquals": "x"}}), {"a": "x"}, {}, None),
    (
        "choice",
        "no-match-no-default",
        m(
            {
                "C": {"Type": "Choice", "Choices": [{"Variable": "$.a", "NumericEquals": 1, "Next": "S"}]},
                "S": {"Type": "Succeed"},
            }
        ),
        {"a": 2},
        {},
        "disagree: moto fails with States.Runtime; AWS documents States.NoChoiceMatched for a Choice state "
        "that matches no rule and has no Default (concepts-error-handling, 'States.NoChoiceMatched')",
    ),
    (
        "choice",
        "choice-output-path",
        m(
            {
                "C": {
                    "Type": "Choice",
                    "OutputPath": "$.v",
                    "Choices": [{"Variable": "$.v", "NumericEquals": 1, "Next": "S"}],
                },
                "S": {"Type": "Succeed"},
            }
        ),
        {"v": 1, "w": 2},
        {},
        None,
    ),
    (
        "choice",
        "indexed-variable",
        m(
            {
                "P": {"Type": "Pass", "Result": {"r": [{"d": 2}, {"d": 4}]}, "Next": "C"},
                "C": {
                    "Type": "Choice",
                    "Choices": [{"Variable": "$.r[1].d", "NumericEquals": 4, "Next": "S"}],
                    "Default": "F",
                },
                "S": {"Type": "Succeed"},
                "F": {"Type": "Fail", "Error": "NoMatch"},
            }
        ),
        {},
        {},
        "disagree: moto does not match $.r[1].d NumericEquals 4 though the value is 4 (it matches $.d); the "
        "Variable is a Path selecting one value (states-language.net/spec.html#choice-state), so it matches",
    ),
    # -- wait, succeed, fail
    (
        "wait",
        "wait-seconds",
        m({"W": {"Type": "Wait", "Seconds": 1, "Next": "S"}, "S": {"Type": "Succeed"}}),
        {"a": 1},
        {},
        None,
    ),
    (
        "wait",
        "wait-seconds-path",
        m({"W": {"Type": "Wait", "SecondsPath": "$.s", "Next": "S"}, "S": {"Type": "Succeed"}}),
        {"s": 1},
        {},
        None,
    ),
    (
        "wait",
        "wait-timestamp-past",
        m({"W": {"Type": "Wait", "Timestamp": "2020-01-01T00:00:00Z", "Next": "S"}, "S": {"Type": "Succeed"}}),
        {"a": 1},
        {},
        None,
    ),
    (
        "wait",
        "wait-timestamp-path",
        m({"W": {"Type": "Wait", "TimestampPath": "$.t", "OutputPath": "$.t", "Next": "S"}, "S": {"Type": "Succeed"}}),
        {"t": "2020-01-01T00:00:00Z"},
        {},
        None,
    ),
    (
        "succeed",
        "succeed-paths",
        m({"S": {"Type": "Succeed", "InputPath": "$.a", "OutputPath": "$.b"}}),
        {"a": {"b": 7}},
        {},
        None,
    ),
    ("fail", "fail-error-cause", m({"F": {"Type": "Fail", "Error": "Custom", "Cause": "why"}}), {}, {}, None),
    (
        "fail",
        "fail-error-path",
        m({"F": {"Type": "Fail", "ErrorPath": "$.e", "CausePath": "$.c"}}),
        {"e": "E1", "c": "C1"},
        {},
        None,
    ),
    (
        "fail",
        "fail-cause-intrinsic",
        m({"F": {"Type": "Fail", "Error": "E", "CausePath": "States.Format('n={}', $.n)"}}),
        {"n": 3},
        {},
        None,
    ),
    # -- intrinsics
    ("intrinsic", "format", param("States.Format('Hi {}, {}', $.a, $.b)"), {"a": "x", "b": 2}, {}, None),
    (
        "intrinsic",
        "format-json-arg",
        param("States.Format('v={}', $.o)"),
        {"o": [1, True]},
        {},
        "disagree: moto renders a JSON argument with Python's spaced separators ('[1, true]'); we render it "
        "compact, as States.JsonToString does. Unverified against AWS: its documentation has no such example",
    ),
    ("intrinsic", "string-to-json", param("States.StringToJson($.s)"), {"s": '{"a":[1]}'}, {}, None),
    ("intrinsic", "json-to-string", param("States.JsonToString($.o)"), {"o": {"a": [1, "x"]}}, {}, None),
    ("intrinsic", "array", param("States.Array($.a, 'x', 2)"), {"a": 1}, {}, None),
    ("intrinsic", "array-partition", param("States.ArrayPartition($.a, 2)"), {"a": [1, 2, 3]}, {}, None),
    ("intrinsic", "array-contains", param("States.ArrayContains($.a, $.v)"), {"a": [1, 2], "v": 2}, {}, None),
    ("intrinsic", "array-range", param("States.ArrayRange(1, 9, 2)"), {}, {}, None),
    ("intrinsic", "array-get-item", param("States.ArrayGetItem($.a, 1)"), {"a": ["p", "q"]}, {}, None),
    ("intrinsic", "array-length", param("States.ArrayLength($.a)"), {"a": [1, 2, 3]}, {}, None),
    ("intrinsic", "array-unique", param("States.ArrayUnique($.a)"), {"a": [1, 1, 2]}, {}, None),
    ("intrinsic", "base64", param("States.Base64Decode(States.Base64Encode($.s))"), {"s": "hello"}, {}, None),
    ("intrinsic", "base64-encode", param("States.Base64Encode($.s)"), {"s": "Data to encode"}, {}, None),
    ("intrinsic", "hash-sha256", param("States.Hash($.s, 'SHA-256')"), {"s": "input data"}, {}, None),
    ("intrinsic", "hash-md5", param("States.Hash($.s, 'MD5')"), {"s": "input data"}, {}, None),
    (
        "intrinsic",
        "json-merge",
        param("States.JsonMerge($.a, $.b, false)"),
        {"a": {"x": 1, "y": {"p": 1}}, "b": {"y": {"q": 2}}},
        {},
        None,
    ),
    ("intrinsic", "math-add", param("States.MathAdd($.n, -3)"), {"n": 10}, {}, None),
    ("intrinsic", "string-split", param("States.StringSplit($.s, ',')"), {"s": "a,b,c"}, {}, None),
    ("intrinsic", "nested-call", param("States.ArrayLength(States.StringSplit($.s, '-'))"), {"s": "a-b-c-d"}, {}, None),
    (
        "intrinsic",
        "bad-argument",
        param("States.ArrayGetItem($.a, 9)"),
        {"a": [1]},
        {},
        "cause: each interpreter words a runtime error's cause its own way",
    ),
    # -- tasks, retry, catch
    ("task", "task-result", task(), {"a": 1}, {"T": ret({"r": 1})}, None),
    (
        "task",
        "task-result-selector-path",
        task(Parameters={"x.$": "$.a"}, ResultSelector={"r.$": "$.r"}, ResultPath="$.out", OutputPath="$.out"),
        {"a": 1},
        {"T": ret({"r": 9, "junk": 0})},
        None,
    ),
    ("task", "task-fails", task(), {}, {"T": throw("Boom")}, None),
    (
        "retry",
        "retry-then-succeed",
        task(Retry=[{"ErrorEquals": ["E"], "IntervalSeconds": 1, "MaxAttempts": 2}]),
        {},
        {"T": [*throw("E"), *ret("ok")]},
        None,
    ),
    (
        "retry",
        "retry-exhausted",
        task(Retry=[{"ErrorEquals": ["E"], "IntervalSeconds": 1, "MaxAttempts": 1}]),
        {},
        {"T": throw("E", "E")},
        None,
    ),
    (
        "retry",
        "retry-max-attempts-zero",
        task(Retry=[{"ErrorEquals": ["States.ALL"], "MaxAttempts": 0}]),
        {},
        {"T": [*throw("E"), *ret("never")]},
        None,
    ),
    (
        "retry",
        "retry-first-match-only",
        task(Retry=[{"ErrorEquals": ["E"], "MaxAttempts": 0}, {"ErrorEquals": ["States.ALL"], "IntervalSeconds": 1}]),
        {},
        {"T": [*throw("E"), *ret("x")]},
        None,
    ),
    (
        "retry",
        "retry-task-failed-wildcard",
        task(Retry=[{"ErrorEquals": ["States.TaskFailed"], "IntervalSeconds": 1, "MaxAttempts": 1}]),
        {},
        {"T": [*throw("Any"), *ret("second")]},
        None,
    ),
    (
        "retry",
        "retry-separate-counters",
        task(
            Retry=[
                {"ErrorEquals": ["A"], "IntervalSeconds": 1, "MaxAttempts": 1},
                {"ErrorEquals": ["B"], "IntervalSeconds": 1, "MaxAttempts": 1},
            ]
        ),
        {},
        {"T": [*throw("A", "B"), *ret("third")]},
        None,
    ),
    (
        "catch",
        "catch-all",
        task(Catch=[{"ErrorEquals": ["States.ALL"], "Next": "H"}], states=HANDLED),
        {"a": 1},
        {"T": throw("E")},
        None,
    ),
    (
        "catch",
        "catch-result-path",
        task(Catch=[{"ErrorEquals": ["E"], "ResultPath": "$.err", "Next": "H"}], states=HANDLED),
        {"a": 1},
        {"T": throw("E")},
        None,
    ),
    (
        "catch",
        "catch-order",
        task(
            Catch=[
                {"ErrorEquals": ["X"], "Next": "F"},
                {"ErrorEquals": ["States.TaskFailed"], "ResultPath": "$.e", "Next": "H"},
            ],
            states={**HANDLED, "F": {"Type": "Fail"}},
        ),
        {},
        {"T": throw("E")},
        None,
    ),
    (
        "catch",
        "catch-no-match",
        task(Catch=[{"ErrorEquals": ["X"], "Next": "H"}], states=HANDLED),
        {},
        {"T": throw("E")},
        None,
    ),
    (
        "catch",
        "retry-then-catch",
        task(
            Retry=[{"ErrorEquals": ["E"], "IntervalSeconds": 1, "MaxAttempts": 1}],
            Catch=[{"ErrorEquals": ["E"], "ResultPath": "$.e", "Next": "H"}],
            states=HANDLED,
        ),
        {"k": 1},
        {"T": throw("E", "E")},
        None,
    ),
    # -- parallel and map
    (
        "parallel",
        "parallel-two-branches",
        m(
            {
                "P": {
                    "Type": "Parallel",
                    "End": True,
                    "Branches": [
                        m({"A": {"Type": "Pass", "Result": 1, "End": True}}),
                        m({"B": {"Type": "Pass", "InputPath": "$.x", "End": True}}),
                    ],
                }
            }
        ),
        {"x": 2},
        {},
        None,
    ),
    (
        "parallel",
        "parallel-result-path-selector",
        m(
            {
                "P": {
                    "Type": "Parallel",
                    "End": True,
                    "ResultSelector": {"first.$": "$[0]"},
                    "ResultPath": "$.r",
                    "Branches": [
                        m({"A": {"Type": "Pass", "Result": "a", "End": True}}),
                        m({"B": {"Type": "Pass", "Result": "b", "End": True}}),
                    ],
                }
            }
        ),
        {"x": 1},
        {},
        None,
    ),
    (
        "parallel",
        "parallel-branch-fails-caught",
        m(
            {
                "P": {
                    "Type": "Parallel",
                    "Next": "H",
                    "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "H"}],
                    "Branches": [
                        m({"A": {"Type": "Pass", "End": True}}),
                        m({"F": {"Type": "Fail", "Error": "BranchErr", "Cause": "c"}}),
                    ],
                },
                **HANDLED,
            }
        ),
        {},
        {},
        None,
    ),
    (
        "parallel",
        "parallel-with-tasks",
        m(
            {
                "P": {
                    "Type": "Parallel",
                    "End": True,
                    "Branches": [
                        m({"T": {"Type": "Task", "Resource": L, "End": True}}),
                        m({"U": {"Type": "Task", "Resource": L, "End": True}}),
                    ],
                }
            }
        ),
        {},
        {"T": ret("t"), "U": ret("u")},
        None,
    ),
    (
        "map",
        "map-simple",
        m(
            {
                "M": {
                    "Type": "Map",
                    "End": True,
                    "Iterator": m({"X": {"Type": "Pass", "Parameters": {"v.$": "$"}, "End": True}}),
                }
            }
        ),
        [1, 2, 3],
        {},
        None,
    ),
    (
        "map",
        "map-items-path-selector",
        m(
            {
                "M": {
                    "Type": "Map",
                    "End": True,
                    "ItemsPath": "$.items",
                    "ItemSelector": {"i.$": "$$.Map.Item.Index", "v.$": "$$.Map.Item.Value", "k.$": "$.k"},
                    "ItemProcessor": m({"X": {"Type": "Pass", "End": True}}),
                    "ResultPath": "$.out",
                }
            }
        ),
        {"items": ["a", "b"], "k": 0},
        {},
        None,
    ),
    (
        "map",
        "map-parameters-legacy",
        m(
            {
                "M": {
                    "Type": "Map",
                    "End": True,
                    "Parameters": {"v.$": "$$.Map.Item.Value"},
                    "Iterator": m({"X": {"Type": "Pass", "End": True}}),
                }
            }
        ),
        [7, 8],
        {},
        None,
    ),
    (
        "map",
        "map-max-concurrency",
        m(
            {
                "M": {
                    "Type": "Map",
                    "End": True,
                    "MaxConcurrency": 1,
                    "Iterator": m({"T": {"Type": "Task", "Resource": L, "End": True}}),
                }
            }
        ),
        [1, 2, 3],
        {"T": ret("done")},
        None,
    ),
    (
        "map",
        "map-sequential",
        m(
            {
                "M": {
                    "Type": "Map",
                    "MaxConcurrency": 1,
                    "ItemsPath": "$.items",
                    "Iterator": m({"X": {"Type": "Pass", "Parameters": {"d.$": "States.MathAdd($, $)"}, "End": True}}),
                    "ResultPath": "$.r",
                    "Next": "C",
                },
                "C": {"Type": "Choice", "Choices": [{"Variable": "$.r[1].d", "IsPresent": True, "Next": "S"}]},
                "S": {"Type": "Succeed"},
            }
        ),
        {"items": [1, 2]},
        {},
        None,
    ),
    (
        "map",
        "map-empty",
        m({"M": {"Type": "Map", "End": True, "Iterator": m({"X": {"Type": "Pass", "End": True}})}}),
        [],
        {},
        None,
    ),
    (
        "map",
        "map-iteration-fails",
        m(
            {
                "M": {
                    "Type": "Map",
                    "End": True,
                    "Iterator": m(
                        {
                            "C": {
                                "Type": "Choice",
                                "Choices": [{"Variable": "$", "NumericEquals": 2, "Next": "F"}],
                                "Default": "S",
                            },
                            "F": {"Type": "Fail", "Error": "Two"},
                            "S": {"Type": "Succeed"},
                        }
                    ),
                }
            }
        ),
        [1, 2, 3],
        {},
        None,
    ),
    (
        "map",
        "map-result-selector",
        m(
            {
                "M": {
                    "Type": "Map",
                    "End": True,
                    "ResultSelector": {"n.$": "States.ArrayLength($)"},
                    "Iterator": m({"X": {"Type": "Pass", "End": True}}),
                }
            }
        ),
        [1, 2],
        {},
        None,
    ),
]
