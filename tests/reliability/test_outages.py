"""Outages are bounded (issue #11 item 3) and secrets stay out of output (item 7), on a real PostgreSQL cluster
the test starts, stops and restarts itself (never the shared server).

- After the server was down and comes back, `execute` and the effect worker both succeed within a few
  seconds (the pool's reconnect backoff is capped), and the worker logs the outage once, not per try.
- Connecting with a wrong password fails at once with the cause; a server that accepts TCP but never
  answers fails within the connect timeout; in neither message is the password, in any libpq form.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ironflow_py import EffectRuntime, PostgresStore, StoreError, WorkflowService
from ironflow_py.store import _conninfo
from ironflow_py.store.postgres import RECONNECT_TIMEOUT
from tests.effect_app import Job, Start, make_registry
from tests.reliability import throwaway_pg
from tests.reliability.throwaway_pg import PASSWORD, ThrowawayCluster

pytestmark = pytest.mark.skipif(not throwaway_pg.available(), reason="needs the system initdb/pg_ctl")

#: What "within a few seconds" means in these tests: recovery after the server is back.
RECOVERY_BOUND = 5.0


@pytest.fixture(scope="module")
def cluster() -> Iterator[ThrowawayCluster]:
    made = ThrowawayCluster()
    try:
        yield made
    finally:
        made.close()


def password_forms(cluster: ThrowawayCluster, password: str) -> dict[str, str]:
    """The same connection in the three libpq forms that carry a password."""
    port = cluster.port
    return {
        "url": f"postgresql://{throwaway_pg.USER}:{password}@127.0.0.1:{port}/postgres",
        "query": f"postgresql://{throwaway_pg.USER}@127.0.0.1:{port}/postgres?password={password}",
        "key=value": f"host=127.0.0.1 port={port} user={throwaway_pg.USER} password={password} dbname=postgres",
    }


@pytest.mark.parametrize("form", ["url", "query", "key=value"])
def test_a_wrong_password_fails_at_once_with_the_cause_and_no_password(cluster: ThrowawayCluster, form: str) -> None:
    wrong = "Wr0ng-Secret-Value"
    url = password_forms(cluster, wrong)[form]
    started = time.monotonic()
    with pytest.raises(StoreError) as raised:
        PostgresStore.connect(url, timeout=30)
    elapsed = time.monotonic() - started
    message = str(raised.value)
    assert "password authentication failed" in message
    assert wrong not in message and "password=***" in message
    assert elapsed < _conninfo.CONNECT_TIMEOUT  # not the pool's 30 s timeout


def test_a_server_that_never_answers_fails_within_the_connect_timeout() -> None:
    """A TCP peer that accepts and then says nothing (a frozen proxy, a black-holed host)."""
    silent = socket.create_server(("127.0.0.1", 0))
    port = silent.getsockname()[1]
    url = f"postgresql://someone:{PASSWORD}@127.0.0.1:{port}/postgres"
    started = time.monotonic()
    try:
        with pytest.raises(StoreError) as raised:
            PostgresStore.connect(url, timeout=30)
    finally:
        silent.close()
    elapsed = time.monotonic() - started
    assert "timeout" in str(raised.value).lower()
    assert PASSWORD not in str(raised.value)
    assert _conninfo.CONNECT_TIMEOUT - 1 <= elapsed < _conninfo.CONNECT_TIMEOUT + 3


def test_password_masking_covers_every_libpq_form(cluster: ThrowawayCluster) -> None:
    for form, url in password_forms(cluster, PASSWORD).items():
        masked = _conninfo.mask_password(url)
        assert PASSWORD not in masked, form
        assert "password=***" in masked, form
    assert _conninfo.mask_password("postgresql://u@h/db") == "postgresql://u@h/db"  # nothing to hide
    assert PASSWORD not in _conninfo.mask_password(f"host=h password={PASSWORD} bogus")  # unparsable
    assert _conninfo.scrub(f'missing "=" after "{PASSWORD}"', f"password={PASSWORD}") == 'missing "=" after "***"'


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def events(self, name: str, level: int = logging.INFO) -> list[logging.LogRecord]:
        return [r for r in self.records if getattr(r, "event", None) == name and r.levelno >= level]


def failures(records: Records) -> list[logging.LogRecord]:
    """The worker's error lines about a failed claim or poll (whichever call met the outage first)."""
    return records.events("claim_failed", logging.ERROR) + records.events("poll_failed", logging.ERROR)


