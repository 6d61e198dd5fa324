"""A delayed start in real time on PostgreSQL: 5 s ahead, counted on the database's clock, shown as scheduled
until then, run by a real worker no earlier than due (design/schedules.md, "Delayed start")."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from ironflow_py import App, EffectRuntime, OutcomeStatus, PostgresStore, WorkflowService
from ironflow_py.cli import main
from ironflow_py.inspection import instance_report
from tests.contract.test_delayed_start import Add, Ledger
from tests.integration.test_one_clock import SKEW, SkewedClock, db_now

app = App(workflows=[Ledger])


def test_a_delayed_start_5s_ahead_runs_no_earlier_and_shows_as_scheduled_before(
    pg_store: PostgresStore,
    admin: psycopg.Connection[Any],
    pg_url: str,
    schema: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The caller's host is 30 s ahead of the database: `delay` still counts from the database's clock.
    service = WorkflowService(pg_store, workflows=[Ledger], clock=SkewedClock(SKEW))
    before = db_now(admin)
    outcome = service.execute(Add("acc", 5), input_key="start-acc", delay=timedelta(seconds=5))
    after = db_now(admin)
    assert outcome.status is OutcomeStatus.SCHEDULED
    [timer] = pg_store.timers("ledger", "acc")
    assert before + timedelta(seconds=5) <= timer.due_at <= after + timedelta(seconds=5)

    # Shown as scheduled: by the report (inspect show, the web view) and by `inspect instances`.
    report = instance_report(service, "ledger", "acc")
    assert report.scheduled and "scheduled: ledger.add/1 starts at" in report.diagnosis(db_now(admin))
    argv = ["--database-url", pg_url, "--schema", schema, "--app", f"{__name__}:app", "inspect", "instances"]
    assert main(argv) == 0
    listed = capsys.readouterr().out
    assert listed.split()[:3] == ["ledger", "acc", "scheduled"], listed

    # A real worker on the same fast host: it must not fire early by its own clock.
    runtime = EffectRuntime(service, None, handle_signals=False, poll_interval=0.2, worker_id="w")
    thread = threading.Thread(target=runtime.run)
    thread.start()
    try:
        ran_at = None
        pause = threading.Event()
        deadline = time.monotonic() + 60  # a bound against a hang; the worker fires about 5 s in
        while time.monotonic() < deadline:
            # The report is read before the events: if no event exists after it was read, the start had
            # not run when it was, so it must have shown the instance as scheduled. (Read the other way
            # round, the worker could fire between the two reads.)
            report = instance_report(service, "ledger", "acc")
            if pg_store.events("ledger", "acc"):
                ran_at = db_now(admin)
                break
            assert report.scheduled, "shown as not scheduled before the start ran"
            pause.wait(0.05)
        assert ran_at is not None, "the delayed start never ran"
    finally:
        runtime.stop()
        thread.join(10)
    row = admin.execute(
        psycopg.sql.SQL("SELECT min(recorded_at) FROM {}.events").format(psycopg.sql.Identifier(schema))
    ).fetchone()
    assert row is not None
    # The decision is stamped by the fast host's clock, exactly SKEW ahead of this machine's (the database's):
    # it was decided no earlier than the due time, though that host saw it due 25 s before.
    assert row[0] - SKEW >= timer.due_at
    assert ran_at >= timer.due_at
    assert service.state("ledger", "acc") == (5,)
    assert pg_store.timers("ledger", "acc") == []
    assert not instance_report(service, "ledger", "acc").scheduled
