"""Retry: per-retrier counters, first matching retrier, AWS backoff, MaxDelaySeconds, FULL jitter recorded."""

from __future__ import annotations

from typing import Any, cast

import pytest

from ironflow_py.asl._interpreter import matches, retry_delay
from ironflow_py.asl._model import AslEvent, RetryScheduled, TaskScheduled
from tests.asl.helpers import LAMBDA, machine, run


def _task(retry: list[dict[str, Any]], catch: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    state: dict[str, Any] = {"Type": "Task", "Resource": LAMBDA, "End": True, "Retry": retry}
    states: dict[str, Any] = {"T": state}
    if catch:
        state["Catch"] = catch
        states["Caught"] = {"Type": "Pass", "End": True}
    return machine(states)


def _retries(events: list[object]) -> list[RetryScheduled]:
    return [e for e in events if isinstance(e, RetryScheduled)]


def _throw(*errors: str) -> list[dict[str, Any]]:
    return [{"Throw": {"Error": e, "Cause": ""}} for e in errors]


def test_interval_1_rate_2_waits_1_2_4() -> None:
    d = _task([{"ErrorEquals": ["E"], "IntervalSeconds": 1, "BackoffRate": 2, "MaxAttempts": 3}])
    result, s, _ = run(d, {}, script={"T": _throw("E", "E", "E", "E")})
    assert [r.delay_seconds for r in _retries(s.events("machine", "exec-1"))] == [1, 2, 4]
    assert result.error == "E"  # the fourth failure: attempts exhausted, no catcher


def test_max_delay_seconds_caps_the_wait_1_2_3() -> None:
    d = _task([{"ErrorEquals": ["E"], "IntervalSeconds": 1, "BackoffRate": 2, "MaxAttempts": 3, "MaxDelaySeconds": 3}])
    _, s, _ = run(d, {}, script={"T": _throw("E", "E", "E", "E")})
    assert [r.delay_seconds for r in _retries(s.events("machine", "exec-1"))] == [1, 2, 3]


def test_errors_a_b_c_b_against_three_retriers_keep_separate_counters() -> None:
    d = _task(
        [
            {"ErrorEquals": ["A"], "IntervalSeconds": 1, "BackoffRate": 2, "MaxAttempts": 5},
            {"ErrorEquals": ["B"], "IntervalSeconds": 10, "BackoffRate": 3, "MaxAttempts": 5},
            {"ErrorEquals": ["C"], "IntervalSeconds": 100, "BackoffRate": 2, "MaxAttempts": 5},
        ]
    )
    script = {"T": [*_throw("A", "B", "C", "B"), {"Return": "ok"}]}
    result, s, _ = run(d, {}, script=script)
    retries = _retries(s.events("machine", "exec-1"))
    assert [(r.retrier, r.attempt, r.delay_seconds) for r in retries] == [
        (0, 1, 1.0),
        (1, 1, 10.0),
        (2, 1, 100.0),
        (1, 2, 30.0),  # B's own second attempt: 10 x 3^1, not counting A's or C's
    ]
    assert result.output == "ok"


def test_the_first_matching_retrier_applies_even_when_exhausted() -> None:
    d = _task(
        [
            {"ErrorEquals": ["E"], "MaxAttempts": 1},
            {"ErrorEquals": ["States.ALL"], "MaxAttempts": 5},
        ]
    )
    result, s, _ = run(d, {}, script={"T": _throw("E", "E", "E")})
    assert len(_retries(s.events("machine", "exec-1"))) == 1
    assert result.error == "E"


def test_max_attempts_zero_never_retries_and_the_catcher_applies() -> None:
    d = _task(
        [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 0}], catch=[{"ErrorEquals": ["States.ALL"], "Next": "Caught"}]
    )
    result, s, _ = run(d, {}, script={"T": _throw("E")})
    assert _retries(s.events("machine", "exec-1")) == []
    assert result.output == {"Error": "E", "Cause": ""}


def test_retry_then_catch_after_exhaustion() -> None:
    d = _task(
        [{"ErrorEquals": ["E"], "MaxAttempts": 2}],
        catch=[{"ErrorEquals": ["E"], "ResultPath": "$.error", "Next": "Caught"}],
    )
    result, s, _ = run(d, {"in": 1}, script={"T": _throw("E", "E", "E")})
    events = s.events("machine", "exec-1")
    assert len(_retries(events)) == 2
    assert [e.attempt for e in events if isinstance(e, TaskScheduled)] == [0, 1, 2]
    assert result.output == {"in": 1, "error": {"Error": "E", "Cause": ""}}


def test_full_jitter_is_drawn_once_recorded_and_within_the_backoff() -> None:
    d = _task(
        [{"ErrorEquals": ["E"], "IntervalSeconds": 4, "BackoffRate": 2, "MaxAttempts": 3, "JitterStrategy": "FULL"}]
    )
    _, s, wf = run(d, {}, script={"T": _throw("E", "E", "E", "E")})
    events = s.events("machine", "exec-1")
    delays = [r.delay_seconds for r in _retries(events)]
    assert all(0 <= got <= cap for got, cap in zip(delays, [4, 8, 16], strict=True))
    assert len(set(delays)) == 3  # drawn, not the un-jittered cap
    # The recorded delays are what a refold sees; folding never draws again.
    again = wf().fold(wf().initial_state(), cast("list[AslEvent]", events))
    assert again == s.state("machine", "exec-1")


def test_states_runtime_is_not_retried_by_states_all() -> None:
    d = machine(
        {
            "T": {
                "Type": "Task",
                "Resource": LAMBDA,
                "ResultSelector": {"x.$": "$.missing"},
                "End": True,
                "Retry": [{"ErrorEquals": ["States.ALL"]}],
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "C"}],
            },
            "C": {"Type": "Succeed"},
        }
    )
    result, s, _ = run(d, {}, script={"T": [{"Return": {}}]})
    assert result.error == "States.Runtime"
    assert _retries(s.events("machine", "exec-1")) == []


@pytest.mark.parametrize(
    ("names", "error", "expected"),
    [
        (["States.ALL"], "Anything", True),
        (["States.ALL"], "States.Runtime", False),
        (["States.ALL"], "States.DataLimitExceeded", False),
        (["States.TaskFailed"], "Lambda.Unknown", True),
        (["States.TaskFailed"], "States.Timeout", False),
        (["States.TaskFailed"], "States.HeartbeatTimeout", True),
        (["States.Timeout"], "States.Timeout", True),
        (["States.Runtime"], "States.Runtime", True),
        (["A", "B"], "B", True),
        (["A"], "a", False),
    ],
)
def test_error_name_matching(names: list[str], error: str, expected: bool) -> None:
    assert matches(names, error) is expected


def test_backoff_formula_is_aws_not_linear() -> None:
    r = {"IntervalSeconds": 3, "BackoffRate": 1.5}
    assert [retry_delay(r, n, 0.0) for n in (1, 2, 3)] == [3.0, 4.5, 6.75]
    assert retry_delay({"IntervalSeconds": 1, "BackoffRate": 2.0, "JitterStrategy": "FULL"}, 3, 0.5) == 2.0
    assert retry_delay({"IntervalSeconds": 1, "BackoffRate": 10.0, "MaxDelaySeconds": 5}, 400, 0.0) == 5.0
