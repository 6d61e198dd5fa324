"""The README's example runs as written (against the test database)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_example_runs(pg_url: str, schema: str) -> None:
    block = re.search(r"```python\n(.*?)```", README.read_text(), re.S)
    assert block is not None
    code = block.group(1).replace('"postgresql://postgres@127.0.0.1/postgres"', repr(pg_url))
    code = code.replace(
        "PostgresStore.connect(" + repr(pg_url) + ")",
        "PostgresStore.connect(" + repr(pg_url) + ", schema=" + repr(schema) + ")",
    )
    assert repr(schema) in code, "the README example changed shape; update this test"
    namespace: dict[str, Any] = {"__name__": "readme_example"}
    exec(compile(code, str(README), "exec"), namespace)
    assert namespace["service"].execute(namespace["Deposit"]("acc-1", 250)).state == 750
    namespace["store"].close()


def test_readme_telemetry_example_runs(pg_url: str, schema: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The "Metrics and health checks" block, run after the first example in the same namespace."""
    text = README.read_text()
    first, telemetry = re.findall(r"```python\n(.*?)```", text, re.S)[0], None
    for block in re.findall(r"```python\n(.*?)```", text, re.S):
        if "ironflow_py.telemetry" in block:
            telemetry = block
    assert telemetry is not None, "the README lost its telemetry example"
    first = first.replace('"postgresql://postgres@127.0.0.1/postgres"', repr(pg_url))
    first = first.replace(
        "PostgresStore.connect(" + repr(pg_url) + ")",
        "PostgresStore.connect(" + repr(pg_url) + ", schema=" + repr(schema) + ")",
    )
    namespace: dict[str, Any] = {"__name__": "readme_example"}
    exec(compile(first, str(README), "exec"), namespace)
    capsys.readouterr()
    exec(compile(telemetry, str(README), "exec"), namespace)
    assert capsys.readouterr().out.strip() == "1.0"
    namespace["store"].close()


