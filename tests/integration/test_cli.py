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


def test_migrate_then_inspect_with_an_app(pg_url: str, schema: str, capsys: pytest.CaptureFixture[str]) -> None:
    env = {"IRONFLOW_DATABASE_URL": pg_url}
    os.environ.update(env)
    try:
        assert main(["--schema", schema, "migrate"]) == 0
        assert main(["--schema", schema, "demo"]) == 0
        capsys.readouterr()
        assert main(["--schema", schema, "--json", "--app", "tests.apps:orders", "inspect", "instances"]) == 0
        rows = json.loads(capsys.readouterr().out)
        assert [(r["workflow_type"], r["status"], r["last_seq"]) for r in rows] == [("order", "completed", 3)]
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
