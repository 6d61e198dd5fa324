"""Schedules on PostgreSQL with the real effect runtime and a ManualClock: ticks start child runs named by
their fire times; workers stopped for 10 minutes resume per the catch-up policy; the CLI (design/schedules.md)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ironflow_py import EffectRegistry, EffectRuntime, ManualClock, PostgresStore, Schedule, WorkflowService
from ironflow_py.cli import main
from ironflow_py.schedule_workflow import SCHEDULE_TYPE
from tests.schedule_app import ReportWorkflow, report

T = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


def setup(pg_store: PostgresStore, **kw: Any) -> tuple[WorkflowService, EffectRuntime, ManualClock]:
    clock = ManualClock(T)
    schedule = Schedule("ten", report, every=timedelta(seconds=10), **kw)
    service = WorkflowService(pg_store, workflows=[ReportWorkflow], clock=clock, schedules=[schedule])
    runtime = EffectRuntime(service, EffectRegistry(), rng=random.Random(1), handle_signals=False, listen=False)
    service.schedules.reconcile()
    return service, runtime, clock


def drain(runtime: EffectRuntime) -> None:
    for _ in range(50):
        if runtime.run_once() == 0:
            return
    raise AssertionError("still busy after 50 rounds")


def runs(service: WorkflowService) -> list[str]:
    return [i.workflow_id for i in service.list_instances("report")]


def test_a_tick_starts_a_child_run_named_by_its_fire_time_and_hears_it_close(pg_store: PostgresStore) -> None:
    service, runtime, clock = setup(pg_store)
    clock.advance(timedelta(seconds=10))
    drain(runtime)
    assert runs(service) == ["ten@2030-01-01T12:00:10Z"]
    info = service.schedules.show("ten")
    assert (info.started, info.open_runs, info.next_fire) == (1, (), T + timedelta(seconds=20))


@pytest.mark.parametrize(
    ("catchup", "window", "expected"),
    [
        ("one", timedelta(days=1), ["ten@2030-01-01T12:10:10Z"]),
        ("all", timedelta(seconds=30), [f"ten@2030-01-01T12:{t}Z" for t in ("09:40", "09:50", "10:00", "10:10")]),
        ("skip", timedelta(days=1), []),
    ],
)
def test_workers_stopped_for_10_minutes_resume_per_the_catchup_policy(
    pg_store: PostgresStore, catchup: str, window: timedelta, expected: list[str]
) -> None:
    service, runtime, clock = setup(pg_store, catchup=catchup, catchup_window=window, overlap="allow_all")
    clock.advance(timedelta(seconds=10))
    drain(runtime)
    clock.advance(timedelta(minutes=10))  # no worker runs meanwhile
    drain(runtime)
    assert runs(service) == ["ten@2030-01-01T12:00:10Z", *expected]
    assert service.schedules.show("ten").missed == 60 - len(expected)


def test_the_cli_lists_shows_pauses_triggers_resumes_and_backfills(
    pg_store: PostgresStore, pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["--database-url", pg_url, "--schema", pg_store.schema, "--app", "tests.schedule_app:app", "schedules"]
    assert main([*base, "list"]) == 0
    listed = capsys.readouterr().out
    assert listed.startswith("every-second") and "not reconciled" in listed
    assert main([*base, "pause", "every-second", "--reason", "maintenance"]) == 0
    assert main([*base, "trigger", "every-second", "--request-id", "r1"]) == 0
    assert "every-second@trigger/r1" in capsys.readouterr().out
    assert main([*base, "show", "every-second"]) == 0
    shown = capsys.readouterr().out
    assert "paused (maintenance)" in shown and "schedule.run_started/1" in shown
    assert main([*base, "resume", "every-second"]) == 0
    argv = [*base, "backfill", "every-second", "--start", "2030-01-01T12:00:00Z", "--end", "2030-01-01T12:00:02Z"]
    assert main(argv) == 0
    assert capsys.readouterr().out.split()[-3:] == [
        "every-second@2030-01-01T12:00:00Z",
        "every-second@2030-01-01T12:00:01Z",
        "every-second@2030-01-01T12:00:02Z",
    ]
    assert main([*base, "show", "nope"]) == 1
    assert "no schedule named 'nope'" in capsys.readouterr().err
    assert pg_store.instance(SCHEDULE_TYPE, "every-second") is not None
