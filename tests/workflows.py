"""Small workflows the tests drive: a counter (one event and one effect per input) and a gate."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs

from ironflow_py import Decision, Workflow


@attrs.frozen
class Add:
    counter_id: str
    amount: int = 1
    key: str | None = None
    effect_note: Any = None  # anything: lets a test hand `decide` an effect that cannot be serialized


@attrs.frozen
class Finish:
    counter_id: str


@attrs.frozen
class Boom:
    counter_id: str


@attrs.frozen
class Tick:
    counter_id: str


@attrs.frozen
class Schedule:
    counter_id: str
    key: str
    at: datetime
    cancel: tuple[str, ...] = ()


@attrs.frozen
class Added:
    amount: int
    total: int


@attrs.frozen
class Finished:
    total: int


@attrs.frozen
class Ticked:
    pass


@attrs.frozen
class Notify:
    counter_id: str
    total: int
    note: Any = None


@attrs.frozen
class CounterState:
    total: int = 0
    finished: bool = False
    adds: int = 0


@attrs.frozen
class TooLarge:
    limit: int
    asked: int


CounterInput = Add | Finish | Boom | Tick | Schedule
CounterEvent = Added | Finished | Ticked


class Counter(Workflow[CounterState, CounterInput, CounterEvent, Notify]):
    type = "counter"
    inputs = {
        "counter.add/1": Add,
        "counter.finish/1": Finish,
        "counter.boom/1": Boom,
        "counter.tick/1": Tick,
        "counter.schedule/1": Schedule,
    }
    events = {"counter.added/1": Added, "counter.finished/1": Finished, "counter.ticked/1": Ticked}
    effects = {"counter.notify/1": Notify}
    limit = 1_000_000

    def initial_state(self) -> CounterState:
        return CounterState()

    def workflow_id(self, input: CounterInput) -> str:
        return input.counter_id

    def input_key(self, input: CounterInput) -> str | None:
        return input.key if isinstance(input, Add) else None

    def is_terminal(self, state: CounterState) -> bool:
        return state.finished

    def evolve(self, state: CounterState, event: CounterEvent) -> CounterState:
        if isinstance(event, Added):
            return CounterState(event.total, state.finished, state.adds + 1)
        if isinstance(event, Finished):
            return attrs.evolve(state, finished=True)
        return state

    def decide(self, now: datetime, state: CounterState, input: CounterInput) -> Decision[CounterEvent, Notify]:
        if isinstance(input, Add):
            total = state.total + input.amount
            if total > self.limit:
                return Decision.reject(TooLarge(self.limit, total))
            return Decision.accept(Added(input.amount, total)).with_effect(
                Notify(input.counter_id, total, input.effect_note)
            )
        if isinstance(input, Finish):
            return Decision.accept(Finished(state.total))
        if isinstance(input, Tick):
            return Decision.accept(Ticked())
        if isinstance(input, Schedule):
            return Decision.accept().cancel_timer(*input.cancel).with_timer(input.key, input.at, Tick(input.counter_id))
        raise RuntimeError(f"decide refuses {input!r}")
