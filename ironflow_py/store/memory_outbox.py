"""Claims and fenced updates of MemoryStore's outbox rows and timers: the runtime's outbox port in memory.

Used by the scenario runner (`ironflow_py.testing.Scenario`) so that effect attempts and timer firings run
through the same code as on PostgreSQL (`_attempt.Attempts`): same retries, dead letters and feedback.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from ironflow_py.store.memory import MemoryStore
from ironflow_py.store.postgres_outbox import EffectClaim, TimerClaim


class MemoryOutbox:
    """One worker's view of a MemoryStore's outbox and timers; every change is fenced like the SQL one."""

    def __init__(self, store: MemoryStore, worker: str) -> None:
        self.store = store
        self.worker = worker

    def claim_effects(self, now: datetime, lease: timedelta, limit: int) -> list[EffectClaim]:
        with self.store._lock:
            due = sorted(
                (r for r in self.store.outbox.values() if r.status == "pending" and r.available_at <= now),
                key=lambda r: (r.available_at, r.id),
            )[:limit]
            claims = []
            for row in due:
                row.locked_by, row.attempts, row.available_at = self.worker, row.attempts + 1, now + lease
                claims.append(
                    EffectClaim(row.id, row.workflow_type, row.workflow_id, row.effect_type, row.payload, row.attempts)
                )
            return claims

    def _held(self, claim: EffectClaim) -> bool:
        row = self.store.outbox.get(claim.id)
        return row is not None and (row.status, row.locked_by, row.attempts) == ("pending", self.worker, claim.attempt)

    def complete_effects(self, claims: Sequence[EffectClaim], now: datetime) -> set[int]:
        done = set()
        with self.store._lock:
            for claim in claims:
                if self._held(claim):
                    self.store.outbox[claim.id].status = "done"
                    done.add(claim.id)
        return done

    def retry_effect_later(self, claim: EffectClaim, retry_at: datetime, error: str) -> bool:
        with self.store._lock:
            if not self._held(claim):
                return False
            row = self.store.outbox[claim.id]
            row.available_at, row.last_error, row.locked_by = retry_at, error, None
            return True

    def mark_dead(self, claim: EffectClaim, now: datetime, error: str) -> bool:
        with self.store._lock:
            if not self._held(claim):
                return False
            row = self.store.outbox[claim.id]
            row.status, row.last_error = "dead", error
            return True

    def heartbeat(self, claim: EffectClaim, until: datetime) -> datetime | None:
        with self.store._lock:
            if not self._held(claim):
                return None
            self.store.outbox[claim.id].available_at = until
            return until

    def claim_timers(self, now: datetime, lease: timedelta, limit: int) -> list[TimerClaim]:
        with self.store._lock:
            due = sorted(
                (
                    t
                    for t in self.store.timers_by_key.values()
                    if t.due_at <= now and (t.locked_until is None or t.locked_until <= now)
                ),
                key=lambda t: (t.due_at, t.id),
            )[:limit]
            claims = []
            for t in due:
                t.locked_by, t.attempts, t.locked_until = self.worker, t.attempts + 1, now + lease
                claims.append(
                    TimerClaim(
                        t.id, t.workflow_type, t.workflow_id, t.timer_key, t.due_at, t.input_type, t.payload, t.attempts
                    )
                )
            return claims

    def retry_timer_later(self, claim: TimerClaim, retry_at: datetime, error: str) -> bool:
        with self.store._lock:
            timer = self.store._timer_by_id(claim.id)
            if timer is None or (timer.locked_by, timer.attempts) != (self.worker, claim.attempt):
                return False
            timer.due_at, timer.last_error, timer.locked_by, timer.locked_until = retry_at, error, None, None
            return True
