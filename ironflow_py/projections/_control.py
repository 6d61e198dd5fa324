"""Looking after projections from outside the worker: status, rebuild, dead letters, read-your-writes."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import attrs
import psycopg
from psycopg import sql

from ironflow_py.errors import NotFound, StoreError
from ironflow_py.projections._projection import Projection
from ironflow_py.store.postgres import PostgresStore


def conninfo(store: PostgresStore) -> str:
    """The connection string of the store's pool, for the dedicated LISTEN connections."""
    info = store.pool.conninfo
    return info() if callable(info) else info


def events_channel(schema: str) -> str:
    """The NOTIFY channel of event appends (the migration's trigger builds the same 63-byte name)."""
    return ("ironflow_events." + schema)[:63]


def applied_channel(schema: str) -> str:
    """The NOTIFY channel on which workers announce committed batches."""
    return ("ironflow_projected." + schema)[:63]


@attrs.frozen
class Horizon:
    """How far any cursor can read now, and what holds it back.

    `held_back_events` committed events sit at or above the horizon because an older transaction is still
    open (`blocker_*` describe the oldest one). They are delayed, never lost.
    """

    xmin: int
    held_back_events: int
    blocker_pid: int | None
    blocker_application: str | None
    blocker_age_seconds: float | None
    blocker_state: str | None

    @property
    def held_back(self) -> bool:
        return self.held_back_events > 0


@attrs.frozen
class ProjectionStatus:
    """A projection's checkpoint and how far behind the event stream it is."""

    name: str
    tx_id: int
    position: int
    applied: int
    updated_at: datetime
    lag_events: int
    #: Age of the oldest event not yet handled (None: nothing pending).
    lag_seconds: float | None
    horizon: Horizon


@attrs.frozen
class DeadLetter:
    """An event a projection skipped after its handler kept failing, with the last error."""

    id: int
    projection: str
    position: int
    workflow_type: str
    workflow_id: str
    seq: int
    event_type: str
    error: str
    attempts: int
    recorded_at: datetime


class ProjectionControl:
    """Status, rebuild and waiting on the projections of one store's schema."""

    def __init__(self, store: PostgresStore) -> None:
        self.store = store
        self.q = store.q

    def status(self, names: Sequence[str]) -> list[ProjectionStatus]:
        """One row per known projection in `names` (a projection no worker has started is absent)."""
        with self.store.connection() as conn, conn.transaction():
            horizon = self._horizon(conn)
            rows = conn.execute(self.q["projection_status"], {"names": list(names)}).fetchall()
            now = conn.execute("SELECT now()").fetchone()
        assert now is not None
        return [
            ProjectionStatus(
                name,
                int(tx_id),
                position,
                applied,
                updated_at,
                lag_events,
                None if oldest is None else max(0.0, (now[0] - oldest).total_seconds()),
                horizon,
            )
            for name, tx_id, position, applied, updated_at, lag_events, oldest in rows
        ]

    def horizon(self) -> Horizon:
        with self.store.connection() as conn:
            return self._horizon(conn)

    def _horizon(self, conn: psycopg.Connection[Any]) -> Horizon:
        row = conn.execute(self.q["projection_horizon"]).fetchone()
        assert row is not None
        xmin, held, pid, app, xact_start, state = row
        now = conn.execute("SELECT now()").fetchone()
        assert now is not None
        age = None if xact_start is None else (now[0] - xact_start).total_seconds()
        return Horizon(int(xmin), held, pid, app, age, state)

    def rebuild(self, projection: Projection | str) -> None:
        """Reset the checkpoint and run the projection's `reset` hook in one transaction; a running worker
        replays from the start with its next batch."""
        with self.store.connection() as conn:
            rebuild_on(conn, self.q, projection)

    def dead_letters(self, name: str) -> list[DeadLetter]:
        with self.store.connection() as conn:
            rows = conn.execute(self.q["projection_dead_letters"], {"name": name}).fetchall()
        return [DeadLetter(*row) for row in rows]

    def caught_up(self, name: str, position: int) -> bool:
        """True once the event at `position` is at or behind the checkpoint of projection `name`."""
        with self.store.connection() as conn:
            return self._caught_up(conn, name, position)

    def _caught_up(self, conn: psycopg.Connection[Any], name: str, position: int) -> bool:
        row = conn.execute(self.q["projection_caught_up"], {"name": name, "position": position}).fetchone()
        if row is None:
            raise NotFound(f"no committed event has position {position}")
        return bool(row[0])

    def wait_until_caught_up(self, name: str, position: int, timeout: float) -> bool:
        """Block until projection `name` has handled the event at `position` (True) or `timeout` passes
        (False). Woken by the worker's NOTIFY after each batch, so no polling delay."""
        deadline = time.monotonic() + timeout
        with self._listening(applied_channel(self.store.schema)) as conn:
            while True:
                if self._caught_up(conn, name, position):
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                for _ in conn.notifies(timeout=min(remaining, 1.0), stop_after=1):
                    break

    @contextmanager
    def _listening(self, channel: str) -> Iterator[psycopg.Connection[Any]]:
        try:
            with psycopg.connect(conninfo(self.store), autocommit=True) as conn:
                conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                yield conn
        except psycopg.Error as exc:
            raise StoreError(f"{type(exc).__name__}: {exc}") from exc


def rebuild_on(conn: psycopg.Connection[Any], q: dict[str, str], projection: Projection | str) -> None:
    """The rebuild transaction on `conn`: waits for a batch in flight (it holds the checkpoint row)."""
    name = projection if isinstance(projection, str) else projection.name
    with conn.transaction():
        conn.execute(q["projection_ensure"], {"name": name})
        conn.execute(q["projection_checkpoint_for_update"], {"name": name})
        conn.execute(q["projection_reset"], {"name": name})
        if not isinstance(projection, str) and projection.reset is not None:
            projection.reset(conn)
