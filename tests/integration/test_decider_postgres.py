"""The Decider on real PostgreSQL: concurrency, atomicity and bad input."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import psycopg
import pytest
from psycopg import sql

from ironflow_py import (
    DecideFailed,
    DecodeError,
    InvalidWorkflowId,
    OutcomeStatus,
    PostgresStore,
    StoreError,
    UnknownInputType,
    UnknownTypeName,
    WorkflowService,
)
from ironflow_py.store.base import Settle, SettleKind
from tests.workflows import Add, Counter, CounterState, Schedule

Conn = psycopg.Connection[tuple[Any, ...]]
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def counts(admin: Conn, schema: str) -> dict[str, int]:
    out = {}
    for table in ("events", "outbox", "timers", "instances", "input_keys"):
        query = sql.SQL("SELECT count(*) FROM {}.{}").format(sql.Identifier(schema), sql.Identifier(table))
        row = admin.execute(query).fetchone()
        assert row is not None
        out[table] = row[0]
    return out


def test_eight_threads_on_one_instance_serialize_without_gaps(pg_store: PostgresStore, admin: Conn) -> None:
    service = WorkflowService(pg_store, workflows=[Counter])

    def worker(_: int) -> list[int]:
        return [service.execute(Add("shared", 1)).events[0].seq for _ in range(250)]

    with ThreadPoolExecutor(8) as pool:
        seqs = [s for chunk in pool.map(worker, range(8)) for s in chunk]
    assert sorted(seqs) == list(range(1, 2001))
    assert service.state("counter", "shared") == CounterState(total=2000, adds=2000)
    rows = admin.execute(
        sql.SQL("SELECT seq, position FROM {}.events ORDER BY seq").format(sql.Identifier(pg_store.schema))
    ).fetchall()
    assert [r[0] for r in rows] == list(range(1, 2001))
    positions = [r[1] for r in rows]
    assert len(set(positions)) == 2000
    # Positions follow sequence order within an instance because writes come after the instance lock.
    assert positions == sorted(positions)
    # Every event knows its writing transaction, and transaction ids rise with the sequence too.
    txs = admin.execute(
        sql.SQL("SELECT tx_id::text::bigint FROM {}.events ORDER BY seq").format(sql.Identifier(pg_store.schema))
    ).fetchall()
    assert [t[0] for t in txs] == sorted(t[0] for t in txs)


def waiting_on(admin: Conn, holder: Conn) -> int:
    """How many backends wait for a lock `holder` holds."""
    row = admin.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))", (holder.info.backend_pid,)
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_input_key_applied_once_under_four_concurrent_callers(
    pg_store: PostgresStore, pg_url: str, admin: Conn
) -> None:
    """Four processes' worth of callers (one pool each) send the same keyed input at once. The test holds
    the instance lock until all four are seen waiting for it, so their transactions certainly overlap."""
    service = WorkflowService(pg_store, workflows=[Counter])
    service.execute(Add("c1", 1))
    stores = [PostgresStore.connect(pg_url, schema=pg_store.schema, max_size=1) for _ in range(4)]
    holder = psycopg.connect(pg_url)
    try:
        holder.execute(pg_store.q["lock_instance"], {"workflow_type": "counter", "workflow_id": "c1"})
        with ThreadPoolExecutor(4) as pool:
            calls = [
                pool.submit(WorkflowService(s, workflows=[Counter]).execute, Add("c1", 10, key="pay-1")) for s in stores
            ]
            tick = threading.Event()
            while waiting_on(admin, holder) < 4 and not any(c.done() for c in calls):
                tick.wait(0.01)
            finished_early = [c for c in calls if c.done()]
            holder.rollback()
            statuses = [c.result().status for c in calls]
        assert finished_early == [], "a caller finished while another transaction held the instance lock"
    finally:
        holder.close()
        for s in stores:
            s.close()
    assert sorted(statuses) == sorted([OutcomeStatus.ACCEPTED] + [OutcomeStatus.DUPLICATE] * 3)
    assert service.state("counter", "c1").total == 11
    assert len(service.history("counter", "c1")) == 2


def test_killed_connection_mid_transaction_writes_nothing(pg_store: PostgresStore, admin: Conn, pg_url: str) -> None:
    """The backend is terminated while `decide` runs: the lock is held and the fenced "done" mark of the
    effect being fed back is already written in the transaction. All of it is rolled back."""
    inside, release = threading.Event(), threading.Event()

    class Pausing(Counter):
        def decide(self, now: datetime, state: CounterState, input: Any) -> Any:
            if isinstance(input, Add) and input.amount == 99:
                inside.set()
                release.wait(10)
            return super().decide(now, state, input)

    app_name = f"ironflow_kill_{pg_store.schema}"  # only this test's backends: the server is shared
    store = PostgresStore.connect(pg_url, schema=pg_store.schema, application_name=app_name)
    service = WorkflowService(store, workflows=[Pausing])
    (effect_id,) = service.execute(Add("c1", 1)).effect_ids
    # A claim as claim_effects makes it: worker, attempt count and the claim token the settle is fenced on.
    claim = sql.SQL("UPDATE {}.outbox SET locked_by = 'w1', attempts = 1, claim_token = 1 WHERE id = %s").format(
        sql.Identifier(pg_store.schema)
    )
    admin.execute(claim, (effect_id,))
    before = counts(admin, pg_store.schema)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            service.execute(Add("c1", 99), settle=Settle(SettleKind.EFFECT_DONE, effect_id, "w1", 1, T0))
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=run)
    try:
        t.start()
        assert inside.wait(10)
        killed = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = %s AND state = 'idle in transaction'",
            (app_name,),
        ).fetchall()
        release.set()
        t.join(10)
        assert len(killed) == 1
        assert len(errors) == 1 and isinstance(errors[0], StoreError), errors
        assert errors[0].workflow_type == "counter" and errors[0].workflow_id == "c1"
        assert counts(admin, pg_store.schema) == before
        assert [(e.status, e.locked_by) for e in store.effects("counter", "c1")] == [("pending", "w1")]
        # The pool replaces the dead connection and the instance carries on.
        assert service.execute(Add("c1", 1)).events[0].seq == 2
    finally:
        release.set()
        store.close()


def test_failed_timer_schedule_leaves_no_timer(pg_store: PostgresStore, admin: Conn) -> None:
    service = WorkflowService(pg_store, workflows=[Counter])
    naive = datetime(2026, 1, 1)
    with pytest.raises(DecideFailed, match="timezone-aware"):
        service.execute(Schedule("c1", "t", naive))
    assert counts(admin, pg_store.schema)["timers"] == 0
    service.execute(Schedule("c1", "t", datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=1)))
    assert counts(admin, pg_store.schema)["timers"] == 1


def test_unregistered_input_type_is_refused(pg_store: PostgresStore, admin: Conn) -> None:
    @attrs.frozen
    class Stray:
        counter_id: str

    service = WorkflowService(pg_store, workflows=[Counter])
    with pytest.raises(UnknownInputType, match="Stray"):
        service.execute(Stray("c1"))
    assert counts(admin, pg_store.schema)["events"] == 0


@pytest.mark.parametrize("bad_id", ["", "   "])
def test_empty_workflow_id_is_refused(pg_store: PostgresStore, admin: Conn, bad_id: str) -> None:
    service = WorkflowService(pg_store, workflows=[Counter])
    with pytest.raises(InvalidWorkflowId) as info:
        service.execute(Add(bad_id))
    assert info.value.workflow_type == "counter"
    assert "Add" in str(info.value)
    assert counts(admin, pg_store.schema)["events"] == 0


def _tamper(admin: Conn, schema: str, seq: int, column: str, value: str) -> None:
    admin.execute(
        sql.SQL("UPDATE {}.events SET {} = %s WHERE workflow_id = 'c1' AND seq = %s").format(
            sql.Identifier(schema), sql.Identifier(column)
        ),
        (value, seq),
    )


@pytest.mark.parametrize(
    ("column", "value", "error", "needle"),
    [
        ("event_type", "counter.renamed/9", UnknownTypeName, "'counter.renamed/9'"),
        ("payload", '{"amount": 1}', DecodeError, "does not match Added"),
        ("payload", '{"amount": "lots", "total": 1}', DecodeError, "does not match Added"),
    ],
)
def test_stored_event_the_code_cannot_read_fails_clearly_and_writes_nothing(
    pg_store: PostgresStore, admin: Conn, column: str, value: str, error: type[Exception], needle: str
) -> None:
    service = WorkflowService(pg_store, workflows=[Counter])
    service.execute(Add("c1", 1))
    service.execute(Add("c1", 1))
    _tamper(admin, pg_store.schema, 2, column, value)
    before = counts(admin, pg_store.schema)
    # A new process (empty state cache), as after deploying code that no longer reads the old history.
    service = WorkflowService(pg_store, workflows=[Counter])
    with pytest.raises(error) as info:
        service.execute(Add("c1", 1))
    message = str(info.value)
    assert needle in message and "'counter'" in message and "'c1'" in message and "sequence 2" in message
    assert counts(admin, pg_store.schema) == before
    with pytest.raises(error):
        service.state("counter", "c1")


def test_connection_failure_is_a_store_error(pg_url: str, schema: str) -> None:
    with pytest.raises(StoreError, match="cannot connect"):
        PostgresStore.connect("postgresql://nobody@127.0.0.1:1/none", schema=schema, timeout=2)


def test_async_facade_executes_through_the_same_engine(pg_store: PostgresStore) -> None:
    import asyncio

    from ironflow_py.aio import AsyncWorkflowService

    service = AsyncWorkflowService(WorkflowService(pg_store, workflows=[Counter]))

    async def main() -> list[int]:
        outcomes = await asyncio.gather(*(service.execute(Add("c1", 1)) for _ in range(10)))
        return sorted(o.events[0].seq for o in outcomes)

    assert asyncio.run(main()) == list(range(1, 11))
    assert asyncio.run(service.state("counter", "c1")).total == 10


def test_payload_integers_beyond_64_bits_round_trip_exactly(pg_store: PostgresStore) -> None:
    from ironflow_py.store.postgres import json_loads

    class BigCounter(Counter):
        limit = 2**80

    # orjson reads these as floats (2**64 as 1.8446744073709552e+19): the loader must not let it.
    for number in (2**64, 2**70 + 1, -(2**63) - 1, 10**30 + 7):
        back = json_loads(f'{{"n": [{number}]}}')
        assert back == {"n": [number]} and type(back["n"][0]) is int
        assert json_loads(f"[{number}]".encode()) == [number]
    service = WorkflowService(pg_store, workflows=[BigCounter])
    assert service.execute(Add("big", 2**70 + 1)).accepted
    fresh = WorkflowService(pg_store, workflows=[BigCounter])
    assert fresh.history("counter", "big")[0].event.amount == 2**70 + 1
    assert fresh.execute(Add("big", 1)).state.total == 2**70 + 2
