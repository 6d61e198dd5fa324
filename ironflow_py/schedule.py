"""Schedules, pure: the declaration, fire times in a zone, catch-up, overlap and seeded jitter.

A `Schedule` says when to start a run (`cron=` in the zone `tz`, or `every=`) and what to start (`action`,
an input factory). Everything that decides *which* fire times run is here, as pure functions of the
declaration, the schedule's state and the time passed in: the built-in schedule workflow
(`ironflow_py.schedule_workflow`) calls them from `decide`, and tests call them directly.

Rules (design/schedules.md):
- **Fire times.** `cron` is a 5-field (minute precision) or 6-field (seconds first) expression, read by
  cronsim with Debian cron's day-of-month/day-of-week rule, evaluated on the wall clock of `tz`. A wall
  time that does not exist (the spring-forward gap) is skipped; a wall time that occurs twice (the autumn
  repeated hour) fires once, at its first occurrence. `every` fires at the multiples of the interval after
  `anchor` (absolute time: no daylight-saving effect).
- **Catch-up.** When a tick arrives, the fire times due since the planned one are found; those older than
  `catchup_window` are lost under every policy. `skip` runs the due time only when it is the only one (a
  gap in which several passed runs none of them), `one` runs the newest, `all` runs each (oldest first, at
  most `MAX_CATCHUP`).
- **Overlap.** What a due fire does while a run started by the schedule is still open: `skip` drops it,
  `buffer_one` keeps one to start when the open run closes (later ones are dropped), `buffer_all` keeps
  them all, `allow_all` starts it anyway, `cancel_other` asks the open runs to cancel and starts it once
  they closed, `terminate_other` terminates them and starts it once they closed.
- **Jitter.** The tick of a fire time is delayed by a draw in `[0, jitter)` from a generator seeded with the
  schedule's name and the fire time (a keyed hash, so the same fire time always draws the same delay);
  the draw is recorded in the schedule's event.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs

from ironflow_py.errors import ConfigurationError
from ironflow_py.values import key_problem

Overlap = Literal["skip", "buffer_one", "buffer_all", "allow_all", "cancel_other", "terminate_other"]
OVERLAP_POLICIES: tuple[str, ...] = ("skip", "buffer_one", "buffer_all", "allow_all", "cancel_other", "terminate_other")
Catchup = Literal["skip", "one", "all"]
CATCHUP_POLICIES: tuple[str, ...] = ("skip", "one", "all")
#: The most fire times one tick (or one backfill) starts; older ones beyond it are counted as missed.
MAX_CATCHUP = 1_000
#: `every` schedules count their multiples from here unless the declaration gives an `anchor`.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@attrs.frozen
class ScheduledRun:
    """One run a schedule starts, as its `action` receives it.

    Attributes:
        schedule: The schedule's name.
        fire_time: The nominal fire time (UTC; without jitter). For a trigger, the time of the request.
        run_id: The instance id the run is started with: ``<name>@<fire time, UTC ISO 8601>`` for a
            scheduled or backfilled fire time, ``<name>@trigger/<request id>`` for a trigger. The same fire
            time always gives the same id, so a run is never started twice.
        reason: ``"schedule"``, ``"catchup"``, ``"buffer"``, ``"trigger"`` or ``"backfill"``.
    """

    schedule: str
    fire_time: datetime
    run_id: str
    reason: str


def run_id_for(name: str, fire_time: datetime) -> str:
    """The instance id of the run of schedule `name` at `fire_time`: ``name@2026-12-04T09:00:00Z``.

    Args:
        name: The schedule's name.
        fire_time: The nominal fire time, timezone-aware.

    Returns:
        The id, in UTC with second precision (microseconds when the time has them).
    """
    utc = fire_time.astimezone(UTC)
    spec = "seconds" if utc.microsecond == 0 else "microseconds"
    return f"{name}@{utc.replace(tzinfo=None).isoformat(timespec=spec)}Z"


def _positive(name: str, value: timedelta | None, what: str, *, zero: bool = False) -> None:
    if value is None:
        return
    if not isinstance(value, timedelta) or value < timedelta(0) or (value == timedelta(0) and not zero):
        raise ConfigurationError(
            f"schedule {name!r}: {what} must be a {'non-negative' if zero else 'positive'} timedelta"
        )


@attrs.frozen
class Schedule:
    """A declared schedule: when to start a run, what to start, and what to do about overlaps and gaps.

    Declare it on the `App` (`App(schedules=[...])`); the worker reconciles it when it starts, and its
    built-in workflow instance (type ``ironflow.schedule``, id `name`) starts each run as a child with the
    id `run_id_for(name, fire_time)` (design/schedules.md).

    Attributes:
        name: The schedule's name and its instance id (at most 200 bytes of UTF-8, no NUL).
        action: The input factory: given the `ScheduledRun`, returns the input the run starts with (an
            input of a registered workflow). Called inside the schedule's `decide`, so it must be pure.
        cron: A cron expression (5 fields, or 6 with seconds first), read on the wall clock of `tz`.
        every: A fixed interval instead of `cron`.
        tz: The IANA zone `cron` is read in (default UTC), e.g. ``"Europe/Paris"``.
        anchor: Where `every` counts from (default 1970-01-01T00:00Z), timezone-aware.
        overlap: What a fire does while a run is still open (see the module docstring).
        catchup: What a tick does about fire times that passed while nothing ran: ``"skip"``, ``"one"``
            or ``"all"``.
        catchup_window: Fire times older than this when the tick runs are lost under every policy.
        jitter: Each tick is delayed by a seeded draw in ``[0, jitter)``; keep it below the interval.
        pause_on_failure: Pause the schedule when a run ends failed or timed out.

    Raises:
        ConfigurationError: Not exactly one of `cron` and `every`, an expression cronsim refuses, an unknown
            zone, an unknown policy, a negative duration, a name that cannot be an instance id, or the
            `schedules` extra (cronsim) is not installed for a `cron` schedule.
    """

    name: str
    action: Callable[[ScheduledRun], Any] = attrs.field(eq=False)
    cron: str | None = None
    every: timedelta | None = None
    tz: str = "UTC"
    anchor: datetime = EPOCH
    overlap: Overlap = "skip"
    catchup: Catchup = "one"
    catchup_window: timedelta = timedelta(days=1)
    jitter: timedelta = timedelta(0)
    pause_on_failure: bool = False

    def __attrs_post_init__(self) -> None:
        problem = key_problem(self.name, limit=200)
        if problem is not None:
            raise ConfigurationError(f"schedule name cannot be an instance id: {problem}")
        if (self.cron is None) == (self.every is None):
            raise ConfigurationError(f"schedule {self.name!r}: give exactly one of cron= and every=")
        _positive(self.name, self.every, "every")
        _positive(self.name, self.catchup_window, "catchup_window", zero=True)
        _positive(self.name, self.jitter, "jitter", zero=True)
        if self.overlap not in OVERLAP_POLICIES:
            raise ConfigurationError(f"schedule {self.name!r}: overlap must be one of {OVERLAP_POLICIES}")
        if self.catchup not in CATCHUP_POLICIES:
            raise ConfigurationError(f"schedule {self.name!r}: catchup must be one of {CATCHUP_POLICIES}")
        if self.anchor.utcoffset() is None:
            raise ConfigurationError(f"schedule {self.name!r}: anchor must be timezone-aware")
        try:
            ZoneInfo(self.tz)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ConfigurationError(f"schedule {self.name!r}: unknown time zone {self.tz!r}") from exc
        if self.cron is not None:
            cronsim = _cronsim(self.name)
            try:
                cronsim.CronSim(self.cron, datetime(2000, 1, 1))  # cron reads naive wall time
            except cronsim.CronSimError as exc:
                raise ConfigurationError(f"schedule {self.name!r}: bad cron expression {self.cron!r}: {exc}") from exc

    @property
    def zone(self) -> ZoneInfo:
        """The zone `cron` is read in."""
        return ZoneInfo(self.tz)

    def fingerprint(self) -> str:
        """A short digest of everything that decides fire times and policies (not `action`).

        The schedule's instance records it; the worker's reconcile compares it to tell a changed
        declaration from an unchanged one.

        Returns:
            16 hex digits.
        """
        parts = (
            self.cron,
            self.every.total_seconds() if self.every is not None else None,
            self.tz,
            self.anchor.astimezone(UTC).isoformat(),
            self.overlap,
            self.catchup,
            self.catchup_window.total_seconds(),
            self.jitter.total_seconds(),
            self.pause_on_failure,
        )
        return hashlib.blake2b(repr(parts).encode(), digest_size=8).hexdigest()


def _cronsim(name: str) -> Any:
    try:
        import cronsim  # the optional `schedules` extra, only for cron
    except ImportError as exc:  # pragma: no cover - the dev install has it
        raise ConfigurationError(
            f"schedule {name!r}: cron schedules need the `schedules` extra (pip install 'ironflow_py[schedules]')"
        ) from exc
    return cronsim


# -- fire times --------------------------------------------------------------------------------------------


def fire_times(schedule: Schedule, after: datetime) -> Iterator[datetime]:
    """The schedule's fire times strictly after `after`, earliest first.

    Endless, unless cron finds nothing for 50 years.

    Args:
        schedule: The declaration.
        after: A timezone-aware time.

    Returns:
        An iterator of times in UTC.
    """
    if schedule.every is not None:
        return _every(schedule.every, schedule.anchor, after)
    assert schedule.cron is not None
    return _cron(schedule.name, schedule.cron, schedule.zone, after)


def _every(every: timedelta, anchor: datetime, after: datetime) -> Iterator[datetime]:
    # The first multiple strictly after `after`, in exact integer microseconds (no float rounding).
    step = every // timedelta(microseconds=1)
    since = (after - anchor) // timedelta(microseconds=1)
    n = since // step + 1
    while True:
        yield (anchor + timedelta(microseconds=n * step)).astimezone(UTC)
        n += 1


def _cron(name: str, expr: str, zone: ZoneInfo, after: datetime) -> Iterator[datetime]:
    # cronsim walks naive wall-clock time (no zone, so none of its own daylight-saving fix-ups); each wall
    # time is then placed in the zone: one that does not exist is skipped, one that exists twice is taken
    # at its first occurrence only (fold=0), and anything not after `after` in absolute time is dropped,
    # which is what makes the second pass through a repeated hour fire nothing.
    # Compared in UTC: Python compares two times of one ZoneInfo by wall clock, ignoring `fold`.
    cronsim = _cronsim(name)
    limit = after.astimezone(UTC)
    wall = after.astimezone(zone).replace(tzinfo=None)
    for naive in cronsim.CronSim(expr, wall):
        at = naive.replace(tzinfo=zone, fold=0).astimezone(UTC)
        if at.astimezone(zone).replace(tzinfo=None) != naive:
            continue  # in the spring-forward gap: this wall time does not exist
        if at <= limit:
            continue
        yield at


def next_fire_time(schedule: Schedule, after: datetime) -> datetime | None:
    """The first fire time strictly after `after`, or None if cron finds none within 50 years.

    Args:
        schedule: The declaration.
        after: A timezone-aware time.

    Returns:
        A time in UTC, or None.
    """
    return next(fire_times(schedule, after), None)


# -- jitter ------------------------------------------------------------------------------------------------


def jitter_for(schedule: Schedule, fire_time: datetime) -> timedelta:
    """The seeded draw in `[0, jitter)` that delays the tick of `fire_time`.

    The generator is a keyed hash (BLAKE2b of the schedule's name and the fire time in UTC), so the draw is
    the same wherever and however often it is made; the schedule records it in its event.

    Args:
        schedule: The declaration.
        fire_time: The nominal fire time.

    Returns:
        The delay, in whole microseconds.
    """
    span = schedule.jitter // timedelta(microseconds=1)
    if span <= 0:
        return timedelta(0)
    seed = f"{schedule.name}\x1f{fire_time.astimezone(UTC).isoformat()}".encode(errors="surrogatepass")
    draw = int.from_bytes(hashlib.blake2b(seed, digest_size=8).digest(), "big")
    return timedelta(microseconds=draw * span >> 64)


# -- catch-up ----------------------------------------------------------------------------------------------


@attrs.frozen
class CatchUp:
    """What a tick runs: the fire times to start (oldest first) and the ones it lets go.

    Attributes:
        fire: The fire times to start now.
        missed: How many due fire times are not started (too old for the window, or the policy).
        first_missed: The earliest of those (None when none).
        last_missed: The latest of those (None when none).
    """

    fire: tuple[datetime, ...] = ()
    missed: int = 0
    first_missed: datetime | None = None
    last_missed: datetime | None = None


def catch_up(schedule: Schedule, planned: datetime, now: datetime) -> CatchUp:
    """Which fire times a tick starts: the planned one and any that came due since, per `catchup`.

    Args:
        schedule: The declaration.
        planned: The fire time the tick was planned for (a fire time of the schedule).
        now: The tick's time, less the tick's jitter (so jitter never makes a fire time look missed).

    Returns:
        The fire times to start and a count of the ones let go.
    """
    if now < planned:
        return CatchUp()
    horizon = now - schedule.catchup_window
    below, first_below, last_below = 0, None, None
    start = planned
    if schedule.every is not None and planned < horizon:
        # Arithmetic: jump over the fire times below the window instead of walking a long gap.
        below = -((planned - horizon) // schedule.every)
        first_below, last_below = planned, planned + (below - 1) * schedule.every
        start = planned + below * schedule.every
    recent: list[datetime] = []
    capped, first_capped, last_capped = 0, None, None
    for at in _with_first(start, fire_times(schedule, start)):
        if at > now:
            break
        if at < horizon:
            below += 1
            first_below = first_below or at
            last_below = at
            continue
        recent.append(at)
        if len(recent) > MAX_CATCHUP:
            dropped = recent.pop(0)
            capped += 1
            first_capped = first_capped or dropped
            last_capped = dropped
    due = below + capped + len(recent)
    if schedule.catchup == "all":
        fire = tuple(recent)
    elif schedule.catchup == "one":
        fire = tuple(recent[-1:])
    else:
        fire = tuple(recent) if due == 1 else ()
    left = [t for t in recent if t not in fire]
    missed = due - len(fire)
    if missed == 0:
        return CatchUp(fire)
    first_missed = first_below or first_capped or left[0]
    last_missed = left[-1] if left else (last_capped or last_below)
    return CatchUp(fire, missed, first_missed, last_missed)


def _with_first(first: datetime, rest: Iterator[datetime]) -> Iterator[datetime]:
    yield first
    yield from rest


# -- overlap -----------------------------------------------------------------------------------------------


@attrs.frozen
class OverlapPlan:
    """What one due fire does, given the runs still open.

    Attributes:
        start: Start it now.
        buffered: The fire times waiting for the open runs to close, after this fire.
        dropped: It is neither started nor kept.
        cancel: Run ids to ask to cancel (`cancel_other`).
        terminate: Run ids to terminate (`terminate_other`).
    """

    start: bool
    buffered: tuple[datetime, ...]
    dropped: bool = False
    cancel: tuple[str, ...] = ()
    terminate: tuple[str, ...] = ()


def plan_overlap(
    policy: str, open_runs: tuple[str, ...], buffered: tuple[datetime, ...], fire: datetime
) -> OverlapPlan:
    """Apply an overlap policy to one due fire.

    Args:
        policy: One of `OVERLAP_POLICIES`.
        open_runs: The ids of the runs started by the schedule and not yet closed.
        buffered: The fire times already waiting.
        fire: The fire time that is due.

    Returns:
        The plan. With no open run every policy starts the fire (a non-empty buffer is started first by the
        caller, so one never overtakes the other).

    Raises:
        ValueError: `policy` is not one of `OVERLAP_POLICIES`.
    """
    if policy not in OVERLAP_POLICIES:
        raise ValueError(f"unknown overlap policy {policy!r}")
    if not open_runs or policy == "allow_all":
        return OverlapPlan(True, buffered)
    if policy == "skip":
        return OverlapPlan(False, buffered, dropped=True)
    if policy == "buffer_one":
        if buffered:
            return OverlapPlan(False, buffered, dropped=True)
        return OverlapPlan(False, (fire,))
    if policy == "buffer_all":
        return OverlapPlan(False, (*buffered, fire))
    # cancel_other / terminate_other: the newest fire replaces any waiting one and starts when the open
    # runs have closed (never two runs at once).
    if policy == "cancel_other":
        return OverlapPlan(False, (fire,), dropped=False, cancel=open_runs)
    return OverlapPlan(False, (fire,), dropped=False, terminate=open_runs)
