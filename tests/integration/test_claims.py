"""Claims of effects and timers on PostgreSQL: a claim in flight on another connection is skipped (SKIP
LOCKED), never waited for and never taken twice; a committed claim holds until its lease ends.

The first claim runs the store's own claim statement on an explicit connection whose transaction stays
open, so its row locks are certainly held while the second worker claims: no timing decides the order.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from ironflow_py import ManualClock, PostgresStore, WorkflowService
from tests.effect_app import Job, Remind, Start

T0 = datetime(2030, 5, 1, 9, 0, tzinfo=UTC)
LEASE = timedelta(seconds=60)
Conn = psycopg.Connection[tuple[Any, ...]]


@pytest.fixture
def service(pg_store: PostgresStore) -> WorkflowService:
    return WorkflowService(pg_store, workflows=[Job], clock=ManualClock(T0))


@pytest.fixture
def holder(pg_url: str) -> Iterator[Conn]:
    """A connection whose transaction the test keeps open (psycopg opens one on the first statement)."""
    with psycopg.connect(pg_url) as conn:
        yield conn


def claim_while_held(admin: Conn, holder: Conn, claim: Callable[[], list[Any]]) -> tuple[list[Any] | None, list[int]]:
    """Run `claim` in a thread while `holder`'s transaction is open. Returns what it claimed (None if it
    did not finish) and the backends that were seen waiting for `holder`'s locks (then `holder` is rolled
    back so the claim can finish and the test fail cleanly)."""
    claimed: list[list[Any]] = []
    thread = threading.Thread(target=lambda: claimed.append(claim()))
    thread.start()
    blocked: list[int] = []
    tick = threading.Event()
    while thread.is_alive() and not blocked:
        rows = admin.execute(
            "SELECT pid FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))", (holder.info.backend_pid,)
        ).fetchall()
        blocked = [r[0] for r in rows]
        tick.wait(0.005)
    if blocked:
        holder.rollback()
    thread.join(30)
    return (claimed[0] if claimed and not blocked else None), blocked


def test_an_effect_claim_skips_rows_another_claim_holds_and_never_takes_them(
    service: WorkflowService, pg_store: PostgresStore, admin: Conn, holder: Conn
) -> None:
    service.execute(Start("s", 3, "noop"))
    params = {
        "now": T0,
        "lease": LEASE,
        "limit": 1,
        "worker": "first",
        "max_bytes": None,
        "always_one": True,
        "types": None,
    }
    first = [row[0] for row in holder.execute(pg_store.q["claim_effects"], params).fetchall()]
    assert len(first) == 1
    second, blocked = claim_while_held(admin, holder, lambda: pg_store.outbox("second").claim_effects(T0, LEASE, 10))
    assert blocked == [], "the second claim waited for the first one's row lock instead of skipping the row"
    assert second is not None
    holder.commit()
    assert sorted(c.id for c in second) == sorted(e.id for e in service.store.effects("job", "s") if e.id not in first)
    assert {(e.locked_by, e.attempts) for e in service.store.effects("job", "s") if e.id in first} == {("first", 1)}
    # Every row is under a live lease now: nobody may claim any of them until it ends.
    assert pg_store.outbox("third").claim_effects(T0 + LEASE - timedelta(microseconds=1), LEASE, 10) == []
    again = pg_store.outbox("third").claim_effects(T0 + LEASE, LEASE, 10)
    assert sorted((c.id, c.attempt) for c in again) == sorted((e.id, 2) for e in service.store.effects("job", "s"))


def test_a_timer_claim_skips_timers_another_claim_holds_and_never_takes_them(
    service: WorkflowService, pg_store: PostgresStore, admin: Conn, holder: Conn
) -> None:
    for key in ("a", "b", "c"):
        service.execute(Remind("t", key, T0))
    params = {"now": T0, "lease": LEASE, "limit": 1, "worker": "first", "max_bytes": None, "always_one": True}
    first = [row[0] for row in holder.execute(pg_store.q["claim_timers"], params).fetchall()]
    assert len(first) == 1
    second, blocked = claim_while_held(admin, holder, lambda: pg_store.outbox("second").claim_timers(T0, LEASE, 10))
    assert blocked == [], "the second claim waited for the first one's row lock instead of skipping the timer"
    assert second is not None
    holder.commit()
    timers = service.store.timers("job", "t")
    assert sorted(c.id for c in second) == sorted(t.id for t in timers if t.id not in first)
    assert pg_store.outbox("third").claim_timers(T0 + LEASE - timedelta(microseconds=1), LEASE, 10) == []
    again = pg_store.outbox("third").claim_timers(T0 + LEASE, LEASE, 10)
    assert sorted((c.id, c.attempt) for c in again) == sorted((t.id, 2) for t in timers)
