"""A commit whose outcome is unknown says so (`CommitUnknown`), and an input key makes the retry safe
(design/reliability.md, class 5). Real connections are cut at COMMIT: by a proxy that swallows the
server's answer, and by pg_terminate_backend while COMMIT waits in a deferred trigger."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import psycopg
import pytest
from psycopg import sql

from ironflow_py import CommitUnknown, OutcomeStatus, PostgresStore, StoreError, WorkflowService
from tests.reliability.commit_proxy import CommitCutProxy
from tests.workflows import Add, Counter

Conn = psycopg.Connection[tuple[Any, ...]]


def wait_for(condition: Any, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)  # polling a real condition, not ordering anything


def event_count(admin: Conn, schema: str, workflow_id: str) -> int:
    query = sql.SQL("SELECT count(*) FROM {}.events WHERE workflow_id = %s").format(sql.Identifier(schema))
    row = admin.execute(query, (workflow_id,)).fetchone()
    assert row is not None
    return int(row[0])


@pytest.fixture
def proxy(pg_url: str) -> Iterator[CommitCutProxy]:
    p = CommitCutProxy(pg_url)
    yield p
    p.close()


def test_a_commit_cut_after_it_happened_is_commit_unknown_and_a_keyed_retry_is_a_duplicate(
    pg_store: PostgresStore, proxy: CommitCutProxy, admin: Conn, schema: str
) -> None:
    """The issue's example: the input committed, the client never heard. Retrying without a key would apply
    it twice; with the key the retry reports duplicate and the input is applied once."""
    with PostgresStore.connect(proxy.url, schema=schema, min_size=1, max_size=1) as store:
        service = WorkflowService(store, workflows=[Counter])
        service.execute(Add("c1", 1))  # a normal commit through the proxy first
        proxy.arm(lambda: wait_for(lambda: event_count(admin, schema, "c1") == 2, "the commit to be visible"))
        with pytest.raises(CommitUnknown) as info:
            service.execute(Add("c1", 5), input_key="pay-5")
        assert proxy.cut.is_set()
        assert not isinstance(info.value, StoreError), "an unknown outcome is not a plain outage"
        assert (info.value.workflow_type, info.value.workflow_id) == ("counter", "c1")
        assert "input key" in (CommitUnknown.__doc__ or "")
    # The retry (through a healthy connection) finds the key: applied exactly once.
    retry = WorkflowService(pg_store, workflows=[Counter]).execute(Add("c1", 5), input_key="pay-5")
    assert retry.status is OutcomeStatus.DUPLICATE and retry.first_status is OutcomeStatus.ACCEPTED
    assert event_count(admin, schema, "c1") == 2
    assert retry.state.total == 6


def test_a_backend_killed_during_commit_is_commit_unknown_and_a_keyed_retry_applies_once(
    pg_store: PostgresStore, admin: Conn, schema: str
) -> None:
    """Another member: the connection dies while COMMIT runs a deferred trigger, before the commit record.
    The client cannot tell this from the case above; the same keyed retry now applies the input, once."""
    s = sql.Identifier(schema)
    lock_key = 7_330_010
    admin.execute(
        sql.SQL(
            "CREATE FUNCTION {}.hold_commit() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN PERFORM pg_advisory_xact_lock(%s); RETURN NULL; END $$"
        )
        .format(s)
        .as_string(admin)
        .replace("%s", str(lock_key))
    )
    admin.execute(
        sql.SQL(
            "CREATE CONSTRAINT TRIGGER hold_commit AFTER INSERT ON {}.events DEFERRABLE INITIALLY DEFERRED "
            "FOR EACH ROW EXECUTE FUNCTION {}.hold_commit()"
        ).format(s, s)
    )
    service = WorkflowService(pg_store, workflows=[Counter])
    admin.execute("SELECT pg_advisory_lock(%s)", (lock_key,))
    try:
        with ThreadPoolExecutor(1) as pool:
            pending: Future[Any] = pool.submit(service.execute, Add("c2", 3), input_key="k-3")

            def waiting_pid() -> int | None:
                row = admin.execute(
                    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND objid = %s",
                    (lock_key,),
                ).fetchone()
                return None if row is None else int(row[0])

            wait_for(lambda: waiting_pid() is not None, "COMMIT to block in the deferred trigger")
            pid = waiting_pid()
            row = admin.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
            assert row is not None and row[0].strip().upper() == "COMMIT"
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
            with pytest.raises(CommitUnknown):
                pending.result(timeout=30)
    finally:
        admin.execute("SELECT pg_advisory_unlock(%s)", (lock_key,))
    assert event_count(admin, schema, "c2") == 0
    admin.execute(sql.SQL("DROP TRIGGER hold_commit ON {}.events").format(s))
    retry = service.execute(Add("c2", 3), input_key="k-3")
    again = service.execute(Add("c2", 3), input_key="k-3")
    assert (retry.status, again.status) == (OutcomeStatus.ACCEPTED, OutcomeStatus.DUPLICATE)
    assert event_count(admin, schema, "c2") == 1


def test_a_connection_lost_before_commit_is_a_plain_store_error(
    pg_store: PostgresStore, admin: Conn, schema: str
) -> None:
    """The body had not finished: the transaction is certainly rolled back, so this is an outage."""
    lock_key = 7_330_011
    service = WorkflowService(pg_store, workflows=[Counter])
    admin.execute("SELECT pg_advisory_lock(%s)", (lock_key,))
    blocked = threading.Event()

    class Slow(Counter):
        def decide(self, now: Any, state: Any, input: Any) -> Any:
            blocked.set()
            return super().decide(now, state, input)

    try:
        with ThreadPoolExecutor(1) as pool:
            s = sql.Identifier(schema)
            admin.execute(
                sql.SQL(
                    "CREATE FUNCTION {}.hold_insert() RETURNS trigger LANGUAGE plpgsql AS "
                    "$$ BEGIN PERFORM pg_advisory_xact_lock({}); RETURN NULL; END $$"
                ).format(s, sql.Literal(lock_key))
            )
            admin.execute(
                sql.SQL(
                    "CREATE TRIGGER hold_insert AFTER INSERT ON {}.events FOR EACH STATEMENT "
                    "EXECUTE FUNCTION {}.hold_insert()"
                ).format(s, s)
            )
            pending: Future[Any] = pool.submit(WorkflowService(pg_store, workflows=[Slow]).execute, Add("c3", 1))
            rows: list[Any] = []

            def waiting() -> bool:
                rows[:] = admin.execute(
                    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND objid = %s",
                    (lock_key,),
                ).fetchall()
                return bool(rows)

            wait_for(waiting, "the insert to block")
            admin.execute("SELECT pg_terminate_backend(%s)", (rows[0][0],))
            with pytest.raises(StoreError) as info:
                pending.result(timeout=30)
            assert not isinstance(info.value, CommitUnknown)
    finally:
        admin.execute("SELECT pg_advisory_unlock(%s)", (lock_key,))
    assert blocked.is_set()
    assert event_count(admin, schema, "c3") == 0
    del service
