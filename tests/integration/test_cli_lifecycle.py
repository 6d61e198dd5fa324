"""`wait`, `send` and `instances cancel|terminate|pause|resume` from the command line, on a real database."""

from __future__ import annotations

import json

import pytest

from ironflow_py import InstanceStatus, PostgresStore, WorkflowService
from ironflow_py.cli import main
from ironflow_py.lifecycle import Cancelled, Terminated
from tests.lifecycle_workflows import JobWorkflow, StartJob


@pytest.fixture
def cli_env(pg_store: PostgresStore, pg_url: str, monkeypatch: pytest.MonkeyPatch) -> WorkflowService:
    monkeypatch.setenv("IRONFLOW_DATABASE_URL", pg_url)
    monkeypatch.setenv("IRONFLOW_SCHEMA", pg_store.schema)
    monkeypatch.setenv("IRONFLOW_APP", "tests.apps:jobs")
    return WorkflowService(pg_store, workflows=[JobWorkflow])


def test_send_by_stored_type_name_then_wait_prints_the_outcome(
    cli_env: WorkflowService, capsys: pytest.CaptureFixture[str]
) -> None:
    cli_env.execute(StartJob("j1"))
    data = json.dumps({"job_id": "j1", "how": "failed", "value": 2})
    assert main(["send", "job", "j1", "--input-type", "job.end/1", "--json", data]) == 0
    assert "job j1: accepted #2 job.ended/1" in capsys.readouterr().out
    assert main(["wait", "job", "j1", "--timeout", "10"]) == 3  # closed, but not completed
    assert 'job j1: failed: code="boom", detail={"value": 2}' in capsys.readouterr().out
    assert main(["--json", "wait", "job", "j1", "--timeout", "10"]) == 3
    assert json.loads(capsys.readouterr().out) == {"status": "failed", "code": "boom", "detail": {"value": 2}}
    assert main(["--json", "inspect", "instances", "--status", "failed"]) == 0
    assert [r["workflow_id"] for r in json.loads(capsys.readouterr().out)] == ["j1"]


def test_wait_that_gives_up_exits_1_and_says_the_instance_still_runs(
    cli_env: WorkflowService, capsys: pytest.CaptureFixture[str]
) -> None:
    cli_env.execute(StartJob("j1"))
    assert main(["wait", "job", "j1", "--timeout", "0.2"]) == 1
    assert "still running after waiting 0.2 s" in capsys.readouterr().err
    assert main(["wait", "job", "nope", "--timeout", "0.2"]) == 1
    assert "has no instance 'nope'" in capsys.readouterr().err


def test_a_bad_input_name_or_payload_is_a_one_line_error(
    cli_env: WorkflowService, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["send", "job", "j1", "--input-type", "job.nope/1", "--json", "{}"]) == 1
    assert "job.nope/1" in capsys.readouterr().err
    assert main(["send", "job", "j1", "--input-type", "job.end/1", "--json", "{not json"]) == 1
    assert "not valid JSON" in capsys.readouterr().err
    assert cli_env.instance("job", "j1") is None


def test_instances_cancel_terminate_pause_resume(cli_env: WorkflowService, capsys: pytest.CaptureFixture[str]) -> None:
    cli_env.execute(StartJob("a"))
    cli_env.execute(StartJob("b"))
    assert main(["instances", "pause", "job", "a", "--request-id", "p1"]) == 0
    assert "job a: pause accepted" in capsys.readouterr().out
    assert main(["instances", "pause", "job", "a", "--request-id", "p1"]) == 0
    assert "job a: pause duplicate" in capsys.readouterr().out
    info = cli_env.instance("job", "a")
    assert info is not None and info.paused_at is not None
    assert main(["instances", "resume", "job", "a"]) == 0
    capsys.readouterr()
    assert main(["instances", "cancel", "job", "a", "--reason", "customer asked", "--request-id", "c1"]) == 0
    assert "job a: accepted #2 job.ended/1" in capsys.readouterr().out
    assert main(["instances", "cancel", "job", "a", "--reason", "customer asked", "--request-id", "c1"]) == 0
    assert "duplicate first outcome was accepted" in capsys.readouterr().out
    assert cli_env.result("job", "a") == Cancelled("customer asked")
    assert main(["instances", "terminate", "job", "b", "--reason", "stuck"]) == 0
    assert "job b: accepted #2 ironflow.terminated/1" in capsys.readouterr().out
    assert cli_env.result("job", "b") == Terminated("stuck")
    assert main(["instances", "pause", "job", "b"]) == 1
    assert "cannot pause: it is terminated" in capsys.readouterr().err
    assert main(["inspect", "show", "job", "b"]) == 0
    assert "terminated in state" in capsys.readouterr().out
    assert [i.workflow_id for i in cli_env.list_instances("job", InstanceStatus.TERMINATED)] == ["b"]
