"""A workflow with effects and timers, and its handlers, for the runtime tests (in process and as workers).

`Start(job, count, mode)` emits `count` `Work` effects; what the handler does is chosen by `mode`. Handlers
leave a trace in a folder (IRONFLOW_TEST_DIR for worker processes) so a test can see who ran what.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import attrs
import pytest

from ironflow_py import (
    App,
    Decision,
    EffectContext,
    EffectRegistry,
    Permanent,
    Retryable,
    RetryPolicy,
    Workflow,
)
from ironflow_py.effects import _runtime
from ironflow_py.effects._wakeup import Listener


@attrs.frozen
class Start:
    job_id: str
    count: int
    mode: str
    async_: bool = False


@attrs.frozen
class WorkDone:
    job_id: str
    index: int


@attrs.frozen
class WorkAbandoned:
    job_id: str
    index: int
    error: str


@attrs.frozen
class Remind:
    job_id: str
    key: str
    at: datetime


@attrs.frozen
class CancelRemind:
    job_id: str
    key: str


@attrs.frozen
class Fire:
    job_id: str
    key: str


@attrs.frozen
class Started:
    count: int


@attrs.frozen
class Recorded:
    index: int


@attrs.frozen
class Abandoned:
    index: int
    error: str


@attrs.frozen
class Scheduled:
    key: str


@attrs.frozen
class Fired:
    key: str


@attrs.frozen
class Work:
    job_id: str
    index: int
    mode: str


@attrs.frozen
class AsyncWork:
    job_id: str
    index: int


@attrs.frozen
class JobState:
    recorded: tuple[int, ...] = ()
    abandoned: tuple[Abandoned, ...] = ()
    fired: tuple[str, ...] = ()


JobInput = Start | WorkDone | WorkAbandoned | Remind | CancelRemind | Fire
JobEvent = Started | Recorded | Abandoned | Scheduled | Fired


class Job(Workflow[JobState, JobInput, JobEvent, Work | AsyncWork]):
    type = "job"
    inputs = {
        "job.start/1": Start,
        "job.work_done/1": WorkDone,
        "job.work_abandoned/1": WorkAbandoned,
        "job.remind/1": Remind,
        "job.cancel_remind/1": CancelRemind,
        "job.fire/1": Fire,
    }
    events = {
        "job.started/1": Started,
        "job.recorded/1": Recorded,
        "job.abandoned/1": Abandoned,
        "job.scheduled/1": Scheduled,
        "job.fired/1": Fired,
    }
    effects = {"job.work/1": Work, "job.async_work/1": AsyncWork}

    def initial_state(self) -> JobState:
        return JobState()

    def workflow_id(self, input: JobInput) -> str:
        return input.job_id

    def evolve(self, state: JobState, event: JobEvent) -> JobState:
        if isinstance(event, Recorded):
            return attrs.evolve(state, recorded=(*state.recorded, event.index))
        if isinstance(event, Abandoned):
            return attrs.evolve(state, abandoned=(*state.abandoned, event))
        if isinstance(event, Fired):
            return attrs.evolve(state, fired=(*state.fired, event.key))
        return state

    def decide(self, now: datetime, state: JobState, input: JobInput) -> Decision[JobEvent, Work | AsyncWork]:
        if isinstance(input, Start):
            effects: list[Work | AsyncWork] = [
                AsyncWork(input.job_id, i) if input.async_ else Work(input.job_id, i, input.mode)
                for i in range(input.count)
            ]
            return Decision.accept(Started(input.count), effects=effects)
        if isinstance(input, WorkDone):
            return Decision.accept(Recorded(input.index))
        if isinstance(input, WorkAbandoned):
            return Decision.accept(Abandoned(input.index, input.error))
        if isinstance(input, Remind):
            return Decision.accept(Scheduled(input.key)).with_timer(input.key, input.at, Fire(input.job_id, input.key))
        if isinstance(input, CancelRemind):
            return Decision.accept().cancel_timer(input.key)
        return Decision.accept(Fired(input.key))

    def dead_letter_input(self, effect: Work | AsyncWork, error: str) -> JobInput | None:
        return WorkAbandoned(effect.job_id, effect.index, error)


@attrs.frozen
class Count:
    tally_id: str
    index: int


@attrs.frozen
class Counted:
    index: int


class Tally(Workflow[tuple[int, ...], Count, Counted, object]):
    """Receives inputs returned by handlers of another workflow's effects."""

    type = "tally"
    inputs = {"tally.count/1": Count}
    events = {"tally.counted/1": Counted}

    def initial_state(self) -> tuple[int, ...]:
        return ()

    def workflow_id(self, input: Count) -> str:
        return input.tally_id

    def evolve(self, state: tuple[int, ...], event: Counted) -> tuple[int, ...]:
        return (*state, event.index)

    def decide(self, now: datetime, state: tuple[int, ...], input: Count) -> Decision[Counted, object]:
        return Decision.accept(Counted(input.index))


