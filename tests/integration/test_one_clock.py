"""One clock and prompt wake-ups (issue #11 items 1 and 2), on real PostgreSQL with real time.

Leases and due times are judged by the database's clock, so worker hosts whose clocks are 30 s apart agree
on them; the idle loop sleeps until the earliest row that is actually claimable, so a timer backing off
does not delay a later one, whatever the poll interval and with or without NOTIFY.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from ironflow_py import EffectRuntime, PostgresStore, RetryPolicy, WorkflowService
from ironflow_py.clock import SystemClock
from tests.effect_app import Job, Remind, Start, make_registry

SKEW = timedelta(seconds=30)


class SkewedClock(SystemClock):
    """A worker host whose wall clock is `offset` away from the database server's."""

    def __init__(self, offset: timedelta) -> None:
        self.offset = offset

    def now(self) -> datetime:
        return super().now() + self.offset


def db_now(admin: psycopg.Connection[Any]) -> datetime:
    row = admin.execute("SELECT clock_timestamp()").fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


def wait_until_db_passes(admin: psycopg.Connection[Any], when: datetime) -> None:
    """Bounded wait on the real condition: the database's clock has passed `when`."""
    pause = threading.Event()
    for _ in range(3000):
        if db_now(admin) > when:
            return
        pause.wait(0.01)
    raise AssertionError(f"the database clock never passed {when}")


def runtime(pg_store: PostgresStore, clock: SystemClock, tmp_path: Path, **kw: Any) -> EffectRuntime:
    service = WorkflowService(pg_store, workflows=[Job], clock=clock)
    kw.setdefault("lease", 3.0)
    return EffectRuntime(service, make_registry(tmp_path), handle_signals=False, **kw)


def outbox_row(admin: psycopg.Connection[Any], schema: str) -> tuple[Any, ...]:
    row = admin.execute(
        psycopg.sql.SQL("SELECT locked_by, attempts, status, locked_until FROM {}.outbox").format(
            psycopg.sql.Identifier(schema)
        )
    ).fetchone()
    assert row is not None
    return tuple(row)


def test_a_host_30s_ahead_never_takes_over_a_live_claim(
    pg_store: PostgresStore, admin: psycopg.Connection[Any], schema: str, tmp_path: Path
) -> None:
    """The issue's example: a fast host saw a 3 s lease 0.3 s old as expired and took the row over."""
    slow = runtime(pg_store, SkewedClock(-SKEW), tmp_path, worker_id="slow")
    fast = runtime(pg_store, SkewedClock(SKEW), tmp_path, worker_id="fast")
    slow.service.execute(Start("j", 1, "noop"))
    (claim,) = slow.outbox.claim_effects(None, slow.lease, 10)  # what slow's loop passes: store_time -> None
    locked_by, attempts, _, lease_end = outbox_row(admin, schema)
    assert (locked_by, attempts) == ("slow", 1)
    assert db_now(admin) < lease_end  # the claim is live while the fast host tries
    assert fast.run_once() == 0
    assert outbox_row(admin, schema)[:3] == ("slow", 1, "pending")
    # Another member of the class: the slow host (30 s behind) takes the row over as soon as the lease
    # really ended, not 30 s later.
    wait_until_db_passes(admin, lease_end)
    slower = runtime(pg_store, SkewedClock(-SKEW), tmp_path, worker_id="slower")
    assert slower.run_once() == 1
    assert outbox_row(admin, schema)[:3] == ("slower", 2, "done")
    assert slow.outbox.complete_effects([claim], None) == set()  # the first claim is fenced out


def test_a_host_30s_ahead_never_fires_a_timer_early(
    pg_store: PostgresStore, admin: psycopg.Connection[Any], tmp_path: Path
) -> None:
    fast = runtime(pg_store, SkewedClock(SKEW), tmp_path, worker_id="fast")
    due = db_now(admin) + timedelta(seconds=2)
    fast.service.execute(Remind("j", "ping", due))
    assert fast.run_once() == 0  # by the fast host's clock it was due 28 s ago
    assert fast.service.state("job", "j").fired == ()
    wait_until_db_passes(admin, due)
    assert fast.run_once() == 1
    assert fast.service.state("job", "j").fired == ("ping",)


