"""`ironflow-py projections status|rebuild` as a user runs them (`run` is covered by the soak test)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from ironflow_py import PostgresStore, ProjectionWorker, WorkflowService
from ironflow_py.cli import main
from tests.projection_apps import NAME, counter_projection, create_read_model
from tests.workflows import Add, Counter


@pytest.fixture
def env(pg_url: str, schema: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("IRONFLOW_DATABASE_URL", pg_url)
    monkeypatch.setenv("IRONFLOW_SCHEMA", schema)
    yield


def cli(*args: str) -> list[str]:
    return ["--json", "--app", "tests.projection_apps:counters", "projections", *args]


def test_status_then_rebuild(
    env: None,
    pg_store: PostgresStore,
    admin: psycopg.Connection[tuple[Any, ...]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    create_read_model(admin, pg_store.schema)
    service = WorkflowService(pg_store, workflows=[Counter])
    worker = ProjectionWorker(service, [counter_projection(pg_store.schema)])
    try:
        positions = [service.execute(Add("a", 1)).events[0].position for _ in range(3)]
        while not worker.control.caught_up(NAME, positions[-1]):
            worker.run_until_idle()
        capsys.readouterr()
        assert main(cli("status")) == 0
        status = json.loads(capsys.readouterr().out)
        [row] = status["projections"]
        assert (row["name"], row["position"], row["applied"], row["lag_events"]) == (
            NAME,
            positions[-1],
            3,
            0,
        )
        assert "held_back_events" in status["horizon"]
        assert row["leader"] == worker.holder and row["lease_ends"] is not None  # who leads, and until when
        assert main(["--app", "tests.projection_apps:counters", "projections", "status"]) == 0
        assert f"led by {worker.holder} until " in capsys.readouterr().out

        assert main(cli("rebuild", NAME)) == 0
        capsys.readouterr()
        assert main(cli("status", NAME)) == 0
        [row] = json.loads(capsys.readouterr().out)["projections"]
        assert (row["position"], row["applied"], row["lag_events"]) == (0, 0, 3)
        worker.close()  # ends its lease: no leader now
        assert main(cli("status", NAME)) == 0
        assert json.loads(capsys.readouterr().out)["projections"][0]["leader"] is None
        assert admin.execute(f'SELECT count(*) FROM "{pg_store.schema}".rm_totals').fetchone() == (0,)

        assert main(cli("rebuild", "nope")) == 1
        assert "unknown projections ['nope']" in capsys.readouterr().err
    finally:
        worker.close()
