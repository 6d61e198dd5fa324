"""The projection statements on PostgreSQL: checkpoints, the cursor read, leadership leases, dead letters.

The projection worker and `ProjectionControl` decide what to run and when; this module runs the SQL. Most
methods take the connection to run on, because a projection batch is one transaction on the worker's own
connection, shared with the user's handler. Leadership is a lease row with a fencing generation, not a
session lock, so it holds behind a transaction-mode pooler too. The "why" of
each statement lives beside it in queries.sql (design/projections.md).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import Any

import psycopg

from ironflow_py.store.postgres import PostgresStore
from ironflow_py.values import MAX_IDENTIFIER_BYTES

#: One event row as the cursor reads it: (tx_id, position, workflow_type, workflow_id, seq, event_type,
#: payload, recorded_at). Plain tuples: a named row per event costs more than the whole order guard.
EventRow = tuple[Any, ...]


def _channel(prefix: str, schema: str) -> str:
    """`prefix + schema`, or `prefix + md5(schema)` when that is over 63 bytes (cut by bytes, never by
    characters: a channel name is an identifier, limited to 63 bytes)."""
    channel = prefix + schema
    if len(channel.encode()) > MAX_IDENTIFIER_BYTES:
        channel = prefix + hashlib.md5(schema.encode(), usedforsecurity=False).hexdigest()
    return channel


def events_channel(schema: str) -> str:
    """The NOTIFY channel of event appends (migration 005's trigger builds the same name, by bytes).

    Args:
        schema: The store's schema name.

    Returns:
        The channel name, at most 63 bytes.
    """
    return _channel("ironflow_events.", schema)


def applied_channel(schema: str) -> str:
    """The NOTIFY channel on which workers announce committed batches.

    Args:
        schema: The store's schema name.

    Returns:
        The channel name, at most 63 bytes.
    """
    return _channel("ironflow_projected.", schema)


class PostgresProjections:
    """The projection queries of one store's schema, bound once to its named SQL."""

    def __init__(self, store: PostgresStore) -> None:
        """Bind to `store`'s rendered queries and schema.

        Args:
            store: The PostgreSQL store whose schema holds the projection tables.
        """
        self.store = store
        self.schema = store.schema
        self._q = store.q

    # -- the worker's connection: leadership and the batch ------------------------------------------------

    def batch(self, conn: psycopg.Connection[Any]) -> AbstractContextManager[psycopg.Transaction]:
        """A transaction block on `conn` for one batch: the read model's writes, the per-instance sequences
        and the checkpoint commit together or not at all; an exception rolls all of it back."""
        return conn.transaction()

    def ensure(self, conn: psycopg.Connection[Any], name: str) -> None:
        """Create the checkpoint row of projection `name` at the start of the stream if it is missing."""
        conn.execute(self._q["projection_ensure"], {"name": name})

    def try_lead(self, conn: psycopg.Connection[Any], name: str, holder: str, lease: float) -> int | None:
        """Take the lease of `name` if it is free (none yet, or ended by the database clock).

        Args:
            conn: An autocommit connection (the statement commits on its own).
            name: The projection.
            holder: Who takes it ("worker_id token").
            lease: Seconds the lease lasts unless renewed.

        Returns:
            The new fencing generation, or None when another worker's lease is still live.
        """
        row = conn.execute(
            self._q["projection_lead"], {"name": name, "holder": holder, "lease": timedelta(seconds=lease)}
        ).fetchone()
        return None if row is None else int(row[0])

    def renew(self, conn: psycopg.Connection[Any], name: str, fence: int, lease: float) -> bool:
        """Extend the lease of `name` to `lease` seconds from the database's now, if `fence` still holds it.

        Returns:
            False when another worker has taken the lead since (the caller steps down).
        """
        row = conn.execute(
            self._q["projection_renew"], {"name": name, "fence": fence, "lease": timedelta(seconds=lease)}
        ).fetchone()
        return row is not None

    def release(self, conn: psycopg.Connection[Any], name: str, fence: int) -> None:
        """End the lease of `name` now if `fence` still holds it, so a standby takes over without waiting."""
        conn.execute(self._q["projection_release"], {"name": name, "fence": fence})

    def leaders(self, conn: psycopg.Connection[Any], names: Sequence[str]) -> list[tuple[Any, ...]]:
        """The lease rows of `names`: (name, holder, fence, expires_at, live now by the database clock)."""
        return conn.execute(self._q["projection_leader"], {"names": list(names)}).fetchall()

    def held_back(self, conn: psycopg.Connection[Any], names: Sequence[str]) -> bool:
        """True while events follow the checkpoint of one of `names` after a round that read all it could:
        they wait behind the horizon (an older transaction is still open), or it just passed them."""
        row = conn.execute(self._q["projection_held_back"], {"names": list(names)}).fetchone()
        return bool(row and row[0])

    def lock_checkpoint(
        self, conn: psycopg.Connection[Any], name: str, idle_ms: int | None = None
    ) -> tuple[str, int, int, int | None]:
        """Lock the checkpoint row of `name` for this transaction; (tx_id, position, generation, fence).

        A concurrent rebuild waits on the lock, and so does a batch behind a rebuild. `fence` is the lease's
        current fencing generation (None: no lease row), for the caller to compare with its own. With
        `idle_ms` the server ends the session if it sits idle inside this transaction that long (a frozen
        leader would otherwise keep the row locked from its standby).
        """
        params = {"name": name, "idle_ms": None if idle_ms is None else str(idle_ms)}
        row = conn.execute(self._q["projection_checkpoint_for_update"], params).fetchone()
        assert row is not None, "the worker creates the checkpoint row before its first batch"
        tx_id, position, generation, fence, _ = row
        return tx_id, position, generation, fence

    def read(self, conn: psycopg.Connection[Any], tx_id: str, position: int, limit: int) -> list[EventRow]:
        """Up to `limit` committed events after the cursor (tx_id, position), below the horizon, in order."""
        rows: list[EventRow] = conn.execute(
            self._q["projection_read"], {"tx_id": tx_id, "position": position, "limit": limit}
        ).fetchall()
        return rows

    def last_applied(
        self,
        conn: psycopg.Connection[Any],
        first: dict[tuple[str, str], int],
        tx_id: str,
        position: int,
    ) -> dict[tuple[str, str], int]:
        """For each (workflow_type, workflow_id) in `first`: the highest sequence below the given one that is
        at or behind the cursor (tx_id, position); instances with none are absent."""
        found = conn.execute(
            self._q["projection_last_applied"],
            {
                "types": [k[0] for k in first],
                "ids": [k[1] for k in first],
                "seqs": list(first.values()),
                "tx_id": tx_id,
                "position": position,
            },
        ).fetchall()
        return {(wtype, wid): last for wtype, wid, last in found}

    def dead_letter(
        self, conn: psycopg.Connection[Any], name: str, row: Sequence[Any], error: str, attempts: int
    ) -> None:
        """Record the event `row` (an `EventRow`) as a dead letter of projection `name`."""
        tx_id, position, workflow_type, workflow_id, seq, event_type = row[:6]
        conn.execute(
            self._q["projection_dead_letter"],
            {
                "name": name,
                "tx_id": tx_id,
                "position": position,
                "workflow_type": workflow_type,
                "workflow_id": workflow_id,
                "seq": seq,
                "event_type": event_type,
                "error": error,
                "attempts": attempts,
            },
        )

    def save(
        self,
        conn: psycopg.Connection[Any],
        name: str,
        tx_id: str,
        position: int,
        handled: int,
        channel: str,
        fence: int,
    ) -> bool:
        """Move the checkpoint of `name` to (tx_id, position), count `handled`, and NOTIFY `channel`, if the
        lease's fence is still `fence`.

        Returns:
            False when another worker took the lead meanwhile: nothing moved; the caller rolls back.
        """
        row = conn.execute(
            self._q["projection_save"],
            {
                "name": name,
                "tx_id": tx_id,
                "position": position,
                "handled": handled,
                "channel": channel,
                "fence": fence,
            },
        ).fetchone()
        return row is not None

    def failed(self, conn: psycopg.Connection[Any], name: str, position: int | None, error: str, fence: int) -> None:
        """Record that `name` stopped on the event at `position` with `error` (cleared by the next save), if
        the lease's fence is still `fence`."""
        conn.execute(self._q["projection_failed"], {"name": name, "position": position, "error": error, "fence": fence})

    def rebuild(
        self,
        conn: psycopg.Connection[Any],
        name: str,
        reset: Callable[[psycopg.Connection[Any]], None] | None = None,
        fence: int | None = None,
    ) -> bool:
        """The rebuild transaction on `conn`: reset the checkpoint of `name` and run `reset(conn)` in it.

        It waits for a batch in flight, which holds the checkpoint row. With `fence` (a leader rebuilding a
        non-durable projection as it takes the lead) nothing happens unless the lease's fence is still it.

        Returns:
            False when `fence` was given and is no longer the lease's (nothing was reset).
        """
        with conn.transaction():
            conn.execute(self._q["projection_ensure"], {"name": name})
            row = conn.execute(self._q["projection_checkpoint_for_update"], {"name": name, "idle_ms": None}).fetchone()
            if fence is not None and (row is None or row[3] != fence):
                return False
            conn.execute(self._q["projection_reset"], {"name": name})
            if reset is not None:
                reset(conn)
        return True

    # -- operator reads ------------------------------------------------------------------------------------

    def status(
        self, conn: psycopg.Connection[Any], names: Sequence[str]
    ) -> tuple[tuple[tuple[Any, ...], datetime], list[tuple[Any, ...]], datetime]:
        """In one transaction: `horizon(conn)`, the checkpoint rows of `names`, and the database's now()."""
        with conn.transaction():
            horizon = self.horizon(conn)
            rows = conn.execute(self._q["projection_status"], {"names": list(names)}).fetchall()
            now = self.database_now(conn)
        return horizon, rows, now

    def horizon(self, conn: psycopg.Connection[Any]) -> tuple[tuple[Any, ...], datetime]:
        """The horizon row (xmin, held-back events, blocker pid, application, xact_start, state) and the
        database's now() read just after it."""
        row = conn.execute(self._q["projection_horizon"]).fetchone()
        assert row is not None
        return tuple(row), self.database_now(conn)

    def database_now(self, conn: psycopg.Connection[Any]) -> datetime:
        """The database clock (`now()`: the start of the current transaction)."""
        row = conn.execute(self._q["database_now"]).fetchone()
        assert row is not None
        now: datetime = row[0]
        return now

    def dead_letters(self, conn: psycopg.Connection[Any], name: str) -> list[tuple[Any, ...]]:
        """The dead-letter rows of projection `name`, oldest first."""
        return conn.execute(self._q["projection_dead_letters"], {"name": name}).fetchall()

    def caught_up(self, conn: psycopg.Connection[Any], name: str, position: int) -> bool | None:
        """Whether the event at `position` is at or behind the checkpoint of `name` (None: no such event)."""
        row = conn.execute(self._q["projection_caught_up"], {"name": name, "position": position}).fetchone()
        return None if row is None else bool(row[0])
