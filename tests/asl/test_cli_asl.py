"""`ironflow-py asl validate|start|history`, as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ironflow_py import PostgresStore
from ironflow_py.cli import main
from tests.asl.recovery_app import DEFINITION


def test_validate_accepts_a_machine_and_names_the_pointer_of_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "good.json"
    good.write_text(json.dumps(DEFINITION))
    assert main(["asl", "validate", str(good)]) == 0
    assert "valid (3 states, 1 nested machines)" in capsys.readouterr().out
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": "x", "Next": "Nope"}}}))
    assert main(["asl", "validate", str(bad)]) == 1
    assert 'error: /States/A/Next: state "Nope" does not exist' in capsys.readouterr().err


def test_start_then_history_in_the_step_functions_shape(
    pg_store: PostgresStore, pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    common = ["--database-url", pg_url, "--schema", pg_store.schema, "--app", "tests.asl.recovery_app:cli_app"]
    payload = json.dumps({"order": "o-9", "items": ["x"]})
    assert main([*common, "--json", "asl", "start", "recovery", "exec-9", "--input", payload]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "accepted"
    assert main([*common, "asl", "history", "recovery", "exec-9"]) == 0
    events = json.loads(capsys.readouterr().out)["events"]
    assert [e["type"] for e in events] == ["ExecutionStarted", "TaskStateEntered", "TaskScheduled"]
    assert json.loads(events[0]["executionStartedEventDetails"]["input"]) == {"order": "o-9", "items": ["x"]}
    assert main([*common, "asl", "start", "nope", "exec-9"]) == 1
    assert "no workflow 'nope'" in capsys.readouterr().err
