"""`/healthz`, `/readyz` and `/metrics` of the HealthServer, over real HTTP and a real database."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ironflow_py import PostgresStore
from ironflow_py.store.postgres_ops import StoreOps
from ironflow_py.telemetry import HealthServer, Metrics, Observer
from tests.ops_fixtures import populate


def get(port: int, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.fixture
def unmigrated(pg_url: str, schema: str) -> Iterator[PostgresStore]:
    store = PostgresStore.connect(pg_url, schema=schema, max_size=2)
    yield store
    store.close()


def test_healthz_answers_503_until_the_loop_turns_then_200_and_503_again_when_it_stalls(
    pg_store: PostgresStore,
) -> None:
    observer = Observer()
    with HealthServer(observer, loop="effects", ready=StoreOps(pg_store).readiness, stale_after=0.5) as server:
        status, body = get(server.port, "/healthz")
        assert status == 503 and json.loads(body)["alive"] is False
        observer.tick("effects")
        status, body = get(server.port, "/healthz")
        assert status == 200 and json.loads(body)["alive"] is True
        observer.tick("projections")  # another loop's turn says nothing about this one
        observer._ticks["effects"] -= 1.0  # the loop last turned a second ago: past stale_after
        assert get(server.port, "/healthz")[0] == 503


def test_readyz_is_200_on_a_migrated_schema(pg_store: PostgresStore) -> None:
    with HealthServer(Observer(), loop="effects", ready=StoreOps(pg_store).readiness) as server:
        status, body = get(server.port, "/readyz")
    assert status == 200
    assert json.loads(body) == {"ready": True, "reason": ""}


def test_readyz_is_503_on_an_unmigrated_schema_and_says_to_migrate(unmigrated: PostgresStore) -> None:
    with HealthServer(Observer(), loop="effects", ready=StoreOps(unmigrated).readiness) as server:
        status, body = get(server.port, "/readyz")
        assert status == 503
        assert "run `ironflow-py migrate`" in json.loads(body)["reason"]
        unmigrated.migrate()
        assert get(server.port, "/readyz")[0] == 200


def test_readyz_is_503_when_the_schema_lacks_a_later_migration(pg_store: PostgresStore, admin: object) -> None:
    import psycopg
    from psycopg import sql

    assert isinstance(admin, psycopg.Connection)
    admin.execute(
        sql.SQL(
            "DELETE FROM {}.schema_migrations WHERE version = (SELECT max(version) FROM {}.schema_migrations)"
        ).format(sql.Identifier(pg_store.schema), sql.Identifier(pg_store.schema))
    )
    readiness = StoreOps(pg_store).readiness()
    assert not readiness.ready and "lacks migrations" in readiness.reason


def test_readyz_is_503_when_the_database_is_unreachable(pg_store: PostgresStore) -> None:
    ops = StoreOps(pg_store)
    pg_store.close()
    readiness = ops.readiness()
    assert not readiness.ready and "unreachable" in readiness.reason


def test_metrics_is_404_without_metrics_and_unknown_paths_404(pg_store: PostgresStore) -> None:
    with HealthServer(Observer(), loop="effects", ready=StoreOps(pg_store).readiness) as server:
        assert get(server.port, "/metrics")[0] == 404
        assert get(server.port, "/nope")[0] == 404


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_read_the_outbox_and_timers_from_the_database_at_scrape_time(pg_store: PostgresStore) -> None:
    populated = populate(pg_store)
    metrics = Metrics()
    metrics.watch_outbox(pg_store, populated.clock.now)
    observer = Observer(metrics=metrics)
    with HealthServer(observer, loop="effects", ready=StoreOps(pg_store).readiness) as server:
        status, body = get(server.port, "/metrics")
    assert status == 200
    found = samples(body.decode())
    assert found[("ironflow_outbox_pending", ())] == 1  # o-pending's charge
    assert found[("ironflow_outbox_dead", ())] == 1  # o-dead's charge
    assert found[("ironflow_timers_overdue", ())] == 1  # o-overdue's retry-payment
    assert found[("ironflow_outbox_oldest_pending_age_seconds", ())] == 600.0  # ManualClock: 10 minutes


def test_a_scrape_still_answers_while_the_database_is_away(pg_store: PostgresStore) -> None:
    metrics = Metrics()
    metrics.watch_outbox(pg_store, lambda: datetime.now(UTC))
    metrics.worker_load("effects", 3, 8)
    pg_store.close()
    with HealthServer(Observer(metrics=metrics), loop="effects", ready=StoreOps(pg_store).readiness) as server:
        status, body = get(server.port, "/metrics")
    assert status == 200
    found = samples(body.decode())
    assert found[("ironflow_worker_in_flight", (("loop", "effects"),))] == 3
    assert ("ironflow_outbox_pending", ()) not in found


def test_two_metrics_objects_never_share_counters() -> None:
    first, second = Metrics(), Metrics()
    first.decision("order-saga", "accepted", 0.01, 3)
    assert (
        first.registry.get_sample_value("ironflow_inputs_total", {"workflow_type": "order-saga", "outcome": "accepted"})
        == 1
    )
    assert (
        second.registry.get_sample_value(
            "ironflow_inputs_total", {"workflow_type": "order-saga", "outcome": "accepted"}
        )
        is None
    )
