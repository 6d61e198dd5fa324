"""Multi-host connection strings and sessions on a read-only node (issue 17 §1), on the test database.

What the failover test (tests/reliability/test_failover.py) needs from every connection, checked here
without a formation:
- a `host=a,b port=p1,p2 target_session_attrs=read-write` string whose first host is down reaches the
  server behind the second, for the store, its daemons' own connections and the CLI;
- a pooled session that meets SQLSTATE 25006 (read_only_sql_transaction: it is on a standby or the demoted
  primary) is an outage (`StoreError`), never a refused value, and the pool replaces that session, so the
  next call runs on a fresh one (which target_session_attrs sends to the primary).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from ironflow_py import OutcomeStatus, PostgresStore, StoreError, ValueRefused, WorkflowService
from tests.reliability.formation import free_port
from tests.workflows import Add, Counter

ROOT = Path(__file__).resolve().parents[2]


def multi_host(pg_url: str) -> str:
    """`pg_url` behind a first host that refuses connections, as a failover formation's old primary does."""
    params = {k: str(v) for k, v in conninfo_to_dict(pg_url).items()}
    host, port = params.get("host", "127.0.0.1"), params.get("port", "5432")
    params.update(host=f"127.0.0.1,{host}", port=f"{free_port()},{port}", target_session_attrs="read-write")
    return make_conninfo("", **params)


def test_a_multi_host_string_whose_first_host_is_down_reaches_the_writable_server(pg_url: str, schema: str) -> None:
    url = multi_host(pg_url)
    with PostgresStore.connect(url, schema=schema, max_size=2) as store:
        store.migrate()
        service = WorkflowService(store, workflows=[Counter])
        assert service.execute(Add("multi", 2)).status is OutcomeStatus.ACCEPTED
        assert service.state("counter", "multi").total == 2
        assert store.listening(30.0)  # the waiters' own LISTEN connection goes through the same list


def test_the_cli_takes_a_multi_host_string_from_the_environment(pg_url: str, schema: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IRONFLOW_") and k != "DATABASE_URL"}
    env.update(IRONFLOW_DATABASE_URL=multi_host(pg_url), IRONFLOW_SCHEMA=schema)
    done = subprocess.run(
        [sys.executable, "-m", "ironflow_py", "migrate", "--json"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["applied"]


def test_a_pooled_session_on_a_read_only_node_is_an_outage_and_is_replaced(pg_url: str, schema: str) -> None:
    """The one pooled session is made read-only, as a session left on a demoted primary would be: the write
    fails with StoreError naming 25006 (not ValueRefused), and the next call runs on a new session."""
    with PostgresStore.connect(pg_url, schema=schema, min_size=1, max_size=1) as store:
        store.migrate()
        service = WorkflowService(store, workflows=[Counter])
        conn: psycopg.Connection[Any]
        with store.pool.connection() as conn:
            conn.execute("SET default_transaction_read_only = on")  # this session can no longer write
            stale = conn.info.backend_pid
        with pytest.raises(StoreError) as raised:
            service.execute(Add("ro", 1))
        assert not isinstance(raised.value, ValueRefused)
        assert "ReadOnlySqlTransaction" in str(raised.value)
        assert service.execute(Add("ro", 1)).status is OutcomeStatus.ACCEPTED
        with store.pool.connection() as conn:
            assert conn.info.backend_pid != stale
        assert service.state("counter", "ro").total == 1


def test_after_one_lost_session_the_other_dead_pooled_sessions_are_replaced_before_use(
    pg_url: str, schema: str, admin: psycopg.Connection[Any]
) -> None:
    """Every session of a 3-connection pool is terminated (the server died, or the primary moved). The first
    call meets a dead session and fails; the pool then checks its idle sessions, so the next calls run on
    new ones instead of each failing on a dead one."""
    name = f"ironflow_py-lost-{schema}"[:63]
    with PostgresStore.connect(pg_url, schema=schema, min_size=3, max_size=3, application_name=name) as store:
        store.migrate()
        service = WorkflowService(store, workflows=[Counter])
        store.pool.wait(30)
        pids = [r[0] for r in admin.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s", (name,))]
        assert len(pids) == 3
        for pid in pids:
            admin.execute("SELECT pg_terminate_backend(%s, 10000)", (pid,))  # waits until it has exited
        with pytest.raises(StoreError):
            service.execute(Add("lost", 1))

        def replaced() -> bool:
            query = "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND NOT pid = ANY(%s)"
            row = admin.execute(query, (name, pids)).fetchone()
            return row is not None and row[0] >= 3 and store.pool.get_stats().get("connections_lost", 0) >= 2

        deadline = time.monotonic() + 30
        while not replaced():
            assert time.monotonic() < deadline, store.pool.get_stats()
            time.sleep(0.05)  # polling a real condition, not ordering anything
        for _ in range(3):
            assert service.execute(Add("lost", 1)).status is OutcomeStatus.ACCEPTED
