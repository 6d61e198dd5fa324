"""The CLI on a real database: migrate, demo and inspect, as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from ironflow_py.cli import main


def run(*args: str, pg_url: str, schema: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "IRONFLOW_DATABASE_URL": pg_url, "IRONFLOW_SCHEMA": schema}
    return subprocess.run(
        [sys.executable, "-m", "ironflow_py", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_demo_runs_an_order_end_to_end(pg_url: str, schema: str) -> None:
    result = run("demo", pg_url=pg_url, schema=schema)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for expected in ("-> accepted", "-> rejected", "-> duplicate", "-> already_completed", "order.shipped/1"):
        assert expected in out
    assert "state (completed)" in out
    # The whole loop: effects handled and timers fired by the in-process runtime, outcomes from `wait`.
    for expected in ("greeting.greeted/1", "greeting.completed/1", "greeting.failed/1"):  # the timers fired
        assert expected in out
    assert "wait(...).unwrap() -> 'Hello, Ada!'" in out
    assert "raised WorkflowFailed: workflow 'greeting' instance 'greet-bob-" in out
    assert "failed: not_approved (not approved)" in out


def test_migrate_then_inspect_with_an_app(pg_url: str, schema: str, capsys: pytest.CaptureFixture[str]) -> None:
    env = {"IRONFLOW_DATABASE_URL": pg_url}
    os.environ.update(env)
    try:
        assert main(["--schema", schema, "migrate"]) == 0
        assert main(["--schema", schema, "demo"]) == 0
        capsys.readouterr()
        assert main(["--schema", schema, "--json", "--app", "tests.apps:orders", "inspect", "instances"]) == 0
        rows = json.loads(capsys.readouterr().out)
        assert [(r["workflow_type"], r["status"], r["last_seq"]) for r in rows] == [
            ("greeting", "completed", 4),
            ("greeting", "failed", 4),
            ("order", "completed", 3),
        ]
        rows = [r for r in rows if r["workflow_type"] == "order"]
        assert (
            main(
                [
                    "--schema",
                    schema,
                    "--json",
                    "--app",
                    "tests.apps:orders",
                    "inspect",
                    "show",
                    "order",
                    rows[0]["workflow_id"],
                ]
            )
            == 0
        )
        shown = json.loads(capsys.readouterr().out)
        assert [e["type"] for e in shown["events"]] == [
            "order.placed/1",
            "order.approved/1",
            "order.shipped/1",
        ]
        assert shown["state"]["status"] == "shipped"
        assert (
            main(
                [
                    "--schema",
                    schema,
                    "--app",
                    "tests.apps:orders",
                    "diagram",
                    "order",
                    "--instance",
                    rows[0]["workflow_id"],
                ]
            )
            == 0
        )
        path = capsys.readouterr().out
        assert "new --> placed: #1 order.placed/1" in path and "shipped --> [*]" in path
        assert main(["--schema", schema, "--app", "tests.apps:nothing", "inspect", "instances"]) == 1
        assert "not an ironflow_py.App" in capsys.readouterr().err
    finally:
        os.environ.pop("IRONFLOW_DATABASE_URL")


def test_why_is_it_stuck_answered_from_the_cli(
    pg_url: str, schema: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import random

    from ironflow_py import PostgresStore
    from ironflow_py.effects import EffectRuntime
    from ironflow_py.examples.onboarding import StartOnboarding
    from tests.apps import onboarding_broken

    monkeypatch.setenv("IRONFLOW_DATABASE_URL", pg_url)
    monkeypatch.setenv("IRONFLOW_SCHEMA", schema)
    monkeypatch.setenv("IRONFLOW_APP", "tests.apps:onboarding_broken")
    assert main(["migrate"]) == 0
    with PostgresStore.connect(pg_url, schema=schema) as store:
        service = onboarding_broken.service(store)
        service.execute(StartOnboarding("u42", "ada@example", "r1"))
        service.execute(StartOnboarding("u43", "bob@example.com", "r2"))
        capsys.readouterr()

        assert main(["inspect", "show", "onboarding", "u42"]) == 0
        out = capsys.readouterr().out
        assert "waits for a worker" in out and "onboarding.send_verification_email/1" in out

        assert main(["--json", "inspect", "outbox"]) == 0
        health = json.loads(capsys.readouterr().out)
        assert (health["pending"], health["due_now"], health["dead"]) == (2, 2, 0)

        runtime = EffectRuntime(
            service, onboarding_broken.effects, handle_signals=False, listen=False, rng=random.Random(0)
        )
        runtime.run_once()
        assert main(["inspect", "show", "onboarding", "u42"]) == 0
        out = capsys.readouterr().out
        assert "is dead: Permanent: mail provider rejected the address" in out
        assert "dead-letters retry" in out

        assert main(["--json", "inspect", "outbox"]) == 0
        assert json.loads(capsys.readouterr().out)["dead"] == 2

        monkeypatch.setenv("IRONFLOW_LIMIT", "1")  # every flag has an IRONFLOW_ twin, subcommand flags too
        assert main(["--json", "inspect", "instances"]) == 0
        assert len(json.loads(capsys.readouterr().out)) == 1
