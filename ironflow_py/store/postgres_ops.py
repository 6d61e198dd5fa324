"""Read-only queries for operating a PostgreSQL store: readiness, outbox health, instance overviews.

What the metrics collectors, the health endpoints and the web view ask the database; each call is one
short read on a pooled connection and takes no lock (design/operations.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Literal

import attrs
import psycopg

from ironflow_py.records import InstanceInfo, InstanceStatus, OutboxHealth
from ironflow_py.store import postgres_admin
from ironflow_py.store._sql import load_migrations
from ironflow_py.store.postgres import PostgresStore

#: Which stuck instances to list: a dead effect, an overdue timer, waiting for an outside input, or any.
Stuck = Literal["dead", "overdue", "waiting", "any"]
STUCK_KINDS: tuple[Stuck, ...] = ("dead", "overdue", "waiting", "any")


@attrs.frozen
class Readiness:
    """Whether the database answers and its schema holds every migration this code knows.

    `reason` is a sentence for an operator when `ready` is False (empty otherwise).
    """

    ready: bool
    reason: str = ""


@attrs.frozen
class InstanceCount:
    """How many instances of one workflow type are in one status."""

    workflow_type: str
    status: str
    count: int


@attrs.frozen
class InstanceOverview:
    """An instance with the work pending on it: pending and dead effects, timers and overdue timers."""

    info: InstanceInfo
    pending_effects: int
    dead_effects: int
    timers: int
    overdue_timers: int

    @property
    def shown_status(self) -> str:
        """The status to show: `scheduled` for an open instance with no events yet and a timer pending (a
        delayed start), else the stored status."""
        if self.info.status == InstanceStatus.RUNNING and self.info.last_seq == 0 and self.timers:
            return "scheduled"
        return self.info.status.value

    @property
    def stuck(self) -> str | None:
        """Why the instance looks stuck ("dead effect", "overdue timer", "waiting on input"), or None."""
        if self.dead_effects:
            return "dead effect"
        if self.overdue_timers:
            return "overdue timer"
        if self.info.status == InstanceStatus.RUNNING and not self.pending_effects and not self.timers:
            return "waiting on input"
        return None


class StoreOps:
    """The operator's read queries on one PostgresStore."""

    def __init__(self, store: PostgresStore) -> None:
        self.store = store
        self.q = store.q

    def readiness(self) -> Readiness:
        """Ask the database whether it is reachable and fully migrated; never raises.

        Returns:
            `Readiness(True)`, or `Readiness(False, reason)` when the server cannot be reached or the schema
            lacks migrations (with the command that fixes it).
        """
        expected = {m.version for m in load_migrations(self.store.schema)}
        try:
            with self.store.pool.connection() as conn:
                applied = {row[0] for row in conn.execute(self.q["applied_migrations"])}
        except (psycopg.errors.UndefinedTable, psycopg.errors.InvalidSchemaName):
            return Readiness(False, f"schema {self.store.schema!r} is not migrated: run `ironflow-py migrate`")
        except Exception as exc:  # the pool's timeout or any driver error: the database is not usable
            return Readiness(False, f"database unreachable: {type(exc).__name__}: {exc}".strip())
        missing = sorted(expected - applied)
        if missing:
            return Readiness(
                False, f"schema {self.store.schema!r} lacks migrations {missing}: run `ironflow-py migrate`"
            )
        unknown = sorted(applied - expected)
        if unknown:
            return Readiness(False, f"schema {self.store.schema!r} has migrations {unknown} this code does not know")
        return Readiness(True)

    def outbox_health(self, now: datetime) -> OutboxHealth:
        """Effects pending, due, in flight, retrying and dead; the oldest pending; load per worker; timers.

        Args:
            now: the current time (timezone-aware, the service's clock), for "due" and "overdue".

        Raises:
            StoreError: the database failed.
        """
        return postgres_admin.outbox_health(self.store, now)

    def instance_counts(self) -> list[InstanceCount]:
        """Instances per (workflow type, status), ordered by both.

        Raises:
            StoreError: the database failed.
        """
        with self.store.connection() as conn:
            return [InstanceCount(*row) for row in conn.execute(self.q["ops_instance_counts"])]

    def instances(
        self,
        now: datetime,
        *,
        workflow_type: str | None = None,
        status: str | None = None,
        stuck: Stuck | None = None,
        overdue_slack: timedelta = timedelta(minutes=1),
        limit: int = 100,
        after: tuple[str, str] | None = None,
    ) -> Sequence[InstanceOverview]:
        """Instances ordered by (type, id) with what is pending on them, optionally only the stuck ones.

        Args:
            now: the current time (timezone-aware, the service's clock).
            workflow_type: only this type (None: every type).
            status: only this instance status (None: every status).
            stuck: `dead` (an effect is dead), `overdue` (a timer is due more than `overdue_slack` ago),
                `waiting` (running with nothing pending: it waits for an input from outside), `any`.
            overdue_slack: how late a timer may be before it counts as overdue (a worker fires due timers
                within its poll interval, so "due a moment ago" is normal).
            limit: at most this many rows.
            after: the (type, id) key to start after (keyset pagination).

        Returns:
            The matching instances with their pending and dead effect counts and timer counts.

        Raises:
            StoreError: the database failed.
        """
        params = {
            "overdue_before": now - overdue_slack,
            "workflow_type": workflow_type,
            "status": status,
            "stuck": stuck,
            "after_type": after[0] if after else None,
            "after_id": after[1] if after else None,
            "limit": limit,
        }
        with self.store.connection(workflow_type) as conn:
            rows = conn.execute(self.q["ops_instances"], params).fetchall()
        return [
            InstanceOverview(
                InstanceInfo(wtype, wid, InstanceStatus(st), last_seq, created, updated), pending, dead, timers, overdue
            )
            for wtype, wid, st, last_seq, created, updated, pending, dead, timers, overdue in rows
        ]
