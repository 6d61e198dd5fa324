"""Operator statements on PostgreSQL: the outbox's health, dead-lettered effects, dropping a schema.

`ironflow_py.inspection`, `effects.DeadLetters` and the pytest plugin decide what to show or do; the SQL
runs here. Each call is one statement on a pooled autocommit connection (design/effects.md).
"""

from __future__ import annotations

from datetime import datetime

import psycopg
from psycopg import sql
from psycopg.rows import args_row

from ironflow_py.records import EffectInfo, OutboxHealth, WorkerLoad
from ironflow_py.store.postgres import PostgresStore


def outbox_health(store: PostgresStore, now: datetime) -> OutboxHealth:
    """Counts of waiting, running, retrying and dead effects, load per worker, and the timers' state.

    Args:
        store: The store to read.
        now: The instant leases and due times are compared with (the caller's clock).

    Returns:
        The counts read on one connection.

    Raises:
        StoreError: The database could not be reached or refused the query.
    """
    q = store.q
    with store.connection() as conn:
        row = conn.execute(q["outbox_health"], {"now": now}).fetchone()
        workers = tuple(WorkerLoad(*r) for r in conn.execute(q["outbox_in_flight_by_worker"], {"now": now}))
        timers = conn.execute(q["timer_health"], {"now": now}).fetchone()
    assert row is not None and timers is not None
    pending, due_now, in_flight, retrying, dead, oldest = row
    scheduled, overdue, next_at = timers
    return OutboxHealth(pending, due_now, in_flight, retrying, dead, oldest, workers, scheduled, overdue, next_at)


def dead_letters(store: PostgresStore, *, limit: int, after_id: int) -> list[EffectInfo]:
    """Dead effects oldest first, after `after_id` (keyset pagination), at most `limit` of them.

    Raises:
        StoreError: The database could not be reached or refused the query.
    """
    with store.connection() as conn:
        cur = conn.cursor(row_factory=args_row(EffectInfo))
        return cur.execute(store.q["dead_letters"], {"limit": limit, "after_id": after_id}).fetchall()


def count_dead_letters(store: PostgresStore) -> int:
    """How many effects are dead.

    Raises:
        StoreError: The database could not be reached or refused the query.
    """
    with store.connection() as conn:
        row = conn.execute(store.q["count_dead_letters"]).fetchone()
    assert row is not None
    return int(row[0])


def retry_dead_letter(store: PostgresStore, effect_id: int, now: datetime) -> bool:
    """Make dead effect `effect_id` pending again at `now` with zero attempts and wake the workers.

    Returns:
        False if `effect_id` is not a dead effect (nothing changed).

    Raises:
        StoreError: The database could not be reached or refused the statement.
    """
    params = {"id": effect_id, "now": now, "channel": store.channel}
    with store.connection() as conn:
        return conn.execute(store.q["retry_dead_letter"], params).fetchone() is not None


def discard_dead_letter(store: PostgresStore, effect_id: int) -> bool:
    """Delete dead effect `effect_id`.

    Returns:
        False if `effect_id` is not a dead effect (nothing changed).

    Raises:
        StoreError: The database could not be reached or refused the statement.
    """
    with store.connection() as conn:
        return conn.execute(store.q["discard_dead_letter"], {"id": effect_id}).fetchone() is not None


def drop_schema(url: str, schema: str) -> None:
    """Drop `schema` and everything in it, if it exists (test teardown), on a connection of its own.

    Raises:
        psycopg.Error: Connecting or dropping failed.
    """
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
