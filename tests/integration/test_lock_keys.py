"""Advisory lock keys are per schema: two schemas of one database (two tenants, two test schemas on one
server) never wait for each other's instance locks, while one schema's instance still serializes.

Each test holds a lock on an explicit connection and proves what the other side did while it was held
(`pg_locks`, a try-lock, a finished call), with no sleeps. `lock_timeout` on the other schema's store turns
a regression (a shared key) into a failure instead of a hang.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg import sql

from ironflow_py import OutcomeStatus, RetentionPolicy, WorkflowService
from ironflow_py.store.postgres import PostgresStore
from ironflow_py.store.postgres_admin import drop_schema
from tests.workflows import Add, Counter, Finish

Conn = psycopg.Connection[tuple[Any, ...]]

#: Advisory locks on one bigint key in this database (pg_locks shows it as classid = high, objid = low bits).
LOCKS_ON_KEY = """
SELECT pid, granted FROM pg_locks
WHERE locktype = 'advisory' AND objsubid = 1
  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND ((classid::bigint << 32) | objid::bigint) = %s
ORDER BY granted DESC, pid
"""


@pytest.fixture
def other_store(pg_url: str) -> Iterator[PostgresStore]:
    """A second migrated schema on the same database. Its sessions give up on a lock after 60 s: never
    reached when the keys differ, and a failure (not a hang) when they do not."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    url = psycopg.conninfo.make_conninfo(pg_url, options="-c lock_timeout=60000")
    store = PostgresStore.connect(url, schema=schema, max_size=4)
    try:
        store.migrate()
        yield store
    finally:
        store.close()
        drop_schema(pg_url, schema)


def lock_key(admin: Conn, store: PostgresStore, workflow_type: str, workflow_id: str) -> int:
    """The instance lock key as the schema's own function computes it (migration 018)."""
    query = sql.SQL("SELECT {}.instance_lock_key(%s, %s)").format(sql.Identifier(store.schema))
    row = admin.execute(query, (workflow_type, workflow_id)).fetchone()
    assert row is not None
    return int(row[0])


def locks_on(admin: Conn, key: int) -> list[tuple[int, bool]]:
    return [(int(pid), bool(granted)) for pid, granted in admin.execute(LOCKS_ON_KEY, (key,)).fetchall()]


def test_same_type_and_id_in_two_schemas_decide_while_the_other_holds_the_lock(
    pg_store: PostgresStore, other_store: PostgresStore, admin: Conn, pg_url: str
) -> None:
    """A decision in schema B for counter/c1 runs to its commit while a transaction in schema A holds
    counter/c1's instance lock (taken by the real lock_and_load), and A still holds it afterwards."""
    one, two = WorkflowService(pg_store, workflows=[Counter]), WorkflowService(other_store, workflows=[Counter])
    one.execute(Add("c1", 1))
    key_a, key_b = lock_key(admin, pg_store, "counter", "c1"), lock_key(admin, other_store, "counter", "c1")
    assert key_a != key_b
    with pg_store.locked("counter", "c1") as tx:
        tx.load()  # lock_and_load: the decision path's lock
        (holder,) = locks_on(admin, key_a)
        assert holder[1], "schema A's transaction holds its instance lock"
        # Same thread: had B's decision waited for A's lock, it could never return (A commits after it).
        outcome = two.execute(Add("c1", 5))
        assert outcome.status is OutcomeStatus.ACCEPTED
        assert locks_on(admin, key_a) == [holder], "A held the lock throughout B's decision"
        # And the other statement that takes the lock: B's settle path (lock_instance) and a bare try-lock.
        with other_store.locked("counter", "c1") as tx_b:
            tx_b.lock()
        with psycopg.connect(pg_url, autocommit=True) as conn, conn.transaction():
            row = conn.execute("SELECT pg_try_advisory_xact_lock(%s)", (key_b,)).fetchone()
            assert row == (True,)
    assert two.state("counter", "c1").total == 5
    assert one.state("counter", "c1").total == 1


def test_one_schema_still_serializes_an_instance(pg_store: PostgresStore, admin: Conn, pg_url: str) -> None:
    """In one schema, a decision on counter/c1 queues on the lock a transaction holds (seen waiting in
    pg_locks) and runs only after that transaction ends."""
    service = WorkflowService(pg_store, workflows=[Counter])
    service.execute(Add("c1", 1))
    key = lock_key(admin, pg_store, "counter", "c1")
    with ThreadPoolExecutor(1) as pool:
        with pg_store.locked("counter", "c1") as tx:
            tx.load()
            ((holder, granted),) = locks_on(admin, key)
            assert granted
            call: Future[Any] = pool.submit(service.execute, Add("c1", 10))
            tick = threading.Event()
            while len(locks_on(admin, key)) < 2 and not call.done():
                tick.wait(0.01)  # polling pg_locks for the waiter, not a sleep that orders anything
            assert not call.done(), "a decision ran while the instance lock was held"
            assert locks_on(admin, key)[1][1] is False and locks_on(admin, key)[0][0] == holder
            with psycopg.connect(pg_url, autocommit=True) as conn, conn.transaction():
                assert conn.execute("SELECT pg_try_advisory_xact_lock(%s)", (key,)).fetchone() == (False,)
        assert call.result(timeout=60).status is OutcomeStatus.ACCEPTED
    assert service.state("counter", "c1").total == 11


def test_the_pruner_skips_only_its_own_schemas_locked_instance(
    pg_store: PostgresStore, other_store: PostgresStore, admin: Conn
) -> None:
    """The other user of the instance key: a pruner tries each chosen instance's lock. With counter/c1
    closed in both schemas and its lock held in schema A, schema B's pruner prunes it and A's skips it."""
    for store in (pg_store, other_store):
        WorkflowService(store, workflows=[Counter]).execute(Finish("c1"))
    policy = RetentionPolicy(closed_instances=timedelta(0), done_effects=None)
    later = datetime.now(UTC) + timedelta(days=1)
    with pg_store.locked("counter", "c1") as tx:
        tx.load()
        assert other_store.pruner().prune_all(policy, later).instances == 1
        assert pg_store.pruner().prune_all(policy, later).instances == 0
        assert locks_on(admin, lock_key(admin, pg_store, "counter", "c1"))[0][1]
    assert pg_store.pruner().prune_all(policy, later).instances == 1
