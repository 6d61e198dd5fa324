"""Client-side deadlines (issue #11 item 3, design/reliability.md "Stalls"), on a real PostgreSQL.

A statement that gets no answer is cut by the store's watchdog after its bound and raises `StoreStalled`;
the pool discards the connection and the next call works. A worker's claims, heartbeats and settles are
bounded by half the lease, whatever `stall_timeout` says. The feedback transaction carries a local
`idle_in_transaction_session_timeout`, so the server ends a session frozen inside it. The stalls here are
made with real locks held by another session; the frozen proxy tests are in tests/reliability/test_stalls.py.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg import sql

from ironflow_py import ConfigurationError, PostgresStore, StoreError, StoreStalled, WorkflowService
from ironflow_py.store.base import EffectClaim, Settle, SettleKind
from tests.effect_app import Job, Start

Conn = psycopg.Connection[tuple[Any, ...]]
#: Slack for a loaded two-core machine: the watchdog looks every eighth of a bound, threads get scheduled late.
SLACK = 2.0


@pytest.fixture
def store(pg_url: str, schema: str) -> Iterator[PostgresStore]:
    with PostgresStore.connect(pg_url, schema=schema, max_size=4, stall_timeout=30) as made:
        made.migrate()
        yield made


def claim_one(store: PostgresStore, lease: timedelta, worker: str = "w1") -> EffectClaim:
    WorkflowService(store, workflows=[Job]).execute(Start("j1", 1, "noop"))
    claims = store.outbox(worker, lease=lease).claim_effects(None, lease, 10)
    assert len(claims) == 1
    return claims[0]


def wait_for(condition: Any, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        pause.wait(0.02)


def test_a_statement_without_an_answer_is_cut_after_stall_timeout(pg_url: str, schema: str, admin: Conn) -> None:
    with PostgresStore.connect(pg_url, schema=schema, max_size=2, stall_timeout=0.5) as store:
        started = time.monotonic()
        with pytest.raises(StoreStalled) as raised, store.connection() as conn:
            pid = conn.info.backend_pid
            conn.execute("SELECT pg_sleep(60)")  # stands in for a server that never answers
        elapsed = time.monotonic() - started
        assert 0.5 <= elapsed < 0.5 + SLACK
        assert "0.5 s" in str(raised.value) and isinstance(raised.value, StoreError)  # retryable
        # The cut connection is discarded: the next call gets a working one.
        with store.connection() as conn:
            assert conn.info.backend_pid != pid
            assert conn.execute("SELECT 1").fetchone() == (1,)
        assert store.watchdog.cuts == 1

        # The server notices its client is gone (client_connection_check_interval, PostgreSQL 14+) and ends
        # the statement instead of sleeping on for a minute.
        def ended() -> bool:
            row = admin.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
            return row is not None and row[0] == 0

        if admin.info.server_version >= 140000:
            wait_for(ended, "the server to end the cut session's statement", timeout=20)


def test_a_heartbeat_blocked_past_half_the_lease_is_cut_whatever_stall_timeout_says(
    store: PostgresStore, admin: Conn
) -> None:
    lease = timedelta(seconds=2)
    claim = claim_one(store, lease)
    outbox = store.outbox("w1", lease=lease)
    table = sql.SQL("SELECT 1 FROM {}.outbox WHERE id = %s FOR UPDATE").format(sql.Identifier(store.schema))
    with admin.transaction():
        admin.execute(table, (claim.id,))  # the row is locked: the heartbeat waits, as behind a frozen network
        started = time.monotonic()
        with pytest.raises(StoreStalled):
            outbox.heartbeat(claim, None, lease)
        heartbeat_s = time.monotonic() - started
        started = time.monotonic()
        with pytest.raises(StoreStalled):
            outbox.complete_effects([claim], None)  # a settle: bounded by half the outbox's lease too
        complete_s = time.monotonic() - started
    assert 1.0 <= heartbeat_s < 1.0 + SLACK  # half the lease, not stall_timeout's 30 s
    assert 1.0 <= complete_s < 1.0 + SLACK
    assert store.watchdog.cuts == 2
    # A statement the server was already running may still complete once the lock is free (as after any lost
    # connection): both are fenced, so at worst the claim's own lease is extended or its row marked done.
    assert outbox.complete_effects([claim], None) in ({claim.id}, set())


@pytest.mark.parametrize("table", ["outbox", "timers"])
def test_a_claim_blocked_past_half_the_lease_is_cut(store: PostgresStore, admin: Conn, table: str) -> None:
    """A claim whose answer comes back after half the lease could hand the worker claims already half gone:
    it is cut instead (claims skip locked rows, so a table lock stands in for a frozen network)."""
    lease = timedelta(seconds=2)
    outbox = store.outbox("w1", lease=lease)
    lock = sql.SQL("LOCK TABLE {}.{} IN ACCESS EXCLUSIVE MODE").format(
        sql.Identifier(store.schema), sql.Identifier(table)
    )
    with admin.transaction():
        admin.execute(lock)
        started = time.monotonic()
        with pytest.raises(StoreStalled):
            if table == "outbox":
                outbox.claim_effects(None, lease, 10)
            else:
                outbox.claim_timers(None, lease, 10)
        elapsed = time.monotonic() - started
    assert 1.0 <= elapsed < 1.0 + SLACK


def test_a_feedback_transaction_blocked_past_its_deadline_is_cut(store: PostgresStore, admin: Conn) -> None:
    """The settle waits for a row another session holds (as it would behind a frozen network): the whole
    transaction ends at its deadline, not after `stall_timeout`, and nothing is written."""
    lease = timedelta(seconds=60)
    claim = claim_one(store, lease)
    settle = Settle(SettleKind.EFFECT_DONE, claim.id, "w1", claim.token, datetime.now(UTC), deadline=1.0)
    row = sql.SQL("SELECT 1 FROM {}.outbox WHERE id = %s FOR UPDATE").format(sql.Identifier(store.schema))
    with admin.transaction():
        admin.execute(row, (claim.id,))
        started = time.monotonic()
        with pytest.raises(StoreStalled), store.locked("job", "j1", settle=settle):
            pass
        elapsed = time.monotonic() - started
    assert 1.0 <= elapsed < 1.0 + SLACK
    # The cut transaction never commits: its session is gone (a statement the server still ran rolls back).
    assert store.outbox("w1").heartbeat(claim, None, lease) is not None


def test_the_feedback_transaction_is_ended_by_the_server_when_it_sits_idle_past_its_deadline(
    store: PostgresStore, admin: Conn
) -> None:
    """A worker frozen inside its feedback transaction (here: a block that stops talking) loses the session,
    so the instance lock, the claimed row and the transaction horizon are free again after the deadline."""
    lease = timedelta(seconds=60)
    claim = claim_one(store, lease)
    settle = Settle(SettleKind.EFFECT_DONE, claim.id, "w1", claim.token, datetime.now(UTC), deadline=1.5)
    with pytest.raises(StoreError), store.locked("job", "j1", settle=settle) as tx:
        conn = tx._conn
        pid = conn.info.backend_pid
        setting = conn.execute("SHOW idle_in_transaction_session_timeout").fetchone()
        assert setting == ("1500ms",)

        def gone() -> bool:
            row = admin.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
            return row is not None and row[0] == 0

        wait_for(gone, "the server to end the idle feedback transaction")
        tx.load()  # the frozen worker wakes up: its session is gone, nothing it did was committed
    # The settle was rolled back: the row is still pending under the same claim, and the lock is free.
    assert store.outbox("w1").heartbeat(claim, None, lease) is not None
    with store.locked("job", "j1") as tx:
        assert tx.load().events


def test_a_call_bounded_as_a_whole_leaves_its_connection_with_the_default_bound(pg_url: str, schema: str) -> None:
    """A claim's call deadline must not follow its connection back into the pool: the next caller of that
    connection would be cut as soon as it starts."""
    with PostgresStore.connect(pg_url, schema=schema, max_size=1, stall_timeout=30) as store:
        with store.connection(within=0.5) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
            first = conn
        with store.connection() as conn:
            assert conn is first
            assert conn.bound == 30 and conn.call_deadline is None  # type: ignore[attr-defined]
            conn.execute("SELECT pg_sleep(0.7)")  # longer than the earlier call's deadline: not cut
        assert store.watchdog.cuts == 0


@pytest.mark.parametrize("value", [0, -1.0, True, "30"])
def test_stall_timeout_must_be_positive_seconds_or_none(pg_url: str, value: Any) -> None:
    with pytest.raises(ConfigurationError, match="stall_timeout"):
        PostgresStore.connect(pg_url, stall_timeout=value)


def test_no_stall_timeout_means_no_cut(pg_url: str, schema: str) -> None:
    with PostgresStore.connect(pg_url, schema=schema, max_size=1, stall_timeout=None) as store:
        with store.connection() as conn:
            assert conn.bound is None  # type: ignore[attr-defined]
            conn.execute("SELECT pg_sleep(0.2)")
        assert store.watchdog.cuts == 0


def test_the_cli_takes_the_stall_timeout(
    pg_url: str, schema: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from ironflow_py.cli import main

    opened: list[float | None] = []
    connect = PostgresStore.connect

    def spy(url: str, **kwargs: Any) -> PostgresStore:
        opened.append(kwargs.get("stall_timeout"))
        return connect(url, **kwargs)

    monkeypatch.setattr(PostgresStore, "connect", spy)
    args = ["--database-url", pg_url, "--schema", schema, "--json"]
    assert main([*args, "--stall-timeout", "7.5", "migrate"]) == 0
    monkeypatch.setenv("IRONFLOW_STALL_TIMEOUT", "none")
    assert main([*args, "migrate"]) == 0
    assert opened == [7.5, None]
    assert main(["migrate", *args, "--stall-timeout", "0"]) == 2
    assert "expected seconds > 0 or 'none'" in capsys.readouterr().err
