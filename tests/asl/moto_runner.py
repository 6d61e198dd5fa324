"""Runs ASL definitions on moto's in-memory Step Functions interpreter, with scripted task results.

moto (its `stepfunctions` backend, a port of LocalStack's interpreter) executes definitions offline when
`execute_state_machine` is on. Task results are scripted through its mocked-responses support (the
Step Functions Local "mock config" model: per state, one response per RetryCount); moto ships that code
but no way to load a config, so `_MockedExecution` hands the test case to the execution worker.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

Script = Mapping[str, Sequence[Mapping[str, Any]]]


@attrs.frozen
class Outcome:
    status: str
    output: Any = None
    error: str | None = None
    cause: str | None = None
    #: the event types of GetExecutionHistory, in order
    history: tuple[str, ...] = ()


def _output(text: str | None) -> Any:
    # moto returns a string output unquoted ("yes", where AWS's DescribeExecution gives "\"yes\""):
    # read what is not JSON as that string.
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def run_on_moto(cases: Sequence[tuple[str, Mapping[str, Any], Any, Script]]) -> dict[str, Outcome]:
    """Run each (name, definition, input, script) on moto and return its final status, output, error, cause."""
    import boto3
    from moto import mock_aws
    from moto.stepfunctions.parser.backend import execution as execution_module
    from moto.stepfunctions.parser.mocking.mock_config import (
        MockedResponseReturn,
        MockedResponseThrow,
        MockTestCase,
        StateMockedResponses,
    )

    scripts: dict[str, Script] = {}

    def mock_case(machine_name: str) -> MockTestCase | None:
        script = scripts.get(machine_name)
        if not script:
            return None
        per_state = []
        for state, responses in script.items():
            mocked: list[Any] = []
            for i, r in enumerate(responses):
                if "Throw" in r:
                    mocked.append(MockedResponseThrow(i, i, r["Throw"]["Error"], r["Throw"].get("Cause", "")))
                else:
                    # a Lambda function ARN's result is the Payload of the Invoke response
                    mocked.append(MockedResponseReturn(i, i, {"StatusCode": 200, "Payload": r["Return"]}))
            # the last response repeats, as in the ironflow-side script
            for j in range(len(responses), 10):
                last = mocked[-1]
                if isinstance(last, MockedResponseThrow):
                    mocked.append(MockedResponseThrow(j, j, last.error, last.cause))
                else:
                    mocked.append(MockedResponseReturn(j, j, last.payload))
            per_state.append(StateMockedResponses(state, f"{state}-responses", mocked))
        return MockTestCase(machine_name, "case", per_state)

    original = execution_module.Execution._get_start_execution_worker

    def patched(self: Any) -> Any:
        worker = original(self)
        setattr(worker, "_mock_test_case", mock_case(self.state_machine.name))  # noqa: B010 - a Final attribute
        return worker

    results: dict[str, Outcome] = {}
    setattr(execution_module.Execution, "_get_start_execution_worker", patched)  # noqa: B010 - no mypy method-assign
    try:
        with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
            client = boto3.client("stepfunctions", region_name="us-east-1")
            role = "arn:aws:iam::123456789012:role/sfn"
            arns: dict[str, str] = {}
            for index, (name, definition, payload, script) in enumerate(cases):
                machine_name = f"m-{index}"
                scripts[machine_name] = script
                arn = client.create_state_machine(name=machine_name, definition=json.dumps(definition), roleArn=role)[
                    "stateMachineArn"
                ]
                arns[name] = client.start_execution(stateMachineArn=arn, name="exec-1", input=json.dumps(payload))[
                    "executionArn"
                ]
            tick = threading.Event()
            for name, arn in arns.items():
                for _ in range(6000):
                    d = client.describe_execution(executionArn=arn)
                    if d["status"] != "RUNNING":
                        break
                    tick.wait(0.01)
                output = _output(d.get("output"))
                events = client.get_execution_history(executionArn=arn, maxResults=1000)["events"]
                history = tuple(e["type"] for e in events)
                results[name] = Outcome(d["status"], output, d.get("error"), d.get("cause"), history)
    finally:
        setattr(execution_module.Execution, "_get_start_execution_worker", original)  # noqa: B010
    return results
