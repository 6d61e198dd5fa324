"""The FastAPI example, through FastAPI's TestClient (real HTTP handling, lifespan included) on PostgreSQL."""

from __future__ import annotations

import pytest

from ironflow_py import PostgresStore

pytest.importorskip("fastapi")
pytest.importorskip("httpx2")

from fastapi.testclient import TestClient

from ironflow_py.examples.fastapi_app import create_app


def test_start_approve_and_wait_for_the_greeting(pg_url: str, pg_store: PostgresStore) -> None:
    with TestClient(create_app(pg_url, schema=pg_store.schema)) as client:
        started = client.post("/greetings", json={"id": "g1", "name": "Ada"})
        assert (started.status_code, started.json()) == (201, {"id": "g1", "status": "accepted"})
        again = client.post("/greetings", json={"id": "g1", "name": "Ada"})
        assert again.status_code == 409 and "already started" in again.json()["detail"]

        # Approved while the greeting is still being composed: kept until the one-second wait ends.
        assert client.post("/greetings/g1/approval", json={"approved": True}).status_code == 200
        done = client.get("/greetings/g1", params={"wait": 60})
        assert (done.status_code, done.json()) == (
            200,
            {"id": "g1", "status": "completed", "greeting": "Hello, Ada!", "error": None},
        )
        assert client.get("/greetings/nobody").status_code == 404


def test_a_wait_that_runs_out_answers_202_with_the_state_so_far(pg_url: str, pg_store: PostgresStore) -> None:
    with TestClient(create_app(pg_url, schema=pg_store.schema, run_worker=False)) as client:
        assert client.post("/greetings", json={"id": "g2", "name": "Grace"}).status_code == 201
        waiting = client.get("/greetings/g2", params={"wait": 0.2})
        assert waiting.status_code == 202 and waiting.json()["status"] == "greeting"


def test_the_app_refuses_to_start_on_an_unmigrated_schema(pg_url: str, schema: str) -> None:
    from ironflow_py import SchemaNotMigrated

    with pytest.raises(SchemaNotMigrated), TestClient(create_app(pg_url, schema=schema)):
        pass