def wait_for(condition: Any, what: str, timeout: float = 60.0) -> float:
    """Poll a real condition (bounded); returns the seconds it took."""
    started = time.monotonic()
    pause = threading.Event()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"timed out waiting for {what}")
        pause.wait(0.02)
    return time.monotonic() - started


def test_everything_resumes_within_seconds_after_a_restart(
    cluster: ThrowawayCluster, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The server is down for 16 s (psycopg_pool's uncapped backoff would next try at 31 s), then back: a caller
    and the worker (poll interval an hour, no NOTIFY) both succeed within RECOVERY_BOUND; the worker's
    outage is one error line and one `database_back` line."""
    schema = f"outage_{request.node.nodeid.__hash__() & 0xFFFF:x}"
    store = PostgresStore.connect(cluster.url(), schema=schema, timeout=30)
    records = Records()
    logging.getLogger("ironflow_py").addHandler(records)
    logging.getLogger("ironflow_py").setLevel(logging.DEBUG)
    thread: threading.Thread | None = None
    rt: EffectRuntime | None = None
    try:
        store.migrate()
        service = WorkflowService(store, workflows=[Job])
        rt = EffectRuntime(
            service, make_registry(tmp_path), handle_signals=False, poll_interval=3600, listen=False, concurrency=2
        )
        thread = threading.Thread(target=rt.run)
        thread.start()
        service.execute(Start("before", 1, "reply"))
        wait_for(lambda: service.state("job", "before").recorded == (0,), "the first effect")

        cluster.stop()
        with pytest.raises(StoreError):
            service.execute(Start("during", 1, "reply"))
        wait_for(lambda: failures(records), "the worker to notice the outage")
        down = threading.Event()
        down.wait(16.0)  # the outage itself: how long the server stays away (not an ordering device)
        cluster.start()
        back = time.monotonic()

        def caller_succeeds() -> bool:
            try:
                service.execute(Start("after", 1, "reply"))
            except StoreError:
                return False
            return True

        caller_s = wait_for(caller_succeeds, "a caller to succeed after the restart", timeout=60)
        worker_s = (
            wait_for(lambda: service.state("job", "after").recorded == (0,), "the worker to handle a new effect", 60)
            + caller_s
        )
        assert time.monotonic() - back < 60
        print(f"\nrecovery after restart: caller {caller_s:.2f} s, worker {worker_s:.2f} s")
        assert caller_s < RECOVERY_BOUND
        assert worker_s < RECOVERY_BOUND
        assert len(failures(records)) == 1  # once per outage, not per loop
        wait_for(lambda: records.events("database_back", logging.WARNING), "the outage's end to be logged")
        assert service.state("job", "before").recorded == (0,)  # nothing lost, nothing applied twice
    finally:
        if rt is not None:
            rt.stop()
        if thread is not None:
            thread.join(30)
        logging.getLogger("ironflow_py").removeHandler(records)
        store.close()


def test_a_caller_already_waiting_for_a_connection_gets_one_when_the_server_is_back(
    cluster: ThrowawayCluster, request: pytest.FixtureRequest
) -> None:
    """psycopg_pool gives a lost connection's slot up after RECONNECT_TIMEOUT and opens a new one only when a
    caller asks. A caller that was already waiting (a service call during a failover, which takes longer
    than that) must get a connection once the server is back, not sit out the pool timeout (60 s here)."""
    schema = f"waiting_{request.node.nodeid.__hash__() & 0xFFFF:x}"
    store = PostgresStore.connect(cluster.url(), schema=schema, min_size=1, max_size=1, timeout=60)
    try:
        store.migrate()
        service = WorkflowService(store, workflows=[Job])
        cluster.stop()
        with pytest.raises(StoreError):  # the pooled session is gone: discarded, its slot reconnecting
            service.execute(Start("first", 0, "reply"))
        result: dict[str, Any] = {}

        def call() -> None:
            try:
                result["outcome"] = service.execute(Start("waiting", 0, "reply"))
            except StoreError as exc:
                result["error"] = exc

        caller = threading.Thread(target=call)
        caller.start()
        down = threading.Event()
        down.wait(RECONNECT_TIMEOUT + 4)  # the outage outlasts the pool's reconnect attempts (not ordering)
        assert caller.is_alive()  # still waiting for a connection
        cluster.start()
        back = time.monotonic()
        caller.join(90)
        assert "error" not in result, result
        assert result["outcome"].status.value == "accepted"
        print(f"\nwaiting caller served {time.monotonic() - back:.2f} s after the server was back")
    finally:
        store.close()
