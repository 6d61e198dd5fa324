"""Schedules, pure: cron fire times across Europe/Paris daylight-saving changes, `every`, catch-up after a
clock jump, the overlap matrix, seeded jitter, and the declaration's checks (design/schedules.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import islice, pairwise
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ironflow_py.errors import ConfigurationError
from ironflow_py.schedule import (
    MAX_CATCHUP,
    CatchUp,
    OverlapPlan,
    Schedule,
    catch_up,
    fire_times,
    jitter_for,
    next_fire_time,
    plan_overlap,
    run_id_for,
)

PARIS = ZoneInfo("Europe/Paris")


def action(run: Any) -> Any:
    return run


def cron(expr: str, tz: str = "Europe/Paris", **kw: Any) -> Schedule:
    return Schedule("s", action, cron=expr, tz=tz, **kw)


def every(seconds: float, **kw: Any) -> Schedule:
    return Schedule("s", action, every=timedelta(seconds=seconds), **kw)


def paris(year: int, month: int, day: int, hour: int, minute: int, *, fold: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=PARIS, fold=fold)


def first(schedule: Schedule, after: datetime, n: int) -> list[str]:
    """The next `n` fire times, as local ISO text with the offset (what a reader checks against a calendar)."""
    return [t.astimezone(PARIS).isoformat() for t in islice(fire_times(schedule, after), n)]


# -- cron across daylight-saving changes (Europe/Paris, 2026: spring 29 March, autumn 25 October) ------------


def test_the_0230_that_does_not_exist_in_spring_is_skipped() -> None:
    assert first(cron("30 2 * * *"), paris(2026, 3, 27, 0, 0), 3) == [
        "2026-03-27T02:30:00+01:00",
        "2026-03-28T02:30:00+01:00",
        "2026-03-30T02:30:00+02:00",  # 29 March has no 02:30: skipped, not moved to 03:00
    ]


def test_every_hour_in_spring_has_no_0200() -> None:
    assert first(cron("0 * * * *"), paris(2026, 3, 29, 0, 30), 3) == [
        "2026-03-29T01:00:00+01:00",
        "2026-03-29T03:00:00+02:00",
        "2026-03-29T04:00:00+02:00",
    ]


def test_the_repeated_autumn_hour_fires_once() -> None:
    assert first(cron("30 2 * * *"), paris(2026, 10, 24, 0, 0), 3) == [
        "2026-10-24T02:30:00+02:00",
        "2026-10-25T02:30:00+02:00",  # once: the second 02:30 (+01:00) does not fire
        "2026-10-26T02:30:00+01:00",
    ]


def test_a_half_hourly_cron_fires_each_wall_time_of_the_repeated_hour_once() -> None:
    assert first(cron("*/30 * * * *"), paris(2026, 10, 25, 1, 0), 4) == [
        "2026-10-25T01:30:00+02:00",
        "2026-10-25T02:00:00+02:00",
        "2026-10-25T02:30:00+02:00",
        "2026-10-25T03:00:00+01:00",  # 02:00 and 02:30 at +01:00 are skipped
    ]


def test_starting_inside_the_second_pass_of_the_repeated_hour_fires_nothing_in_it() -> None:
    after = paris(2026, 10, 25, 2, 10, fold=1)  # 02:10 the second time (+01:00)
    assert first(cron("*/30 * * * *"), after, 2) == ["2026-10-25T03:00:00+01:00", "2026-10-25T03:30:00+01:00"]


def test_six_fields_read_seconds_first() -> None:
    assert first(cron("*/20 * * * * *", tz="UTC"), datetime(2026, 1, 1, 0, 0, 5, tzinfo=UTC), 3) == [
        "2026-01-01T01:00:20+01:00",
        "2026-01-01T01:00:40+01:00",
        "2026-01-01T01:01:00+01:00",
    ]


def test_every_is_absolute_time_so_the_repeated_hour_counts_twice() -> None:
    times = list(islice(fire_times(every(3600), paris(2026, 10, 25, 1, 30)), 3))
    assert [t.astimezone(PARIS).isoformat() for t in times] == [
        "2026-10-25T02:00:00+02:00",
        "2026-10-25T02:00:00+01:00",
        "2026-10-25T03:00:00+01:00",
    ]
    assert all(b - a == timedelta(hours=1) for a, b in pairwise(times))


def test_every_counts_from_its_anchor() -> None:
    s = every(600, anchor=datetime(2026, 1, 1, 0, 7, tzinfo=UTC))
    assert next_fire_time(s, datetime(2026, 1, 1, 3, 0, tzinfo=UTC)) == datetime(2026, 1, 1, 3, 7, tzinfo=UTC)


def test_run_ids_are_derived_from_the_fire_time_in_utc() -> None:
    assert run_id_for("nightly", paris(2026, 10, 25, 2, 30)) == "nightly@2026-10-25T00:30:00Z"
    assert run_id_for("nightly", paris(2026, 10, 25, 2, 30, fold=1)) == "nightly@2026-10-25T01:30:00Z"


# -- catch-up --------------------------------------------------------------------------------------------------

T = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


def test_a_78_minute_clock_jump_on_a_10s_schedule_with_catchup_one_fires_exactly_once() -> None:
    s = every(10, catchup="one")
    result = catch_up(s, T, T + timedelta(minutes=78))
    assert result.fire == (T + timedelta(minutes=78),)  # the newest; no burst
    assert result.missed == 78 * 6  # 469 due, one started
    assert (result.first_missed, result.last_missed) == (T, T + timedelta(minutes=78, seconds=-10))


def test_catchup_one_also_fires_once_for_a_cron_schedule() -> None:
    s = cron("*/10 * * * * *", tz="UTC", catchup="one")
    assert catch_up(s, T, T + timedelta(minutes=78, seconds=3)).fire == (T + timedelta(minutes=78),)


def test_catchup_all_is_bounded_by_the_window() -> None:
    s = every(10, catchup="all", catchup_window=timedelta(minutes=1))
    now = T + timedelta(minutes=78, seconds=5)
    result = catch_up(s, T, now)
    assert result.fire == tuple(T + timedelta(minutes=77, seconds=10 * k) for k in range(1, 7))
    assert all(now - t <= timedelta(minutes=1) for t in result.fire)
    assert result.missed == 469 - 6
    assert (result.first_missed, result.last_missed) == (T, T + timedelta(minutes=77))


def test_catchup_all_on_a_cron_schedule_is_bounded_by_the_window_too() -> None:
    s = cron("*/10 * * * * *", tz="UTC", catchup="all", catchup_window=timedelta(minutes=1))
    result = catch_up(s, T, T + timedelta(minutes=78, seconds=5))
    assert result.fire == tuple(T + timedelta(minutes=77, seconds=10 * k) for k in range(1, 7))
    assert result.missed == 469 - 6


def test_catchup_all_is_bounded_by_max_catchup_too() -> None:
    s = every(1, catchup="all", catchup_window=timedelta(days=1))
    result = catch_up(s, T, T + timedelta(hours=1))
    assert len(result.fire) == MAX_CATCHUP
    assert result.fire[-1] == T + timedelta(hours=1)
    assert result.missed == 3601 - MAX_CATCHUP


def test_catchup_skip_runs_nothing_after_a_gap_but_runs_an_on_time_tick() -> None:
    s = every(10, catchup="skip")
    assert catch_up(s, T, T + timedelta(minutes=78)) == CatchUp((), 469, T, T + timedelta(minutes=78))
    assert catch_up(s, T, T + timedelta(seconds=3)).fire == (T,)


def test_nothing_is_due_before_the_planned_time() -> None:
    assert catch_up(every(10), T, T - timedelta(microseconds=1)) == CatchUp()


def test_fire_times_older_than_the_window_are_lost_under_every_policy() -> None:
    for policy in ("skip", "one", "all"):
        s = every(3600, catchup=policy, catchup_window=timedelta(minutes=30))
        assert catch_up(s, T, T + timedelta(minutes=45)).fire == (), policy


# -- overlap matrix: each policy x (a run still open or not) --------------------------------------------------

F = T + timedelta(minutes=1)
B = T + timedelta(seconds=30)

MATRIX: list[tuple[str, tuple[str, ...], tuple[datetime, ...], OverlapPlan]] = [
    # nothing open: every policy starts
    *[(p, (), (), OverlapPlan(True, ())) for p in
      ("skip", "buffer_one", "buffer_all", "allow_all", "cancel_other", "terminate_other")],
    # a run still open
    ("skip", ("r1",), (), OverlapPlan(False, (), dropped=True)),
    ("buffer_one", ("r1",), (), OverlapPlan(False, (F,))),
    ("buffer_one", ("r1",), (B,), OverlapPlan(False, (B,), dropped=True)),
    ("buffer_all", ("r1",), (B,), OverlapPlan(False, (B, F))),
    ("allow_all", ("r1",), (), OverlapPlan(True, ())),
    ("cancel_other", ("r1",), (B,), OverlapPlan(False, (F,), cancel=("r1",))),
    ("terminate_other", ("r1",), (), OverlapPlan(False, (F,), terminate=("r1",))),
]  # fmt: skip


@pytest.mark.parametrize(("policy", "open_runs", "buffered", "expected"), MATRIX)
def test_the_overlap_matrix(
    policy: str, open_runs: tuple[str, ...], buffered: tuple[datetime, ...], expected: OverlapPlan
) -> None:
    assert plan_overlap(policy, open_runs, buffered, F) == expected


def test_an_unknown_overlap_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown overlap policy"):
        plan_overlap("queue", (), (), F)


# -- jitter ----------------------------------------------------------------------------------------------------


def test_jitter_is_seeded_by_name_and_fire_time() -> None:
    s = every(60, jitter=timedelta(seconds=30))
    draws = [jitter_for(s, T + timedelta(minutes=k)) for k in range(50)]
    assert draws == [jitter_for(s, T + timedelta(minutes=k)) for k in range(50)]  # the same every time
    assert all(timedelta(0) <= d < timedelta(seconds=30) for d in draws)
    assert len(set(draws)) > 40  # and actually spread
    other = Schedule("other", action, every=timedelta(seconds=60), jitter=timedelta(seconds=30))
    assert [jitter_for(other, T + timedelta(minutes=k)) for k in range(50)] != draws
    assert jitter_for(every(60), T) == timedelta(0)


# -- declaration -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "exactly one of cron= and every="),
        ({"cron": "* * * * *", "every": timedelta(seconds=1)}, "exactly one"),
        ({"cron": "61 * * * *"}, "bad cron expression"),
        ({"cron": "* * * * *", "tz": "Mars/Olympus"}, "unknown time zone"),
        ({"every": timedelta(0)}, "every must be a positive"),
        ({"every": timedelta(seconds=1), "overlap": "queue"}, "overlap must be one of"),
        ({"every": timedelta(seconds=1), "catchup": "some"}, "catchup must be one of"),
        ({"every": timedelta(seconds=1), "jitter": timedelta(seconds=-1)}, "jitter must be a non-negative"),
    ],
)
def test_a_bad_declaration_is_refused_naming_the_schedule(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as info:
        Schedule("nightly", action, **kwargs)
    assert "'nightly'" in str(info.value)


def test_the_fingerprint_changes_with_the_timing_not_the_action() -> None:
    a = Schedule("n", action, cron="0 3 * * *")
    assert a.fingerprint() == Schedule("n", lambda run: None, cron="0 3 * * *").fingerprint()
    assert a.fingerprint() != Schedule("n", action, cron="0 4 * * *").fingerprint()
    assert a.fingerprint() != Schedule("n", action, cron="0 3 * * *", overlap="allow_all").fingerprint()


# -- invariants (hypothesis) -----------------------------------------------------------------------------------

EXPRESSIONS = ["30 2 * * *", "*/30 * * * *", "0 * * * *", "15 1,2,3 * * *", "0 9 * * 1-5", "*/7 2 25 10 *"]
YEAR_2026 = st.datetimes(
    min_value=datetime(2026, 1, 1),  # naive: hypothesis places them in Paris
    max_value=datetime(2026, 12, 31),
    timezones=st.just(PARIS),
)


@settings(max_examples=150, deadline=None)
@given(expr=st.sampled_from(EXPRESSIONS), after=YEAR_2026)
def test_cron_fire_times_rise_strictly_exist_and_resume_identically(expr: str, after: datetime) -> None:
    s = cron(expr)
    times = list(islice(fire_times(s, after), 6))
    assert times[0] > after
    assert all(a < b for a, b in pairwise(times))
    for t in times:  # every fire time is a real wall time of the zone, at its first occurrence
        wall = t.astimezone(PARIS).replace(tzinfo=None)
        assert wall.replace(tzinfo=PARIS, fold=0).astimezone(UTC) == t
    # Resuming from any fire time gives the rest of the same sequence (what the schedule does each tick).
    assert list(islice(fire_times(s, times[2]), 3)) == times[3:6]


@settings(max_examples=150, deadline=None)
@given(
    period=st.integers(1, 7200),
    gap=st.integers(0, 3 * 86400),
    window=st.integers(0, 86400),
    policy=st.sampled_from(["skip", "one", "all"]),
)
def test_catch_up_starts_only_due_times_inside_the_window(period: int, gap: int, window: int, policy: str) -> None:
    s = every(period, catchup=policy, catchup_window=timedelta(seconds=window), anchor=T)
    now = T + timedelta(seconds=gap)
    result = catch_up(s, T, now)
    due = gap // period + 1
    assert len(result.fire) + result.missed == due
    assert all(T <= t <= now and now - t <= timedelta(seconds=window) for t in result.fire)
    assert list(result.fire) == sorted(set(result.fire))
    if policy == "one":
        assert len(result.fire) <= 1
    if policy == "skip" and due > 1:
        assert result.fire == ()