def test_a_host_30s_behind_retries_on_the_database_clock(
    pg_store: PostgresStore, admin: psycopg.Connection[Any], schema: str, tmp_path: Path
) -> None:
    """A retry delay is added to the database's clock: a slow host's failure is retried after the delay,
    not 30 s later, and a fast host's not at once."""
    policy = RetryPolicy(max_attempts=5, base_delay=1.0, factor=1.0, max_delay=1.0, jitter=False)
    slow = EffectRuntime(
        WorkflowService(pg_store, workflows=[Job], clock=SkewedClock(-SKEW)),
        make_registry(tmp_path, policy=policy),
        handle_signals=False,
        worker_id="slow",
    )
    started = db_now(admin)
    slow.service.execute(Start("j", 1, "fail"))
    assert slow.run_once() == 1
    row = admin.execute(
        psycopg.sql.SQL("SELECT available_at FROM {}.outbox").format(psycopg.sql.Identifier(schema))
    ).fetchone()
    assert row is not None
    assert started + timedelta(seconds=1) <= row[0] < db_now(admin) + timedelta(seconds=1)


def later_timer_fired_at(
    pg_store: PostgresStore, admin: psycopg.Connection[Any], schema: str, tmp_path: Path, *, listen: bool
) -> tuple[datetime, datetime]:
    """An earlier timer backs off for a minute; a later one is due 2 s after start. Returns (due, fired)."""
    service = WorkflowService(pg_store, workflows=[Job])
    now = db_now(admin)
    service.execute(Remind("a", "early", now))
    # The early timer's input cannot be decoded: each firing fails and backs off for a minute.
    admin.execute(
        psycopg.sql.SQL("UPDATE {}.timers SET input_type = 'job.gone/1'").format(psycopg.sql.Identifier(schema))
    )
    due = now + timedelta(seconds=2)
    service.execute(Remind("b", "late", due))
    policy = RetryPolicy(max_attempts=1_000, base_delay=60.0, factor=1.0, max_delay=60.0, jitter=False)
    rt = EffectRuntime(
        service, make_registry(tmp_path), handle_signals=False, poll_interval=3600, listen=listen, timer_policy=policy
    )
    thread = threading.Thread(target=rt.run)
    thread.start()
    try:
        pause = threading.Event()
        for _ in range(1000):
            if service.state("job", "b").fired or not thread.is_alive():
                break
            pause.wait(0.01)
        assert service.state("job", "b").fired == ("late",)
        fired_at = service.history("job", "b")[-1].recorded_at
        row = admin.execute(
            psycopg.sql.SQL("SELECT last_error, locked_until > clock_timestamp() FROM {}.timers").format(
                psycopg.sql.Identifier(schema)
            )
        ).fetchone()
        assert row is not None and "job.gone/1" in row[0] and row[1]  # the early timer really is backing off
        assert service.state("job", "a").fired == ()
    finally:
        rt.stop()
        thread.join(10)
    assert not thread.is_alive()
    return due, fired_at


@pytest.mark.parametrize("listen", [True, False], ids=["notify", "no-notify"])
def test_a_backing_off_timer_does_not_delay_a_later_one(
    pg_store: PostgresStore, admin: psycopg.Connection[Any], schema: str, tmp_path: Path, listen: bool
) -> None:
    """The issue's example: a timer due 2 s after start fired 10 s late behind an earlier one backing off."""
    due, fired_at = later_timer_fired_at(pg_store, admin, schema, tmp_path, listen=listen)
    assert due <= fired_at < due + timedelta(seconds=1)


def test_a_timer_due_while_a_handler_runs_is_not_held_by_the_poll_interval(
    pg_store: PostgresStore, admin: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """Another member: with a handler in flight the loop used to sleep a whole poll interval."""
    service = WorkflowService(pg_store, workflows=[Job])
    service.execute(Start("busy", 1, "block"))
    due = db_now(admin) + timedelta(seconds=2)
    service.execute(Remind("t", "late", due))
    rt = EffectRuntime(service, make_registry(tmp_path), handle_signals=False, poll_interval=3600, listen=False)
    thread = threading.Thread(target=rt.run)
    thread.start()
    try:
        pause = threading.Event()
        for _ in range(1000):
            if service.state("job", "t").fired or not thread.is_alive():
                break
            pause.wait(0.01)
        assert service.state("job", "t").fired == ("late",)
        assert (tmp_path / "started.log").exists() and not (tmp_path / "finished.log").exists()  # overlap
        fired_at = service.history("job", "t")[-1].recorded_at
        assert due <= fired_at < due + timedelta(seconds=1)
    finally:
        (tmp_path / "go").touch()
        rt.stop()
        thread.join(10)
    assert not thread.is_alive()


def test_the_injected_clock_still_drives_decide(pg_store: PostgresStore, tmp_path: Path) -> None:
    """Only judging moved to the database: `recorded_at` (decide's `now`) is still the injected clock's."""
    rt = runtime(pg_store, SkewedClock(SKEW), tmp_path)
    rt.service.execute(Remind("j", "k", datetime(2000, 1, 1, tzinfo=UTC)))
    assert rt.run_once() == 1
    recorded = rt.service.history("job", "j")[-1].recorded_at
    assert recorded > datetime.now(UTC) + SKEW - timedelta(seconds=5)