FAST_FAIL = RetryPolicy(max_attempts=3, base_delay=10.0, factor=3.0, max_delay=60.0)


def _trace(folder: Path, name: str, ctx: EffectContext) -> None:
    line = f"{os.getpid()} {ctx.effect_id} {ctx.attempt} {ctx.idempotency_key}\n"
    with (folder / name).open("a") as f:
        f.write(line)


def _wait_for(path: Path) -> None:
    while not path.exists():
        time.sleep(0.01)  # stands in for a slow call; the test decides when it ends


def make_registry(folder: Path, *, policy: RetryPolicy = FAST_FAIL) -> EffectRegistry:
    registry = EffectRegistry(default_policy=policy)

    @registry.handler(Work)
    def work(effect: Work, ctx: EffectContext) -> object:
        mode = effect.mode
        if mode == "noop":
            return None
        if mode == "reply":
            return WorkDone(effect.job_id, effect.index)
        if mode == "other":
            return Count(f"tally-{effect.job_id}", effect.index)
        if mode == "fail":
            _trace(folder, "failed.log", ctx)
            raise Retryable("downstream unavailable")
        if mode == "permanent":
            raise Permanent("card declined")
        if mode == "record":
            _trace(folder, f"handled-{os.getpid()}.log", ctx)
            return None
        if mode == "block":
            _trace(folder, "started.log", ctx)
            _wait_for(folder / "go")
            _trace(folder, "finished.log", ctx)
            return None
        if mode == "block_first":
            _trace(folder, "started.log", ctx)
            if ctx.attempt == 1:
                _wait_for(folder / "never")
            return None
        if mode == "exit":  # the attempt takes its process down, as the OOM killer or a segfault would
            _trace(folder, "started.log", ctx)
            os._exit(3)
        if mode == "hang":  # runs until the test SIGKILLs the process
            _trace(folder, "started.log", ctx)
            _wait_for(folder / "never")
        if mode == "nul_reply":  # returns an input PostgreSQL would refuse (NUL in a string)
            _trace(folder, "started.log", ctx)
            return WorkAbandoned(effect.job_id, effect.index, "bad\x00value")
        if mode == "reply_traced":
            _trace(folder, "returned.log", ctx)
            return WorkDone(effect.job_id, effect.index)
        raise AssertionError(f"unknown mode {mode}")

    @registry.handler(AsyncWork)
    async def async_work(effect: AsyncWork, ctx: EffectContext) -> object:
        return WorkDone(effect.job_id, effect.index)

    return registry


class CountingListener(Listener):
    """The runtime's listener, counting its wake-ups: one on connecting, then one per notification."""

    def __init__(self, conninfo: str, channel: str, wake: Callable[[], None], log: Any) -> None:
        self.wakes = 0

        def counted() -> None:
            self.wakes += 1
            wake()

        super().__init__(conninfo, channel, counted, log)


def counting_listeners(monkeypatch: pytest.MonkeyPatch) -> list[CountingListener]:
    """Make every EffectRuntime started from now on use a CountingListener; returns them as they start."""
    started: list[CountingListener] = []

    def make(*args: Any) -> CountingListener:
        listener = CountingListener(*args)
        started.append(listener)
        return listener

    monkeypatch.setattr(_runtime, "Listener", make)
    return started


def app() -> App:
    """The App a worker process loads with `--app tests.effect_app:app`."""
    folder = Path(os.environ.get("IRONFLOW_TEST_DIR", "."))
    return App(workflows=[Job, Tally], effects=make_registry(folder))
