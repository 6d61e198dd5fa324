"""Connection poolers (issue #11 item 4), with a real PgBouncer in transaction pooling mode.

- `prepare_threshold=None` (the pooler option): 400 concurrent `execute` calls through PgBouncer all
  succeed; psycopg's default (prepare after 5 runs) fails some of them with prepared-statement errors.
- Session state stays off pooled server connections: the store's idle-in-transaction bound is a session
  SET, made only on a direct connection.
- Every LISTEN user self-tests its LISTEN at start: behind PgBouncer the effect worker, the projection
  worker and the waiters' listener each warn once, then poll; the effect worker still starts an effect
  within about a second of its commit.

PgBouncer comes from Debian's `pgbouncer` package (`.ci/run` installs it); without the binary these tests
are skipped with that reason.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from ironflow_py import EffectContext, EffectRegistry, EffectRuntime, PostgresStore, StoreError, WorkflowService
from ironflow_py.cli import main
from ironflow_py.errors import ConfigurationError
from ironflow_py.lifecycle import Completed
from ironflow_py.store.postgres_listen import LISTEN_UNAVAILABLE, connect_listening, self_test
from tests.effect_app import Job, Start, Work, WorkDone
from tests.lifecycle_workflows import EndJob, JobWorkflow, StartJob
from tests.reliability import pgbouncer

pytestmark = pytest.mark.skipif(
    not pgbouncer.available(), reason="needs the pgbouncer binary (Debian package `pgbouncer`)"
)


@pytest.fixture
def bouncer(pg_url: str) -> Iterator[pgbouncer.PgBouncer]:
    """PgBouncer in transaction pooling mode in front of the test database, on a free port."""
    proc = pgbouncer.PgBouncer(pg_url, pool_mode="transaction", pool_size=8)
    try:
        yield proc
    finally:
        proc.close()


def service_of(store: PostgresStore) -> WorkflowService:
    return WorkflowService(store, workflows=[Job])


def _execute_400(store: PostgresStore) -> list[BaseException]:
    """400 concurrent `execute` calls (32 threads, 400 instances); the exceptions raised."""
    service = service_of(store)

    def one(i: int) -> BaseException | None:
        try:
            service.execute(Start(f"job-{i}", 0, "noop"))
        except StoreError as exc:
            return exc
        return None

    with ThreadPoolExecutor(32) as pool:
        results = list(pool.map(one, range(400)))
    return [exc for exc in results if exc is not None]


def test_400_concurrent_executes_through_pgbouncer_succeed_with_prepare_threshold_none(
    bouncer: pgbouncer.PgBouncer, pg_store: PostgresStore, schema: str
) -> None:
    with PostgresStore.connect(bouncer.url, schema=schema, max_size=32, prepare_threshold=None) as store:
        assert store.behind_pooler
        assert store.prepare_threshold is None
        failures = _execute_400(store)
        assert failures == []
        assert len(service_of(store).list_instances("job", limit=1000)) == 400


def test_without_the_option_pgbouncer_fails_prepared_statements(
    bouncer: pgbouncer.PgBouncer, pg_store: PostgresStore, schema: str
) -> None:
    """The failure mode the option exists for (psycopg prepares a statement after its 5th run)."""
    with PostgresStore.connect(bouncer.url, schema=schema, max_size=32) as store:
        failures = _execute_400(store)
    assert failures, "expected prepared-statement errors through a transaction-mode pooler"
    assert all("prepared statement" in str(exc) for exc in failures), failures[:3]


def test_a_direct_store_is_not_taken_for_a_pooled_one(pg_store: PostgresStore) -> None:
    assert not pg_store.behind_pooler
    with pg_store.connection() as conn:
        row = conn.execute("SHOW idle_in_transaction_session_timeout").fetchone()
        check = conn.execute("SELECT current_setting('client_connection_check_interval', true)").fetchone()
    assert row is not None and row[0] not in ("0", "0ms")  # the session bound is set on a direct connection
    assert check is not None and check[0] not in ("0", "0ms")  # PostgreSQL 14+: a vanished client is noticed


def test_no_session_setting_is_left_on_a_pooled_server_connection(pg_url: str, pg_store: PostgresStore) -> None:
    """A session SET behind a transaction pooler would stay on the server connection for other clients."""
    one = pgbouncer.PgBouncer(pg_url, pool_size=1)  # one server connection: every client shares it
    try:
        with PostgresStore.connect(one.url, schema=pg_store.schema, max_size=2, prepare_threshold=None) as store:
            with store.connection() as conn:
                row = conn.execute("SHOW idle_in_transaction_session_timeout").fetchone()
                check = conn.execute("SELECT current_setting('client_connection_check_interval', true)").fetchone()
            assert row is not None and row[0] in ("0", "0ms")
            assert check is not None and check[0] in ("0", "0ms")
    finally:
        one.close()


def _unavailable(caplog: pytest.LogCaptureFixture, listener: str) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if getattr(r, "event", None) == LISTEN_UNAVAILABLE and r.__dict__["context"].get("listener") == listener
    ]


def test_the_effect_worker_behind_pgbouncer_warns_once_and_picks_up_effects_within_a_second(
    bouncer: pgbouncer.PgBouncer, pg_store: PostgresStore, schema: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="ironflow_py")
    started: dict[str, float] = {}
    registry = EffectRegistry()

    @registry.handler(Work)
    def _work(effect: Work, ctx: EffectContext) -> WorkDone:
        started[effect.job_id] = time.monotonic()
        return WorkDone(effect.job_id, effect.index)

    with PostgresStore.connect(bouncer.url, schema=schema, max_size=12, prepare_threshold=None) as store:
        service = WorkflowService(store, workflows=[Job])
        rt = EffectRuntime(service, registry, handle_signals=False, poll_interval=30.0, concurrency=2)
        thread = threading.Thread(target=rt.run)
        thread.start()
        try:
            pause = threading.Event()
            deadline = time.monotonic() + 10
            while not _unavailable(caplog, "effects") and time.monotonic() < deadline:
                pause.wait(0.05)
            assert len(_unavailable(caplog, "effects")) == 1
            latencies = []
            for i in range(5):
                committed = time.monotonic()
                service.execute(Start(f"pickup-{i}", 1, "noop"))
                while f"pickup-{i}" not in started:
                    assert time.monotonic() < committed + 5, "the effect was not picked up within 5 s"
                    pause.wait(0.005)
                latencies.append(started[f"pickup-{i}"] - committed)
            # poll_interval is 30 s: without LISTEN the worker still polls at least every second.
            assert max(latencies) < 1.5, latencies
            assert len(_unavailable(caplog, "effects")) == 1  # once, not per round
            record = _unavailable(caplog, "effects")[0]
            assert "transaction" in record.__dict__["context"]["hint"]
        finally:
            rt.stop()
            thread.join(10)
        assert not thread.is_alive()
    print(f"pickup latency behind PgBouncer: max {max(latencies):.3f} s, all {[round(x, 3) for x in latencies]}")


def test_the_waiters_listener_behind_pgbouncer_warns_once_and_waits_by_polling(
    bouncer: pgbouncer.PgBouncer, pg_store: PostgresStore, schema: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="ironflow_py")
    with PostgresStore.connect(bouncer.url, schema=schema, max_size=4, prepare_threshold=None) as store:
        service = WorkflowService(store, workflows=[JobWorkflow])
        service.execute(StartJob("w1"))
        assert store.listening(5.0) is False  # the self-test failed (it took at most 2 s)
        assert store.listening(5.0) is False  # and is not repeated
        assert len(_unavailable(caplog, "waiters")) == 1
        service.execute(EndJob("w1", "completed", 7))
        began = time.monotonic()
        outcome = service.wait("job", "w1", timeout=10, poll_interval=0.5)
        assert isinstance(outcome, Completed)
        assert time.monotonic() - began < 2
        assert len(_unavailable(caplog, "waiters")) == 1


def test_a_direct_connection_passes_the_self_test_silently(
    pg_store: PostgresStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="ironflow_py")
    assert pg_store.listening(5.0) is True
    assert not [r for r in caplog.records if getattr(r, "event", None) == LISTEN_UNAVAILABLE]


def test_the_cli_takes_the_pooler_option(
    bouncer: pgbouncer.PgBouncer, pg_store: PostgresStore, schema: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--database-url", bouncer.url, "--schema", schema, "--json"]
    assert main([*args, "--prepare-threshold", "none", "migrate"]) == 0
    assert main(["migrate", *args, "--prepare-threshold", "nope"]) == 2
    assert "expected an integer >= 0 or 'none'" in capsys.readouterr().err


def test_the_store_refuses_a_bad_prepare_threshold(pg_url: str) -> None:
    with pytest.raises(ConfigurationError, match="prepare_threshold"):
        PostgresStore.connect(pg_url, prepare_threshold=-1)


def test_a_late_notification_on_a_direct_session_is_not_taken_for_a_pooler(
    pg_url: str, bouncer: pgbouncer.PgBouncer
) -> None:
    """Silence alone is no verdict (a loaded machine delays notifications): only a pooled session fails."""
    for url, verdict in ((pg_url, True), (bouncer.url, False)):
        with connect_listening(url, "ironflow_self_test_listened") as conn:
            # The NOTIFY goes to a channel nobody listens on: the notification never comes.
            assert self_test(conn, url, "ironflow_self_test_elsewhere", timeout=0.2) is verdict