def test_readme_upcasting_example_runs(pg_url: str, schema: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The "Renaming a field" block, run after the first example, on its database, with v1 rows in it."""
    text = README.read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    first, upcasting = blocks[0], next((b for b in blocks if "class AccountV2" in b), None)
    assert upcasting is not None, "the README lost its upcasting example"
    first = first.replace('"postgresql://postgres@127.0.0.1/postgres"', repr(pg_url))
    first = first.replace(
        "PostgresStore.connect(" + repr(pg_url) + ")",
        "PostgresStore.connect(" + repr(pg_url) + ", schema=" + repr(schema) + ")",
    )
    namespace: dict[str, Any] = {"__name__": "readme_example"}
    exec(compile(first, str(README), "exec"), namespace)
    capsys.readouterr()
    exec(compile(upcasting, str(README), "exec"), namespace)
    assert capsys.readouterr().out.splitlines() == ["500", "['account.deposited/2', 'account.deposited/2']"]
    assert [e.type_name for e in namespace["store"].events("account", "acc-1")] == [
        "account.deposited/1",
        "account.deposited/2",
    ]
    namespace["store"].close()


def test_readme_delayed_start_example_runs(pg_url: str, schema: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The "Delayed starts" block, run after the first example in the same namespace."""
    text = README.read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    delayed = next((b for b in blocks if "delay=timedelta" in b), None)
    assert delayed is not None, "the README lost its delayed start example"
    first = blocks[0].replace('"postgresql://postgres@127.0.0.1/postgres"', repr(pg_url))
    first = first.replace(
        "PostgresStore.connect(" + repr(pg_url) + ")",
        "PostgresStore.connect(" + repr(pg_url) + ", schema=" + repr(schema) + ")",
    )
    namespace: dict[str, Any] = {"__name__": "readme_example"}
    exec(compile(first, str(README), "exec"), namespace)
    capsys.readouterr()
    exec(compile(delayed, str(README), "exec"), namespace)
    assert capsys.readouterr().out.split("\n")[:3] == ["scheduled", "duplicate", "['ironflow.start/payday-2026-12']"]
    namespace["store"].close()


def test_readme_schedules_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    """The "Schedules" block runs as written (in memory: it uses Scenario)."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    block = next((b for b in blocks if "Schedule(" in b and "Scenario" in b), None)
    assert block is not None, "the README lost its schedules example"
    exec(compile(block, str(README), "exec"), {"__name__": "readme_example"})
    assert capsys.readouterr().out.splitlines() == ["['nightly@2026-01-01T01:30:00Z']", "2026-01-02 01:30:00+00:00"]


def test_readme_retention_example_runs(pg_url: str, schema: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The "Retention" block, run after the first example in the same namespace."""
    text = README.read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    retention = next((b for b in blocks if "RetentionPolicy(" in b), None)
    assert retention is not None, "the README lost its retention example"
    first = blocks[0].replace('"postgresql://postgres@127.0.0.1/postgres"', repr(pg_url))
    first = first.replace(
        "PostgresStore.connect(" + repr(pg_url) + ")",
        "PostgresStore.connect(" + repr(pg_url) + ", schema=" + repr(schema) + ")",
    )
    namespace: dict[str, Any] = {"__name__": "readme_example"}
    exec(compile(first, str(README), "exec"), namespace)
    capsys.readouterr()
    exec(compile(retention, str(README), "exec"), namespace)
    assert capsys.readouterr().out.splitlines() == ["1 1", "already_completed", "Completed(result=1000)"]
    namespace["store"].close()


def test_readme_batch_projection_example_runs(pg_url: str, schema: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The "Read models" block, run after the first example in the same namespace: one upsert per batch."""
    text = README.read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    batch = next((b for b in blocks if "handle_batch=" in b), None)
    assert batch is not None, "the README lost its handle_batch example"
    first = blocks[0].replace('"postgresql://postgres@127.0.0.1/postgres"', repr(pg_url))
    first = first.replace(
        "PostgresStore.connect(" + repr(pg_url) + ")",
        "PostgresStore.connect(" + repr(pg_url) + ", schema=" + repr(schema) + ")",
    )
    namespace: dict[str, Any] = {"__name__": "readme_example"}
    exec(compile(first, str(README), "exec"), namespace)
    capsys.readouterr()
    exec(compile(batch, str(README), "exec"), namespace)
    assert capsys.readouterr().out.strip() == "(300,)"
    namespace["store"].close()


def test_readme_replica_example_runs(pg_url: str, schema: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The "Read your writes" block, after the first example, with the primary itself as the "replica" (the
    wait returns at once on a server not in recovery; the real standby is tests/reliability/test_read_replica.py)."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    first = blocks[0].replace('"postgresql://postgres@127.0.0.1/postgres"', repr(pg_url))
    first = first.replace(
        "PostgresStore.connect(" + repr(pg_url) + ")",
        "PostgresStore.connect(" + repr(pg_url) + ", schema=" + repr(schema) + ")",
    )
    replica = [b for b in blocks if "read_store=replica" in b]
    assert len(replica) == 1, "the README lost its replica example"
    code = replica[0].replace(
        'PostgresStore.connect("postgresql://app@replica.internal/app")',
        "PostgresStore.connect(" + repr(pg_url) + ", schema=" + repr(schema) + ")",
    )
    assert repr(schema) in code, "the replica example changed shape; update this test"
    namespace: dict[str, Any] = {"__name__": "readme_example"}
    exec(compile(first, str(README), "exec"), namespace)
    capsys.readouterr()
    exec(compile(code, str(README), "exec"), namespace)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "200"
    assert namespace["done"].wal_position is not None
    namespace["replica"].close()
    namespace["store"].close()


def _first_then(block_marker: str, pg_url: str, schema: str) -> tuple[str, str]:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    block = next((b for b in blocks if block_marker in b), None)
    assert block is not None, f"the README lost its block with {block_marker!r}"
    first = blocks[0].replace('"postgresql://postgres@127.0.0.1/postgres"', repr(pg_url))
    first = first.replace(
        "PostgresStore.connect(" + repr(pg_url) + ")",
        "PostgresStore.connect(" + repr(pg_url) + ", schema=" + repr(schema) + ")",
    )
    return first, block


def test_readme_versions_example_runs(pg_url: str, schema: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The "second version side by side" block, run after the first example on its database."""
    first, block = _first_then("class AccountGoal2k", pg_url, schema)
    namespace: dict[str, Any] = {"__name__": "readme_example"}
    exec(compile(first, str(README), "exec"), namespace)
    capsys.readouterr()
    exec(compile(block, str(README), "exec"), namespace)
    assert capsys.readouterr().out.splitlines() == [
        "2 None",
        "1",
        "{'1': 1, '2': 1}",
        "['ironflow.version_migrated/1'] 2",
    ]
    namespace["store"].close()


def test_readme_continue_as_new_example_runs(pg_url: str, schema: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The "continue-as-new" block, run after the first example on its database."""
    first, block = _first_then("continue_as_new()", pg_url, schema)
    namespace: dict[str, Any] = {"__name__": "readme_example"}
    exec(compile(first, str(README), "exec"), namespace)
    capsys.readouterr()
    exec(compile(block, str(README), "exec"), namespace)
    assert capsys.readouterr().out.splitlines() == [
        "3 23 Total(cents=25, deposits=25)",
        "ContinuedAsNew(run=1, next_run=3)",
    ]
    namespace["store"].close()


def test_readme_failover_example_runs(pg_url: str, schema: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The "Automatic failover" block, after the first example, on a host list whose first host is down."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    from tests.reliability.formation import free_port

    text = README.read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    failover = next((b for b in blocks if "target_session_attrs=read-write" in b), None)
    assert failover is not None, "the README lost its failover example"
    first = blocks[0].replace('"postgresql://postgres@127.0.0.1/postgres"', repr(pg_url))
    first = first.replace(
        "PostgresStore.connect(" + repr(pg_url) + ")",
        "PostgresStore.connect(" + repr(pg_url) + ", schema=" + repr(schema) + ")",
    )
    params = {k: str(v) for k, v in conninfo_to_dict(pg_url).items()}
    params.update(
        host="127.0.0.1," + params.get("host", "127.0.0.1"),
        port=f"{free_port()},{params.get('port', '5432')}",
        target_session_attrs="read-write",
    )
    url = '"postgresql://app@node1:5432,node2:5432/app?target_session_attrs=read-write",'
    assert url in failover, "the README failover example changed shape; update this test"
    failover = failover.replace(url, repr(make_conninfo("", **params)) + ", schema=" + repr(schema) + ",")
    namespace: dict[str, Any] = {"__name__": "readme_example"}
    exec(compile(first, str(README), "exec"), namespace)
    capsys.readouterr()
    exec(compile(failover, str(README), "exec"), namespace)
    assert capsys.readouterr().out.strip() == "accepted"
    namespace["formation"].close()
    namespace["store"].close()
