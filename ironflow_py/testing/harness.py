"""Given/when/then for one pure workflow: no store, no clock, no I/O; failures print a readable diff.

    spec = WorkflowSpec(OrderWorkflow)
    spec.given(OrderPlaced(...)).when(ApproveOrder("o1", "grace"), now=T0).then(
        events=[OrderApproved("grace")], effects=[ChargeCustomer("o1", "ada", 8600)]
    )

`when` runs exactly what the engine runs between load and write (fold, terminal check, decide, fold of
the new events) and sends every emitted value through the workflow's codec, so a value the database
would refuse fails here too.
"""

from __future__ import annotations

import difflib
import pprint
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import attrs

from ironflow_py.codec import WorkflowCodec, loads, make_converter
from ironflow_py.decision import Decision, Timer
from ironflow_py.workflow import AnyWorkflow

DEFAULT_NOW = datetime(2026, 1, 1, tzinfo=UTC)
_UNSET: Any = object()


def _diff(what: str, expected: object, actual: object) -> AssertionError:
    exp = pprint.pformat(expected, width=100).splitlines()
    act = pprint.pformat(actual, width=100).splitlines()
    body = "\n".join(difflib.unified_diff(exp, act, "expected", "actual", lineterm=""))
    return AssertionError(f"{what} differ:\n{body}")


class WorkflowSpec:
    """Entry point: wraps a workflow (class or instance) and its codec for given/when/then tests."""

    def __init__(self, workflow: AnyWorkflow | type[AnyWorkflow], *, converter: Any = None) -> None:
        self.workflow: AnyWorkflow = workflow() if isinstance(workflow, type) else workflow
        wf = self.workflow
        self.codec = WorkflowCodec(
            wf.type,
            inputs=wf.inputs,
            events=wf.events,
            effects=wf.effects,
            converter=converter or make_converter(),
        )

    def given(self, *events: object) -> Given:
        """History of the instance before the input under test (may be empty)."""
        return Given(self, tuple(events))

    def round_trip(self, kind: str, value: object) -> object:
        """Encode and decode `value` as the engine would; a mismatch means the stored form loses data."""
        c = self.codec
        if kind == "event":
            name, text = c.encode_event(value, "spec")
            back = c.decode_event(name, loads(text), "spec", 0)
        elif kind == "effect":
            name, text = c.encode_effect(value, "spec")
            back = c.decode_effect(name, loads(text), "spec")
        else:
            name, text = c.encode_input(value, "spec")
            back = c.decode_input(name, loads(text), "spec")
        if back != value:
            raise _diff(f"{kind} {name!r} does not survive its stored form: values", value, back)
        return back


@attrs.frozen
class Given:
    spec: WorkflowSpec
    history: tuple[object, ...]

    def state(self) -> Any:
        wf = self.spec.workflow
        return wf.fold(wf.initial_state(), self.history)

    def when(self, input: object, *, now: datetime = DEFAULT_NOW) -> Expectation:
        """Run `input` against the state the history builds; returns what happened, for `then_*`."""
        wf = self.spec.workflow
        for event in self.history:
            self.spec.round_trip("event", event)
        self.spec.round_trip("input", input)
        state = self.state()
        if wf.is_terminal(state):
            return Expectation(self.spec, state, state, None, already_completed=True)
        decision = wf.decide(now, state, input)
        if not isinstance(decision, Decision):
            raise AssertionError(f"decide returned {decision!r}, not a Decision")
        for event in decision.events:
            self.spec.round_trip("event", event)
        for effect in decision.effects:
            self.spec.round_trip("effect", effect)
        for timer in decision.timers:
            self.spec.round_trip("input", timer.input)
        new_state = state if decision.rejected else wf.fold(state, decision.events)
        return Expectation(self.spec, state, new_state, decision)


@attrs.frozen
class Expectation:
    """The result of `when`: assert on it with `then`, `then_rejected`, `then_nothing`, `then_state`."""

    spec: WorkflowSpec
    state_before: Any
    state: Any
    decision: Decision[Any, Any] | None
    already_completed: bool = False

    @property
    def workflow_type(self) -> str:
        return self.spec.workflow.type

    def _accepted(self) -> Decision[Any, Any]:
        if self.already_completed:
            raise AssertionError(
                f"workflow {self.workflow_type!r} is already terminal in state {self.state!r}; decide was not called"
            )
        assert self.decision is not None
        if self.decision.rejected:
            raise AssertionError(f"expected the input to be accepted, it was rejected: {self.decision.rejection!r}")
        return self.decision

    def then(
        self,
        *,
        events: Sequence[object] = _UNSET,
        effects: Sequence[object] = _UNSET,
        timers: Sequence[Timer[Any]] = _UNSET,
        cancelled_timers: Iterable[str] = _UNSET,
        state: object = _UNSET,
    ) -> Expectation:
        """Accepted, with exactly these events / effects / timers / cancellations (each only if given)."""
        decision = self._accepted()
        checks: list[tuple[str, object, object]] = [
            ("events", events, decision.events),
            ("effects", effects, decision.effects),
            ("timers", timers, decision.timers),
            ("cancelled timers", cancelled_timers, decision.cancel_timers),
        ]
        for what, expected, actual in checks:
            if expected is not _UNSET and list(expected) != list(actual):  # type: ignore[call-overload]
                raise _diff(what, list(expected), list(actual))  # type: ignore[call-overload]
        if state is not _UNSET and state != self.state:
            raise _diff("states", state, self.state)
        return self

    def then_rejected(self, reason: object = _UNSET) -> Expectation:
        """Rejected (with this reason, if given): nothing would be appended."""
        if self.already_completed:
            raise AssertionError(f"workflow {self.workflow_type!r} is already terminal; decide was not called")
        assert self.decision is not None
        if not self.decision.rejected:
            raise AssertionError(f"expected a rejection, the input was accepted: {self.decision!r}")
        if reason is not _UNSET and reason != self.decision.rejection:
            raise _diff("rejection reasons", reason, self.decision.rejection)
        return self

    def then_nothing(self) -> Expectation:
        """Accepted but changes nothing (no events, effects or timers), or the instance was already terminal."""
        if self.already_completed:
            return self
        decision = self._accepted()
        if decision != Decision():
            raise _diff("decisions (expected nothing)", Decision(), decision)
        return self

    def then_already_completed(self) -> Expectation:
        if not self.already_completed:
            raise AssertionError(f"expected an already-completed instance, got {self.decision!r}")
        return self

    def then_state(self, expected: object | Callable[[Any], bool]) -> Expectation:
        """The state after the input equals `expected`, or satisfies it when it is a predicate."""
        if callable(expected) and not attrs.has(type(expected)):
            if not expected(self.state):
                raise AssertionError(f"state {self.state!r} does not satisfy {expected!r}")
        elif expected != self.state:
            raise _diff("states", expected, self.state)
        return self

    def then_terminal(self, terminal: bool = True) -> Expectation:
        if self.spec.workflow.is_terminal(self.state) is not terminal:
            raise AssertionError(f"expected is_terminal to be {terminal} for state {self.state!r}")
        return self
