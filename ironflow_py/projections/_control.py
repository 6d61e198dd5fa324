"""Looking after projections from outside the worker: status, rebuild, dead letters, read-your-writes."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import attrs
import psycopg

from ironflow_py import _names
from ironflow_py.errors import NotFound, StoreError
from ironflow_py.projections._projection import Projection
from ironflow_py.store.postgres import PostgresStore
from ironflow_py.store.postgres_listen import listening, pool_conninfo
from ironflow_py.store.postgres_projections import PostgresProjections, applied_channel


@attrs.frozen
class Horizon:
    """How far any cursor can read now, and what holds it back.

    `held_back_events` committed events sit at or above the horizon because an older transaction is still
    open (`blocker_*` describe the oldest one). They are delayed, never lost.

    Attributes:
        xmin: The oldest transaction id still running (`pg_snapshot_xmin`): cursors read below it.
        held_back_events: Committed events at or above the horizon, not yet readable.
        blocker_pid: Backend pid of the oldest open transaction holding an xid (None: none).
        blocker_application: Its `application_name`.
        blocker_age_seconds: How long its transaction has been open, in seconds (database clock).
        blocker_state: Its `pg_stat_activity.state` (for example ``"idle in transaction"``).
    """

    xmin: int
    held_back_events: int
    blocker_pid: int | None
    blocker_application: str | None
    blocker_age_seconds: float | None
    blocker_state: str | None

    @property
    def held_back(self) -> bool:
        """True if some committed events are waiting behind the horizon."""
        return self.held_back_events > 0


@attrs.frozen
class ProjectionStatus:
    """A projection's checkpoint and how far behind the event stream it is.

    Attributes:
        name: The projection's name.
        tx_id: The checkpoint's transaction id (the cursor is (tx_id, position)).
        position: The global position of the last event handled.
        applied: Events handed to the handler since the last rebuild.
        updated_at: When the checkpoint last moved (database clock).
        lag_events: Committed events past the checkpoint, including those behind the horizon.
        lag_seconds: Age of the oldest event not yet handled, in seconds on the database clock (None:
            nothing pending).
        horizon: What limits every cursor right now.
        failed_at: When the projection stopped on an event under the `stop` policy (None: it did not).
        failed_position: The position of the event it stopped on.
        failed_error: The error, naming the workflow, instance, sequence and cause.
        leader: The worker leading it now ("worker_id token", as in its logs), None while no lease is live.
        lease_ends: When that lead ends unless renewed (database clock), None without a leader.
    """

    name: str
    tx_id: int
    position: int
    applied: int
    updated_at: datetime
    lag_events: int
    lag_seconds: float | None
    horizon: Horizon
    failed_at: datetime | None = None
    failed_position: int | None = None
    failed_error: str | None = None
    leader: str | None = None
    lease_ends: datetime | None = None


@attrs.frozen
class DeadLetter:
    """An event a projection skipped after its handler kept failing, with the last error.

    Attributes:
        id: The dead letter's id.
        projection: The projection's name.
        position: The event's global position.
        workflow_type: The event's workflow type.
        workflow_id: The event's instance.
        seq: The event's sequence within its instance.
        event_type: The event's stored type name.
        error: The handler's last error.
        attempts: How many times the batch holding it failed.
        recorded_at: When the dead letter was written (database clock).
    """

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
    """Status, rebuild and waiting on the projections of one store's schema (design/projections.md).

    Args:
        store: The PostgreSQL store whose schema holds the projection checkpoints.
    """

    def __init__(self, store: PostgresStore) -> None:
        self.store = store
        self._sql = PostgresProjections(store)

    def status(self, names: str | Iterable[str]) -> list[ProjectionStatus]:
        """The checkpoint, lag and horizon of each projection in `names`, read in one transaction.

        Args:
            names: Projection names (a single string is one name).

        Returns:
            One status per known projection, by name; a projection no worker has started is absent.

        Raises:
            StoreError: The database could not be reached or refused the query.
        """
        with self.store.connection() as conn:
            horizon_row, rows, now = self._sql.status(conn, _names.names(names))
        horizon = _horizon(*horizon_row)
        return [
            ProjectionStatus(
                name,
                int(tx_id),
                position,
                applied,
                updated_at,
                lag_events,
                None if oldest is None else max(0.0, (now - oldest).total_seconds()),
                horizon,
                failed_at,
                failed_position,
                failed_error,
                leader,
                lease_ends,
            )
            for (
                name,
                tx_id,
                position,
                applied,
                updated_at,
                lag_events,
                oldest,
                failed_at,
                failed_position,
                failed_error,
                leader,
                lease_ends,
            ) in rows
        ]

    def horizon(self) -> Horizon:
        """How far any projection cursor can read now, and which transaction holds it back.

        Returns:
            The horizon.

        Raises:
            StoreError: The database could not be reached or refused the query.
        """
        with self.store.connection() as conn:
            return _horizon(*self._sql.horizon(conn))

    def rebuild(self, projection: Projection | str) -> None:
        """Reset the checkpoint and run the projection's `reset` hook in one transaction.

        It waits for a batch in flight (which holds the checkpoint row); a running worker then replays
        from the start with its next batch.

        Args:
            projection: The projection (its `reset` hook runs), or just its name (no hook runs).

        Raises:
            StoreError: The database failed; nothing was reset.
        """
        # An operator's command, like a migration: its reset hook may rightly run long, so it is never cut.
        with self.store.connection(unbounded=True) as conn:
            rebuild_on(conn, self._sql, projection)

    def dead_letters(self, name: str) -> list[DeadLetter]:
        """The events projection `name` skipped under `OnError.DEAD_LETTER`, oldest first.

        Args:
            name: The projection's name.

        Returns:
            Its dead letters.

        Raises:
            StoreError: The database could not be reached or refused the query.
        """
        with self.store.connection() as conn:
            rows = self._sql.dead_letters(conn, name)
        return [DeadLetter(*row) for row in rows]

    def caught_up(self, name: str, position: int) -> bool:
        """Whether projection `name` has handled the event at `position` (read-your-writes).

        Args:
            name: The projection's name.
            position: An event's global position (`Outcome.events[i].position`).

        Returns:
            True once that event is at or behind the checkpoint.

        Raises:
            NotFound: No committed event has that position.
            StoreError: The database could not be reached or refused the query.
        """
        with self.store.connection() as conn:
            return self._caught_up(conn, name, position)

    def _caught_up(self, conn: psycopg.Connection[Any], name: str, position: int) -> bool:
        caught_up = self._sql.caught_up(conn, name, position)
        if caught_up is None:
            raise NotFound(f"no committed event has position {position}")
        return caught_up

    def wait_until_caught_up(self, name: str, position: int, timeout: float) -> bool:
        """Block until projection `name` has handled the event at `position`, or `timeout` passes.

        Woken by the worker's NOTIFY after each batch, so there is no polling delay.

        Args:
            name: The projection's name.
            position: An event's global position (`Outcome.events[i].position`).
            timeout: The longest wait, in seconds (monotonic clock).

        Returns:
            True once the event is handled, False if `timeout` passed first.

        Raises:
            NotFound: No committed event has that position.
            StoreError: The database could not be reached, or the LISTEN connection failed.
        """
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
            with listening(pool_conninfo(self.store), channel, prepare_threshold=self.store.prepare_threshold) as conn:
                yield conn
        except psycopg.Error as exc:
            raise StoreError(f"{type(exc).__name__}: {exc}") from exc


def _horizon(row: tuple[Any, ...], now: datetime) -> Horizon:
    xmin, held, pid, app, xact_start, state = row
    age = None if xact_start is None else (now - xact_start).total_seconds()
    return Horizon(int(xmin), held, pid, app, age, state)


def rebuild_on(
    conn: psycopg.Connection[Any],
    statements: PostgresProjections,
    projection: Projection | str,
    fence: int | None = None,
) -> bool:
    """The rebuild transaction on `conn`: waits for a batch in flight (it holds the checkpoint row).

    With `fence` (a leader's) it resets nothing unless the lease's fence is still that one; returns False then.
    """
    if isinstance(projection, str):
        return statements.rebuild(conn, projection, fence=fence)
    return statements.rebuild(conn, projection.name, projection.reset, fence=fence)
