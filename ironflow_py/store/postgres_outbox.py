"""The outbox port (`store.base.Outbox`) on PostgreSQL: claims and fenced updates of outbox rows and timers.

Each method is one statement on a pooled autocommit connection; the "why" of each lives beside its SQL
in queries.sql. Every change to a claimed row is fenced on (id, locked_by, claim_token).

Each call must end within half the lease (or the store's `stall_timeout`, if shorter), or the store cuts
its connection (`StoreStalled`): a claim or heartbeat whose answer comes back later could describe a lease
that has already run out, and a worker must never act on one (design/reliability.md, "Stalls").
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from psycopg.rows import args_row

from ironflow_py.store.base import EffectClaim, TimerClaim

if TYPE_CHECKING:
    from ironflow_py.store.postgres import PostgresStore


class PostgresOutbox:
    """The claim/complete/fail/release statements of one worker, bound to its store and worker id."""

    def __init__(self, store: PostgresStore, worker: str, lease: timedelta | None = None) -> None:
        self.store = store
        self.worker = worker
        self.q = store.q
        #: Seconds each other call (complete, retry, dead, release, next_due) may take: half the lease, or None.
        self.within = None if lease is None else lease.total_seconds() / 2

    def _fenced(self, name: str, row_id: int, token: int, **params: Any) -> bool:
        with self.store.connection(within=self.within) as conn:
            cur = conn.execute(self.q[name], {"id": row_id, "worker": self.worker, "token": token, **params})
            return cur.rowcount == 1

    def _batch(self, name: str, ids: Sequence[int], tokens: Sequence[int], now: datetime | None) -> set[int]:
        if not ids:
            return set()
        params = {"ids": list(ids), "tokens": list(tokens), "worker": self.worker, "now": now}
        with self.store.connection(within=self.within) as conn:
            return {row[0] for row in conn.execute(self.q[name], params)}

    # -- effects ------------------------------------------------------------------------------------------

    def claim_effects(
        self,
        now: datetime | None,
        lease: timedelta,
        limit: int,
        max_bytes: int | None = None,
        *,
        always_one: bool = True,
        effect_types: Sequence[str] | None = None,
    ) -> list[EffectClaim]:
        params = {
            "now": now,
            "lease": lease,
            "limit": limit,
            "worker": self.worker,
            "max_bytes": max_bytes,
            "always_one": always_one,
            "types": None if effect_types is None else list(effect_types),
        }
        with self.store.connection(within=lease.total_seconds() / 2) as conn:
            cur = conn.cursor(row_factory=args_row(EffectClaim))
            return cur.execute(self.q["claim_effects"], params).fetchall()

    def complete_effects(self, claims: Sequence[EffectClaim], now: datetime | None) -> set[int]:
        """Mark done, in one statement; returns the ids whose claim still held."""
        return self._batch("complete_effects", [c.id for c in claims], [c.token for c in claims], now)

    def release_effects(self, claims: Sequence[EffectClaim], now: datetime | None) -> set[int]:
        released = self._batch("release_effects", [c.id for c in claims], [c.token for c in claims], now)
        if released:
            self.notify()
        return released

    def retry_effect_later(
        self, claim: EffectClaim, now: datetime | None, delay: timedelta, error: str, traceback: str | None = None
    ) -> bool:
        return self._fenced(
            "retry_effect_later", claim.id, claim.token, now=now, delay=delay, error=error, traceback=traceback
        )

    def mark_dead(self, claim: EffectClaim, now: datetime, error: str, traceback: str | None = None) -> bool:
        return self._fenced("settle_effect_dead", claim.id, claim.token, now=now, error=error, traceback=traceback)

    def heartbeat(self, claim: EffectClaim, now: datetime | None, lease: timedelta) -> datetime | None:
        """Extend the lease to the database's `now()` + `lease`; None if the claim was lost."""
        params = {"id": claim.id, "worker": self.worker, "token": claim.token, "now": now, "lease": lease}
        with self.store.connection(within=lease.total_seconds() / 2) as conn:
            row = conn.execute(self.q["heartbeat_effect"], params).fetchone()
        return None if row is None else row[0]

    # -- timers -------------------------------------------------------------------------------------------

    def claim_timers(self, now: datetime | None, lease: timedelta, limit: int) -> list[TimerClaim]:
        params = {"now": now, "lease": lease, "limit": limit, "worker": self.worker}
        with self.store.connection(within=lease.total_seconds() / 2) as conn:
            cur = conn.cursor(row_factory=args_row(TimerClaim))
            return cur.execute(self.q["claim_timers"], params).fetchall()

    def retry_timer_later(self, claim: TimerClaim, now: datetime | None, delay: timedelta, error: str) -> bool:
        return self._fenced("retry_timer_later", claim.id, claim.token, now=now, delay=delay, error=error)

    def release_timers(self, claims: Sequence[TimerClaim], now: datetime | None) -> set[int]:
        released = self._batch("release_timers", [c.id for c in claims], [c.token for c in claims], now)
        if released:
            self.notify()
        return released

    # -- wake-ups -----------------------------------------------------------------------------------------

    def next_due(self, now: datetime | None) -> float | None:
        """Seconds until the earliest claimable row is due, by the database's clock (None: nothing waits)."""
        with self.store.connection(within=self.within) as conn:  # the worker's loop waits on it: bounded too
            row = conn.execute(self.q["next_due"], {"now": now}).fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def notify(self) -> None:
        with self.store.connection(within=self.within) as conn:
            conn.execute(self.q["notify"], {"channel": self.store.channel})
