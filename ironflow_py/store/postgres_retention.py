"""The PostgreSQL pruner: `RetentionPolicy` applied in bounded batches, one transaction each (design/retention.md).

A batch takes the schema's prune lock (transaction-scoped), deletes finished and dead effects whose
retention has passed, then prunes the oldest closed instances that no projection still needs: the rows
that refer to an instance first (archive copies, timers, input keys, snapshot, events, finished effects),
the instance row last. The SQL, with why each step is safe, is in store/sql/queries.sql under "Retention".
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import psycopg

from ironflow_py._names import names
from ironflow_py.retention import ClosedMode, PruneReport, RetentionPolicy
from ironflow_py.store._prune import prune_until_done

if TYPE_CHECKING:
    from ironflow_py.store.postgres import PostgresStore


class PostgresPruner:
    """`store.base.Pruner` on PostgreSQL; from `PostgresStore.pruner(projections)`.

    Args:
        store: The store whose schema is pruned.
        projections: Projection names that bound pruning even before their checkpoint row exists.
    """

    def __init__(self, store: PostgresStore, projections: str | Iterable[str] = ()) -> None:
        self.store = store
        self.q = store.q
        self.projections = names(projections)

    def prune_batch(self, policy: RetentionPolicy, now: datetime | None = None) -> PruneReport:
        """See `Pruner.prune_batch`."""
        store = self.store
        with store.connection() as conn, store.transaction(conn):
            locked = conn.execute(self.q["prune_lock"], {"schema": store.schema}).fetchone()
            if not (locked and locked[0]):
                return PruneReport(busy=True)
            report = self._effects(conn, policy, now)
            if policy.closed_instances is not None:
                report = report + self._instances(conn, policy, now)
            if policy.previous_runs is not None:
                report = report + self._runs(conn, policy, now)
        return report + PruneReport(batches=1)

    def prune_all(
        self, policy: RetentionPolicy, now: datetime | None = None, *, max_batches: int | None = None
    ) -> PruneReport:
        """See `Pruner.prune_all`."""
        return prune_until_done(self, policy, now, max_batches)

    def _effects(self, conn: psycopg.Connection[Any], policy: RetentionPolicy, now: datetime | None) -> PruneReport:
        done = dead = 0
        if policy.done_effects is not None:
            params = {"now": now, "keep": policy.done_effects, "limit": policy.batch_size}
            done = conn.execute(self.q["prune_done_effects"], params).rowcount
        if policy.dead_effects is not None:
            params = {"now": now, "keep": policy.dead_effects, "limit": policy.batch_size}
            dead = conn.execute(self.q["prune_dead_effects"], params).rowcount
        return PruneReport(effects=done, dead_effects=dead)

    def _held(self, conn: psycopg.Connection[Any]) -> bool:
        """True when a named projection has no checkpoint row yet: it has read nothing, so nothing may go."""
        if not self.projections:
            return False
        present = {r[0] for r in conn.execute(self.q["prune_projection_names"], {"names": list(self.projections)})}
        return any(name not in present for name in self.projections)

    def _runs(self, conn: psycopg.Connection[Any], policy: RetentionPolicy, now: datetime | None) -> PruneReport:
        """Events of earlier runs of open instances continued as new (`prune_pick_runs`)."""
        q = self.q
        pick = {"now": now, "keep": policy.previous_runs, "limit": policy.batch_size, "held": self._held(conn)}
        chosen = conn.execute(q["prune_pick_runs"], pick).fetchall()
        if not chosen:
            return PruneReport()
        params = {"types": [r[0] for r in chosen], "ids": [r[1] for r in chosen], "upto": [r[2] for r in chosen]}
        if policy.closed_mode is ClosedMode.ARCHIVE:
            conn.execute(q["prune_archive_run_events"], {**params, "now": now})
        events = conn.execute(q["prune_run_events"], params).rowcount
        return PruneReport(runs=len(chosen), events=events)

    def _instances(self, conn: psycopg.Connection[Any], policy: RetentionPolicy, now: datetime | None) -> PruneReport:
        q = self.q
        mode = policy.closed_mode
        pick = {
            "now": now,
            "keep": policy.closed_instances,
            "limit": policy.batch_size,
            "held": self._held(conn),
            "delete": mode is ClosedMode.DELETE,
            "dead_keep": policy.dead_effects,
        }
        chosen = conn.execute(q["prune_pick_instances"], pick).fetchall()
        if not chosen:
            return PruneReport()
        params: dict[str, Any] = {
            "types": [r[0] for r in chosen],
            "ids": [r[1] for r in chosen],
            "now": now,
            "dead_keep": policy.dead_effects,
        }
        if mode is ClosedMode.ARCHIVE:
            conn.execute(q["prune_archive_events"], params)
            conn.execute(q["prune_archive_keys"], params)
        # Dependency order: everything that names the instance, then the instance row itself.
        timers = conn.execute(q["prune_instance_timers"], params).rowcount
        keys = conn.execute(q["prune_instance_keys"], params).rowcount
        snapshots = conn.execute(q["prune_instance_snapshots"], params).rowcount
        events = conn.execute(q["prune_instance_events"], params).rowcount
        removed = [r[0] for r in conn.execute(q["prune_instance_effects"], params)]
        last = "prune_delete_instances" if mode is ClosedMode.DELETE else "prune_tombstone_instances"
        instances = conn.execute(q[last], params).rowcount
        dead = sum(1 for was_dead in removed if was_dead)
        return PruneReport(
            effects=len(removed) - dead,
            dead_effects=dead,
            instances=instances,
            events=events,
            input_keys=keys,
            timers=timers,
            snapshots=snapshots,
        )
