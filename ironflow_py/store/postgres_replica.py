"""Reads on a streaming replica (design/scale-out.md, "Read replicas"): a lock-free consistent view of one
instance, the commit's WAL position on the primary, and waiting until a standby has replayed it.

A hot standby runs read-only transactions and holds no lock of the primary's, so everything here works on a
`PostgresStore` connected to either server; on a primary, waiting for replay returns at once.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.rows import args_row

from ironflow_py.errors import ReplicaBehind
from ironflow_py.store.base import Loaded, LoadedEvent, StoredSnapshot, Tombstone

if TYPE_CHECKING:
    from ironflow_py.store.postgres import PostgresStore

#: Seconds between two looks at the replay position: the first look is immediate, then 1 ms doubling up to
#: this. PostgreSQL 15 has no statement that waits for replay, so the client asks again; a replica that
#: keeps up answers on the first or second look (the lag measured in design/scale-out.md is about 1 ms).
MAX_POLL = 0.05


class PostgresReader:
    """`store.base.Reader` inside one REPEATABLE READ READ ONLY transaction: no lock, one view of the data."""

    def __init__(self, store: PostgresStore, conn: psycopg.Connection[Any], ids: dict[str, str]) -> None:
        self._store = store
        self._conn = conn
        self._ids = ids

    def load(self, *, after_seq: int = 0, with_snapshot: bool = False, known_gen: int | None = None) -> Loaded:
        """The instance row, the snapshot newer than `after_seq` (when asked, or once a run has continued) and
        the events after it from the current run, `read_load`. `known_gen` is not used: a lock-free read
        always reads the snapshot when asked (see `Reader.load`)."""
        params = {**self._ids, "after_seq": after_seq, "with_snapshot": with_snapshot}
        rows = self._conn.execute(self._store.q["read_load"], params).fetchall()
        snapshot = version = None
        first = 0
        run_start = run = 1
        if rows and rows[0][0] == 0:  # the instance row (migration 017)
            _, run_start, version, _, run = rows[0]
            first = 1
        if len(rows) > first and rows[first][0] == 1:
            _, seq, _, data, state_version = rows[first]
            snapshot = StoredSnapshot(seq, state_version, data)
            first += 1
        events = [LoadedEvent(seq, type_name, data) for _, seq, type_name, data, _ in rows[first:]]
        tombstone = None
        if not events and snapshot is None:  # new, or pruned to a tombstone (design/retention.md)
            row = self._conn.execute(self._store.q["load_tombstone"], self._ids).fetchone()
            tombstone = Tombstone(row[0], row[1]) if row else None
        return Loaded(events, None, snapshot, tombstone, version, run_start, run)

    def events_after(self, seq: int) -> list[LoadedEvent]:
        """The events after `seq`, in the transaction's view, `load_events`."""
        cur = self._conn.cursor(row_factory=args_row(LoadedEvent))
        return cur.execute(self._store.q["load_events"], {**self._ids, "after_seq": seq}).fetchall()


@contextmanager
def reading(store: PostgresStore, workflow_type: str, workflow_id: str) -> Iterator[PostgresReader]:
    """One REPEATABLE READ READ ONLY transaction yielding a `PostgresReader` (see `Store.reading`)."""
    ids = {"workflow_type": workflow_type, "workflow_id": workflow_id}
    with store.connection(workflow_type, workflow_id) as conn, conn.transaction():
        # First statement of the transaction: the view is taken by the first query after it.
        conn.execute(store.q["read_only_snapshot"])
        yield PostgresReader(store, conn, ids)


def wal_position(store: PostgresStore) -> str:
    """`pg_current_wal_insert_lsn()` as text: at or past every commit that returned before the call."""
    with store.connection() as conn:
        row = conn.execute(store.q["wal_position"]).fetchone()
    assert row is not None
    return str(row[0])


def wait_for_replay(
    store: PostgresStore,
    min_lsn: str,
    timeout: float,
    *,
    workflow_type: str | None = None,
    workflow_id: str | None = None,
) -> None:
    """Poll `replay_reached` until the server has replayed `min_lsn` (see `Store.wait_for_replay`)."""
    deadline = time.monotonic() + timeout
    pause = 0.001
    with store.connection(workflow_type, workflow_id) as conn:
        while True:
            row = conn.execute(store.q["replay_reached"], {"min_lsn": min_lsn}).fetchone()
            assert row is not None
            reached, replayed = row
            if reached:
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ReplicaBehind(
                    min_lsn=min_lsn,
                    replayed=replayed,
                    timeout=timeout,
                    workflow_type=workflow_type,
                    workflow_id=workflow_id,
                )
            time.sleep(min(pause, remaining))
            pause = min(pause * 2, MAX_POLL)
