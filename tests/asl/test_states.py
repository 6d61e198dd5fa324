"""Each state type and data-flow rule, run in memory (Scenario) or as one decision (WorkflowSpec)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ironflow_py import Timer
from ironflow_py.asl import AslWorkflow, StateMachine, execution_result
from ironflow_py.asl._model import (
    ExecutionStarted,
    ExecutionSucceeded,
    StateEntered,
    StateExited,
    TaskScheduled,
    WaitStarted,
)
from ironflow_py.testing import WorkflowSpec, check_replay_determinism
from tests.asl.helpers import LAMBDA, machine, run

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _ok(definition: dict[str, Any], input: Any = None, **kw: Any) -> Any:
    result, _, _ = run(definition, input, **kw)
    assert result.status == "succeeded", result
    return result.output


def _failed(definition: dict[str, Any], input: Any = None, **kw: Any) -> tuple[str | None, str | None]:
    result, _, _ = run(definition, input, **kw)
    assert result.status == "failed", result
    return result.error, result.cause


# -- Pass and the data-flow filters --------------------------------------------------------------------


def test_pass_with_result_at_a_result_path_creates_missing_fields() -> None:
    d = machine({"P": {"Type": "Pass", "Result": {"v": 1}, "ResultPath": "$.a.b.c", "End": True}})
    assert _ok(d, {"x": 1}) == {"x": 1, "a": {"b": {"c": {"v": 1}}}}


def test_result_path_null_keeps_the_input_and_discards_the_result() -> None:
    d = machine({"P": {"Type": "Pass", "Result": 5, "ResultPath": None, "End": True}})
    assert _ok(d, {"x": 1}) == {"x": 1}


def test_input_path_parameters_and_output_path() -> None:
    d = machine(
        {
            "P": {
                "Type": "Pass",
                "InputPath": "$.order",
                "Parameters": {"id.$": "$.id", "fixed": "yes", "nested": {"n.$": "$.lines[0].sku"}, "all.$": "$"},
                "ResultPath": "$.picked",
                "OutputPath": "$.picked",
                "End": True,
            }
        }
    )
    order = {"id": "o1", "lines": [{"sku": "a"}]}
    assert _ok(d, {"order": order}) == {"id": "o1", "fixed": "yes", "nested": {"n": "a"}, "all": order}


def test_null_input_path_and_output_path_give_empty_objects() -> None:
    assert _ok(machine({"P": {"Type": "Pass", "InputPath": None, "End": True}}), {"x": 1}) == {}
    assert _ok(machine({"P": {"Type": "Pass", "OutputPath": None, "End": True}}), {"x": 1}) == {}


def test_any_json_value_is_an_input_and_an_output() -> None:
    for value in (3, "s", [1, 2], None, True):
        assert _ok(machine({"P": {"Type": "Pass", "End": True}}), value if value is not None else None) == (
            value if value is not None else {}
        )


def test_context_object_paths() -> None:
    d = machine(
        {
            "P": {
                "Type": "Pass",
                "Parameters": {
                    "name.$": "$$.Execution.Name",
                    "input.$": "$$.Execution.Input",
                    "state.$": "$$.State.Name",
                    "retries.$": "$$.State.RetryCount",
                    "entered.$": "$$.State.EnteredTime",
                },
                "End": True,
            }
        }
    )
    out = _ok(d, {"k": 1})
    assert out["name"] == "exec-1" and out["input"] == {"k": 1} and out["state"] == "P" and out["retries"] == 0
    assert out["entered"].endswith("Z")


def test_a_definite_path_that_matches_nothing_is_states_runtime() -> None:
    d = machine({"P": {"Type": "Pass", "Parameters": {"x.$": "$.missing"}, "End": True}})
    error, cause = _failed(d, {"a": 1})
    assert error == "States.Runtime" and "$.missing" in (cause or "")


def test_an_indefinite_path_yields_a_list() -> None:
    d = machine(
        {
            "P": {
                "Type": "Pass",
                "Parameters": {"skus.$": "$.lines[*].sku", "big.$": "$.lines[?(@.n > 1)].sku"},
                "End": True,
            }
        }
    )
    assert _ok(d, {"lines": [{"sku": "a", "n": 1}, {"sku": "b", "n": 2}]}) == {"skus": ["a", "b"], "big": ["b"]}


def test_result_path_through_a_non_object_is_states_runtime() -> None:
    d = machine({"P": {"Type": "Pass", "Result": 1, "ResultPath": "$.a.b", "End": True}})
    assert _failed(d, {"a": 5})[0] == "States.Runtime"


def test_output_over_256_kib_is_data_limit_exceeded_and_not_caught_by_states_all() -> None:
    d = machine(
        {
            "T": {
                "Type": "Task",
                "Resource": LAMBDA,
                "End": True,
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}],
            },
            "Caught": {"Type": "Succeed"},
        }
    )
    error, _ = _failed(d, {"x": 1}, script={"T": [{"Return": "x" * (256 * 1024 + 1)}]})
    assert error == "States.DataLimitExceeded"


# -- Task ----------------------------------------------------------------------------------------------


def test_task_result_selector_result_path_output_path() -> None:
    d = machine(
        {
            "T": {
                "Type": "Task",
                "Resource": LAMBDA,
                "Parameters": {"amount.$": "$.total"},
                "ResultSelector": {"id.$": "$.charge.id", "const": 1},
                "ResultPath": "$.payment",
                "End": True,
            }
        }
    )
    out = _ok(d, {"total": 20}, script={"T": [{"Return": {"charge": {"id": "ch_1"}, "noise": True}}]})
    assert out == {"total": 20, "payment": {"id": "ch_1", "const": 1}}


def test_task_gets_its_effective_input_and_the_token() -> None:
    d = machine(
        {"T": {"Type": "Task", "Resource": LAMBDA, "Parameters": {"tok.$": "$$.Task.Token", "a": 1}, "End": True}}
    )
    out = _ok(d, {})
    assert out["a"] == 1 and out["tok"].startswith("t")


def test_task_failure_without_a_catcher_fails_the_execution_with_error_and_cause() -> None:
    d = machine({"T": {"Type": "Task", "Resource": LAMBDA, "End": True}})
    assert _failed(d, script={"T": [{"Throw": {"Error": "Payment.Declined", "Cause": "card"}}]}) == (
        "Payment.Declined",
        "card",
    )


def test_a_handler_exception_fails_the_task_with_its_class_name() -> None:
    from ironflow_py.asl import TaskRegistry
    from ironflow_py.testing import Scenario

    tasks = TaskRegistry()

    @tasks.resource(LAMBDA)
    def boom(payload: Any, ctx: Any) -> Any:
        raise ValueError("bad value")

    wf = AslWorkflow.define("m", machine({"T": {"Type": "Task", "Resource": LAMBDA, "End": True}}))
    s = Scenario(wf, effects=tasks.effects())
    s.send(wf.StartExecution("e", {}))
    r = execution_result(s.state("m", "e"))
    assert (r.status, r.error, r.cause) == ("failed", "ValueError", "bad value")
    assert [e.status for e in s.effects("m", "e")] == ["done"]  # fed back once, never retried by the runtime


def test_catch_order_states_task_failed_and_error_output_at_result_path() -> None:
    d = machine(
        {
            "T": {
                "Type": "Task",
                "Resource": LAMBDA,
                "End": True,
                "Catch": [
                    {"ErrorEquals": ["Other"], "Next": "Wrong"},
                    {"ErrorEquals": ["States.TaskFailed"], "ResultPath": "$.err", "Next": "Handled"},
                    {"ErrorEquals": ["States.ALL"], "Next": "Wrong"},
                ],
            },
            "Wrong": {"Type": "Fail", "Error": "Wrong"},
            "Handled": {"Type": "Pass", "End": True},
        }
    )
    out = _ok(d, {"x": 1}, script={"T": [{"Throw": {"Error": "Boom", "Cause": "why"}}]})
    assert out == {"x": 1, "err": {"Error": "Boom", "Cause": "why"}}


def test_catch_without_result_path_replaces_the_input_with_the_error_output() -> None:
    d = machine(
        {
            "T": {
                "Type": "Task",
                "Resource": LAMBDA,
                "End": True,
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "H"}],
            },
            "H": {"Type": "Pass", "End": True},
        }
    )
    assert _ok(d, {"x": 1}, script={"T": [{"Throw": {"Error": "E", "Cause": "c"}}]}) == {"Error": "E", "Cause": "c"}


def test_task_timeout_is_a_durable_timer_and_states_timeout() -> None:
    d = machine(
        {
            "T": {
                "Type": "Task",
                "Resource": "arn:never-answers",
                "TimeoutSeconds": 30,
                "End": True,
                "Catch": [
                    {"ErrorEquals": ["States.TaskFailed"], "Next": "Wrong"},
                    {"ErrorEquals": ["States.Timeout"], "Next": "TimedOut"},
                ],
            },
            "Wrong": {"Type": "Fail"},
            "TimedOut": {"Type": "Pass", "Result": "timed out", "End": True},
        }
    )
    wf = AslWorkflow.define("m", d)
    from ironflow_py.testing import Scenario

    s = Scenario(wf)  # no handler: the task effect stays pending
    s.send(wf.StartExecution("e", {}))
    assert [t.key for t in s.timers("m", "e")] == ["timeout:t2"]
    s.advance(timedelta(seconds=29))
    assert execution_result(s.state("m", "e")).status == "running"
    s.advance(timedelta(seconds=1))
    assert execution_result(s.state("m", "e")).output == "timed out"
    late = s.send(wf.TaskResult("e", "t2", output=1))
    assert late.status.value == "already_completed"


def test_heartbeat_timeout_fires_unless_a_heartbeat_arrives() -> None:
    from ironflow_py.testing import Scenario

    d = machine({"T": {"Type": "Task", "Resource": "arn:slow", "HeartbeatSeconds": 10, "End": True}})
    wf = AslWorkflow.define("m", d)
    s = Scenario(wf)
    s.send(wf.StartExecution("e", {}))
    s.advance(timedelta(seconds=8))
    s.send(wf.TaskHeartbeat("e", "t2"))
    s.advance(timedelta(seconds=8))
    assert execution_result(s.state("m", "e")).status == "running"
    s.advance(timedelta(seconds=2))
    assert execution_result(s.state("m", "e")).error == "States.HeartbeatTimeout"


# -- Choice --------------------------------------------------------------------------------------------

CHOICE_CASES: list[tuple[dict[str, Any], Any, bool]] = [
    ({"Variable": "$.s", "StringEquals": "a"}, {"s": "a"}, True),
    ({"Variable": "$.s", "StringLessThan": "b"}, {"s": "a"}, True),
    ({"Variable": "$.s", "StringGreaterThanEquals": "b"}, {"s": "a"}, False),
    ({"Variable": "$.s", "StringMatches": "log-*.txt"}, {"s": "log-1.txt"}, True),
    ({"Variable": "$.s", "StringMatches": "a\\*b"}, {"s": "a*b"}, True),
    ({"Variable": "$.s", "StringMatches": "a\\*b"}, {"s": "axb"}, False),
    ({"Variable": "$.n", "NumericEquals": 1}, {"n": 1.0}, True),
    ({"Variable": "$.n", "NumericGreaterThan": 1}, {"n": "2"}, False),  # a string is not a number
    ({"Variable": "$.n", "NumericLessThanEquals": 1}, {"n": 1}, True),
    ({"Variable": "$.b", "BooleanEquals": True}, {"b": True}, True),
    ({"Variable": "$.b", "BooleanEquals": True}, {"b": 1}, False),
    ({"Variable": "$.t", "TimestampLessThan": "2026-01-02T00:00:00Z"}, {"t": "2026-01-01T23:59:59+00:00"}, True),
    ({"Variable": "$.t", "TimestampEquals": "2026-01-01T00:00:00Z"}, {"t": "2026-01-01T01:00:00+01:00"}, True),
    ({"Variable": "$.a", "NumericEqualsPath": "$.b"}, {"a": 2, "b": 2}, True),
    ({"Variable": "$.a", "StringGreaterThanPath": "$.b"}, {"a": "b", "b": "a"}, True),
    (
        {"Variable": "$.a", "TimestampGreaterThanEqualsPath": "$.b"},
        {"a": "2026-01-01T00:00:00Z", "b": "2025-01-01T00:00:00Z"},
        True,
    ),
    ({"Variable": "$.a", "BooleanEqualsPath": "$.b"}, {"a": False, "b": False}, True),
    ({"Variable": "$.x", "IsPresent": True}, {"y": 1}, False),
    ({"Variable": "$.x", "IsPresent": False}, {"y": 1}, True),
    ({"Variable": "$.x", "IsNull": True}, {"x": None}, True),
    ({"Variable": "$.x", "IsNumeric": True}, {"x": True}, False),
    ({"Variable": "$.x", "IsString": True}, {"x": "s"}, True),
    ({"Variable": "$.x", "IsBoolean": True}, {"x": False}, True),
    ({"Variable": "$.x", "IsTimestamp": True}, {"x": "2026-01-01T00:00:00Z"}, True),
    ({"Variable": "$.x", "IsTimestamp": True}, {"x": "2026-01-01"}, False),
    (
        {"And": [{"Variable": "$.a", "NumericGreaterThan": 0}, {"Variable": "$.a", "NumericLessThan": 10}]},
        {"a": 5},
        True,
    ),
    ({"Or": [{"Variable": "$.a", "StringEquals": "x"}, {"Variable": "$.a", "StringEquals": "y"}]}, {"a": "z"}, False),
    ({"Not": {"Variable": "$.a", "StringEquals": "x"}}, {"a": "z"}, True),
]


@pytest.mark.parametrize(("rule", "data", "matched"), CHOICE_CASES)
def test_choice_operator(rule: dict[str, Any], data: Any, matched: bool) -> None:
    d = machine(
        {
            "C": {"Type": "Choice", "Choices": [{**rule, "Next": "Yes"}], "Default": "No"},
            "Yes": {"Type": "Pass", "Result": "yes", "End": True},
            "No": {"Type": "Pass", "Result": "no", "End": True},
        }
    )
    assert _ok(d, data) == ("yes" if matched else "no")


def test_no_choice_matched_without_default() -> None:
    d = machine(
        {
            "C": {"Type": "Choice", "Choices": [{"Variable": "$.a", "NumericEquals": 1, "Next": "S"}]},
            "S": {"Type": "Succeed"},
        }
    )
    assert _failed(d, {"a": 2})[0] == "States.NoChoiceMatched"


def test_choice_on_a_missing_variable_is_states_runtime() -> None:
    d = machine(
        {
            "C": {"Type": "Choice", "Choices": [{"Variable": "$.a", "NumericEquals": 1, "Next": "S"}], "Default": "S"},
            "S": {"Type": "Succeed"},
        }
    )
    assert _failed(d, {"b": 2})[0] == "States.Runtime"


def test_choice_output_path_and_input_path() -> None:
    d = machine(
        {
            "C": {
                "Type": "Choice",
                "InputPath": "$.in",
                "OutputPath": "$.v",
                "Choices": [{"Variable": "$.v", "IsPresent": True, "Next": "S"}],
            },
            "S": {"Type": "Succeed"},
        }
    )
    assert _ok(d, {"in": {"v": 7}}) == 7


# -- Wait, Succeed, Fail -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wait", "input", "seconds"),
    [
        ({"Seconds": 10}, {}, 10),
        ({"SecondsPath": "$.s"}, {"s": 25}, 25),
        ({"Timestamp": "2026-01-01T00:01:00Z"}, {}, 60),
        ({"TimestampPath": "$.at"}, {"at": "2026-01-01T00:00:30Z"}, 30),
    ],
)
def test_wait_is_a_durable_timer(wait: dict[str, Any], input: Any, seconds: int) -> None:
    d = machine({"W": {"Type": "Wait", **wait, "Next": "S"}, "S": {"Type": "Succeed"}})
    wf = AslWorkflow.define("m", d)
    spec = WorkflowSpec(wf)
    started = spec.given().when(wf.StartExecution("e", input), now=NOW)
    due = NOW + timedelta(seconds=seconds)
    started.then(
        events=[
            ExecutionStarted("e", input, NOW),
            StateEntered("", "W", input, NOW),
            WaitStarted("", "W", "wait:2", due),
        ],
        timers=[Timer("wait:2", due, wf.Wake("e", "wait:2"))],
    )


def test_wait_in_the_past_or_of_zero_seconds_does_not_stop() -> None:
    d = machine({"W": {"Type": "Wait", "Seconds": 0, "Next": "S"}, "S": {"Type": "Succeed"}})
    assert _ok(d, {"a": 1}) == {"a": 1}


def test_wait_seconds_path_must_be_a_non_negative_number() -> None:
    d = machine({"W": {"Type": "Wait", "SecondsPath": "$.s", "Next": "S"}, "S": {"Type": "Succeed"}})
    assert _failed(d, {"s": "ten"})[0] == "States.Runtime"


def test_fail_with_error_path_and_cause_path() -> None:
    d = machine({"F": {"Type": "Fail", "ErrorPath": "$.e", "CausePath": "States.Format('because {}', $.why)"}})
    assert _failed(d, {"e": "Custom.Error", "why": "x"}) == ("Custom.Error", "because x")


def test_succeed_applies_input_and_output_path() -> None:
    d = machine({"S": {"Type": "Succeed", "InputPath": "$.a", "OutputPath": "$.b"}})
    assert _ok(d, {"a": {"b": [1]}}) == [1]


# -- Parallel and Map ----------------------------------------------------------------------------------


def test_parallel_results_are_in_branch_order() -> None:
    def branch(n: int) -> dict[str, Any]:
        return {
            "StartAt": "T",
            "States": {"T": {"Type": "Task", "Resource": LAMBDA, "Parameters": {"b": n}, "End": True}},
        }

    d = machine(
        {"P": {"Type": "Parallel", "Branches": [branch(0), branch(1), branch(2)], "ResultPath": "$.r", "End": True}}
    )
    assert _ok(d, {"x": 1}) == {"x": 1, "r": [{"b": 0}, {"b": 1}, {"b": 2}]}


def test_a_failing_branch_fails_the_parallel_and_its_catcher_applies() -> None:
    ok = {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 100, "End": True}}}
    bad = {"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "Branch.Bad", "Cause": "no"}}}
    d = machine(
        {
            "P": {
                "Type": "Parallel",
                "Branches": [ok, bad],
                "End": True,
                "Catch": [{"ErrorEquals": ["Branch.Bad"], "Next": "H"}],
            },
            "H": {"Type": "Pass", "End": True},
        }
    )
    result, scenario, _ = run(d, {})
    assert result.output == {"Error": "Branch.Bad", "Cause": "no"}
    assert scenario.timers("machine", "exec-1") == []  # the other branch's wait was cancelled


def test_map_items_path_item_selector_and_order_with_max_concurrency() -> None:
    d = machine(
        {
            "M": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "MaxConcurrency": 2,
                "ItemSelector": {"value.$": "$$.Map.Item.Value", "index.$": "$$.Map.Item.Index", "k.$": "$.k"},
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "INLINE"},
                    "StartAt": "T",
                    "States": {"T": {"Type": "Task", "Resource": LAMBDA, "End": True}},
                },
                "ResultPath": "$.out",
                "End": True,
            }
        }
    )
    out = _ok(d, {"items": ["a", "b", "c"], "k": 9})
    assert out["out"] == [
        {"value": "a", "index": 0, "k": 9},
        {"value": "b", "index": 1, "k": 9},
        {"value": "c", "index": 2, "k": 9},
    ]


def test_map_with_max_concurrency_runs_at_most_that_many_tasks_at_once() -> None:
    from ironflow_py.testing import Scenario

    d = machine(
        {
            "M": {
                "Type": "Map",
                "MaxConcurrency": 2,
                "Iterator": {"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "arn:manual", "End": True}}},
                "End": True,
            }
        }
    )
    wf = AslWorkflow.define("m", d)
    s = Scenario(wf)
    s.send(wf.StartExecution("e", [10, 20, 30]))
    scheduled = [e for e in s.events("m", "e") if isinstance(e, TaskScheduled)]
    assert [e.parameters for e in scheduled] == [10, 20]
    s.send(wf.TaskResult("e", scheduled[1].token, output="second"))
    scheduled = [e for e in s.events("m", "e") if isinstance(e, TaskScheduled)]
    assert [e.parameters for e in scheduled] == [10, 20, 30]
    s.send(wf.TaskResult("e", scheduled[2].token, output="third"))
    s.send(wf.TaskResult("e", scheduled[0].token, output="first"))
    assert execution_result(s.state("m", "e")).output == ["first", "second", "third"]


def test_map_over_nothing_and_items_path_not_an_array() -> None:
    it = {"StartAt": "X", "States": {"X": {"Type": "Succeed"}}}
    assert _ok(machine({"M": {"Type": "Map", "Iterator": it, "End": True}}), []) == []
    assert (
        _failed(machine({"M": {"Type": "Map", "ItemsPath": "$.a", "Iterator": it, "End": True}}), {"a": 1})[0]
        == "States.Runtime"
    )


def test_nested_map_in_parallel() -> None:
    inner = {
        "StartAt": "D",
        "States": {
            "D": {"Type": "Pass", "Parameters": {"v.$": "States.MathAdd($, 1)"}, "OutputPath": "$.v", "End": True}
        },
    }
    branch = {"StartAt": "M", "States": {"M": {"Type": "Map", "Iterator": inner, "End": True}}}
    d = machine({"P": {"Type": "Parallel", "Branches": [branch, branch], "End": True}})
    assert _ok(d, [1, 2]) == [[2, 3], [2, 3]]


# -- one transaction per external step -----------------------------------------------------------------


def test_one_decision_runs_every_automatic_state_until_the_machine_waits() -> None:
    d = machine(
        {
            "A": {"Type": "Pass", "Result": {"go": True}, "Next": "C"},
            "C": {"Type": "Choice", "Choices": [{"Variable": "$.go", "BooleanEquals": True, "Next": "T"}]},
            "T": {"Type": "Task", "Resource": LAMBDA, "Next": "Done"},
            "Done": {"Type": "Succeed"},
        }
    )
    wf = AslWorkflow.define("m", d)
    spec = WorkflowSpec(wf)
    first = spec.given().when(wf.StartExecution("e", {}), now=NOW)
    first.then(
        events=[
            ExecutionStarted("e", {}, NOW),
            StateEntered("", "A", {}, NOW),
            StateExited("", "A", {"go": True}, "C"),
            StateEntered("", "C", {"go": True}, NOW),
            StateExited("", "C", {"go": True}, "T"),
            StateEntered("", "T", {"go": True}, NOW),
            TaskScheduled("", "T", "t6", LAMBDA, {"go": True}, 0),
        ],
        effects=[wf.RunTask("e", "t6", LAMBDA, {"go": True}, "T", 0)],
    )
    history = [*first.decision.events]  # type: ignore[union-attr]
    second = spec.given(*history).when(wf.TaskResult("e", "t6", output={"paid": 1}), now=NOW)
    second.then_terminal()
    assert second.decision is not None
    assert [type(e).__name__ for e in second.decision.events] == [
        "TaskSucceeded",
        "StateExited",
        "StateEntered",
        "StateExited",
        "ExecutionSucceeded",
    ]
    assert second.decision.events[-1] == ExecutionSucceeded({"paid": 1})
    check_replay_determinism(wf(), [*history, *second.decision.events])


def test_a_result_for_an_unknown_token_is_rejected_and_writes_nothing() -> None:
    d = machine({"T": {"Type": "Task", "Resource": LAMBDA, "End": True}})
    wf = AslWorkflow.define("m", d)
    spec = WorkflowSpec(wf)
    started = spec.given().when(wf.StartExecution("e", {}), now=NOW)
    assert started.decision is not None
    spec.given(*started.decision.events).when(wf.TaskResult("e", "t999", output=1)).then_rejected()


def test_two_machines_in_one_service_route_their_own_inputs() -> None:
    from ironflow_py.testing import Scenario

    a = AslWorkflow.define("a", machine({"P": {"Type": "Pass", "Result": "A", "End": True}}))
    b = AslWorkflow.define("b", machine({"P": {"Type": "Pass", "Result": "B", "End": True}}))
    s = Scenario(a, b)
    s.send(a.StartExecution("x", {}))
    s.send(b.StartExecution("x", {}))
    assert execution_result(s.state("a", "x")).output == "A"
    assert execution_result(s.state("b", "x")).output == "B"


def test_stop_execution_aborts_and_cancels_timers() -> None:
    from ironflow_py.testing import Scenario

    wf = AslWorkflow.define("m", machine({"W": {"Type": "Wait", "Seconds": 60, "End": True}}))
    s = Scenario(wf)
    s.send(wf.StartExecution("e", {}))
    s.send(wf.StopExecution("e", "Stopped", "by hand"))
    r = execution_result(s.state("m", "e"))
    assert (r.status, r.error) == ("aborted", "Stopped")
    assert s.timers("m", "e") == []


def test_parse_once_define_many() -> None:
    m = StateMachine.parse(machine({"S": {"Type": "Succeed"}}))
    assert AslWorkflow.define("x", m).machine is m


def test_outcome_cancel_input_and_machine_timeout() -> None:
    from ironflow_py import Cancelled, CancelRequest, Completed, Failed
    from ironflow_py.testing import Scenario

    ok = AslWorkflow.define("ok", machine({"P": {"Type": "Pass", "Result": [1], "End": True}}))
    bad = AslWorkflow.define("bad", machine({"F": {"Type": "Fail", "Error": "E", "Cause": "c"}}))
    slow = AslWorkflow.define(
        "slow", {"TimeoutSeconds": 90, **machine({"W": {"Type": "Wait", "Seconds": 900, "End": True}})}
    )
    s = Scenario(ok, bad, slow)
    s.send(ok.StartExecution("e", {}))
    s.send(bad.StartExecution("e", {}))
    s.send(slow.StartExecution("e", {}))
    assert ok().outcome(s.state("ok", "e")) == Completed([1])
    assert bad().outcome(s.state("bad", "e")) == Failed("E", "c")
    assert slow().outcome(s.state("slow", "e")) is None
    stop = slow().cancel_input(CancelRequest("e", "no longer needed"))
    assert stop == slow.StopExecution("e", "States.Aborted", "no longer needed")
    s.send(stop)
    assert slow().outcome(s.state("slow", "e")) == Cancelled("no longer needed")
    assert slow.run_timeout == timedelta(seconds=90) and ok.run_timeout is None
