"""The bucket column (migrations 019 and 021, design/scale-out.md): filled on every row keyed by an instance,
the same for all of one instance's rows, and stable: the values below are the ones every future server must
give. Since 021 each statement writes it with `instance_bucket`; a statement that forgets it fails (NOT NULL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql

from ironflow_py import PostgresStore, RetentionPolicy, WorkflowService
from tests.snapshot_workflows import SnappyCounter
from tests.workflows import Add, Counter, Finish, Schedule

Conn = psycopg.Connection[tuple[Any, ...]]

#: (workflow_type, workflow_id) -> bucket, computed once by PostgreSQL 15 and 18. A change here moves rows
#: between buckets, which a distributed deployment cannot absorb: never edit these, add a migration instead.
GOLDEN = {
    ("counter", "c-1"): 1006,
    ("counter", "order-42"): 648,
    ("snappy", "c-1"): 370,
    ("counter", "ünïcode/ид"): 489,
    ("counter", ""): 968,
}

INSTANCE_TABLES = ("instances", "events", "outbox", "timers", "input_keys", "snapshots")


def _buckets(admin: Conn, schema: str, table: str, wtype: str, wid: str) -> set[int]:
    query = sql.SQL("SELECT DISTINCT bucket FROM {}.{} WHERE workflow_type = %s AND workflow_id = %s").format(
        sql.Identifier(schema), sql.Identifier(table)
    )
    return {row[0] for row in admin.execute(query, (wtype, wid)).fetchall()}


def test_the_bucket_formula_gives_the_recorded_values(pg_store: PostgresStore, admin: Conn) -> None:
    """The expression of migration 019, and instance_bucket (021) that the statements call, give the golden
    values; no bucket column is generated any more (its expression was rebuilt by every writing statement)."""
    bucket_of = sql.SQL("SELECT (hashtextextended(%s || chr(31) || %s, 0) & 1023)::integer, {}.instance_bucket(%s, %s)")
    for (wtype, wid), bucket in GOLDEN.items():
        row = admin.execute(bucket_of.format(sql.Identifier(pg_store.schema)), (wtype, wid, wtype, wid)).fetchone()
        assert row is not None
        assert row == (bucket, bucket), (wtype, wid)
    generated = admin.execute(
        "SELECT count(*) FROM information_schema.columns WHERE table_schema = %s AND column_name = 'bucket' "
        "AND is_generated <> 'NEVER'",
        (pg_store.schema,),
    ).fetchone()
    assert generated == (0,)


def test_every_row_of_an_instance_carries_its_bucket(pg_store: PostgresStore, admin: Conn) -> None:
    """A decision writes events, an effect, a timer, an input key and a snapshot: each row gets the bucket
    its statement computes, the same on every table, equal to the golden value."""
    service = WorkflowService(pg_store, workflows=[Counter])
    snappy = WorkflowService(pg_store, workflows=[SnappyCounter])
    later = datetime.now(UTC) + timedelta(days=1)
    service.execute(Add("c-1", key="k1"))
    service.execute(Schedule("c-1", "t1", later))
    service.execute(Add("order-42"))
    for _ in range(3):
        snappy.execute(Add("c-1"))
    for wtype, wid in (("counter", "c-1"), ("counter", "order-42"), ("snappy", "c-1")):
        expected = GOLDEN[(wtype, wid)]
        for table in INSTANCE_TABLES:
            found = _buckets(admin, pg_store.schema, table, wtype, wid)
            if wtype == "counter" and wid == "order-42" and table in ("timers", "input_keys", "snapshots"):
                assert found == set(), table
                continue
            if wtype == "snappy" and table in ("timers", "input_keys"):
                continue
            if wtype == "counter" and table == "snapshots":
                continue
            assert found == {expected}, (wtype, wid, table)


def test_the_bucket_stays_when_rows_are_archived(pg_store: PostgresStore, admin: Conn) -> None:
    """Pruning in archive mode moves events and input keys to the archive tables with the same bucket."""
    service = WorkflowService(pg_store, workflows=[Counter])
    service.execute(Add("c-1", key="k1"))
    service.execute(Finish("c-1"))
    pg_store.outbox("w").complete_effects(pg_store.outbox("w").claim_effects(None, timedelta(seconds=30), 10), None)
    policy = RetentionPolicy(closed_instances=timedelta(0), closed_mode="archive")
    report = pg_store.pruner().prune_all(policy, datetime.now(UTC) + timedelta(seconds=1))
    assert report.instances == 1
    for table in ("events_archive", "input_keys_archive"):
        assert _buckets(admin, pg_store.schema, table, "counter", "c-1") == {GOLDEN[("counter", "c-1")]}
