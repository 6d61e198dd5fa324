"""Given/when/then for one pure workflow: no store, no clock, no I/O; failures print a readable diff.

    spec = WorkflowSpec(OrderWorkflow)
    spec.given(OrderPlaced(...)).when(ApproveOrder("o1", "grace"), now=T0).then(
        events=[OrderApproved("grace")], effects=[ChargeCustomer("o1", "ada", 8600)]
    )

`when` calls the engine's own decide step (`ironflow_py.decider.Decider`): the history goes through the
codec and the fold, then the terminal check, `decide`, the timer rule, encoding and the new state, exactly
as between load and write in the engine; so the harness and the engine cannot read a decision differently.
Every emitted value must also survive its stored form unchanged.
"""

from __future__ import annotations

import difflib
import pprint
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import attrs

from ironflow_py.codec import codec_for, loads
from ironflow_py.decider import Accepted, Decider, Origin, Peers, Rebuilt, Step
from ironflow_py.decision import ChildStart, Decision, Message, Timer
from ironflow_py.errors import InvalidWorkflowId
from ironflow_py.lifecycle import RunContinued
from ironflow_py.records import OutcomeStatus
from ironflow_py.store.base import LoadedEvent
from ironflow_py.values import key_problem
from ironflow_py.workflow import AnyWorkflow

DEFAULT_NOW = datetime(2026, 1, 1, tzinfo=UTC)
#: The instance id the harness names in errors (it runs no instance).
SPEC_ID = "spec"
_UNSET: Any = object()


def same_stored(a: Any, b: Any) -> bool:
    """True when `b` (a value back from storage) is `a` as it went in.

    Equal, and every datetime in the same zone. `==` alone is not enough: two aware datetimes at the same
    instant are equal even when one lost its `ZoneInfo` zone for a fixed offset, and wall-clock arithmetic
    after a reload then differs.

    Args:
        a: the value before storage.
        b: the value after an encode and decode.

    Returns:
        Whether they are equal and carry the same time zones.
    """
    if isinstance(a, datetime) and isinstance(b, datetime):
        return a == b and a.tzinfo == b.tzinfo and a.utcoffset() == b.utcoffset()
    if type(a) is not type(b) or a != b:
        return a == b and not isinstance(a, datetime | dict | list | tuple) and not attrs.has(type(a))
    if attrs.has(type(a)):
        return all(same_stored(getattr(a, f.name), getattr(b, f.name)) for f in attrs.fields(type(a)))
    if isinstance(a, dict):
        return all(same_stored(v, b[k]) for k, v in a.items())
    if isinstance(a, list | tuple):
        return all(same_stored(x, y) for x, y in zip(a, b, strict=True))
    return True


def _diff(what: str, expected: object, actual: object) -> AssertionError:
    exp = pprint.pformat(expected, width=100).splitlines()
    act = pprint.pformat(actual, width=100).splitlines()
    body = "\n".join(difflib.unified_diff(exp, act, "expected", "actual", lineterm=""))
    return AssertionError(f"{what} differ:\n{body}")


class WorkflowSpec:
    """Given/when/then tests of one workflow, with no store, clock or I/O (design/testing.md).

    Args:
        workflow: The workflow class (instantiated with no arguments) or instance under test.
        converter: The cattrs converter the service uses (default: `make_converter()`).
        peers: The workflows its decisions send messages to or start as children (classes or instances), so
            those inputs are routed and encoded as the engine would; none needed for messages to itself.

    Raises:
        ConfigurationError: The workflow's type tables are inconsistent (as `WorkflowService.register`).
    """

    def __init__(
        self,
        workflow: AnyWorkflow | type[AnyWorkflow],
        *,
        converter: Any = None,
        peers: Iterable[AnyWorkflow | type[AnyWorkflow]] = (),
    ) -> None:
        self.workflow: AnyWorkflow = workflow() if isinstance(workflow, type) else workflow
        self.codec = codec_for(self.workflow, converter)
        directory = Peers()
        self.decider = Decider(self.workflow, self.codec, snapshots=self.workflow.uses_snapshots(), peers=directory)
        directory.add(self.decider)
        for peer in peers:
            instance = peer() if isinstance(peer, type) else peer
            codec = codec_for(instance, self.codec.converter)
            directory.add(Decider(instance, codec, peers=directory))

    def given(self, *events: object) -> Given:
        """Start a test from the instance's history before the input under test.

        Args:
            *events: The instance's events in order (none for a new instance).

        Returns:
            A `Given`; call `.when(input, now=...)` on it.
        """
        return Given(self, tuple(events))

    def round_trip(self, kind: str, value: object) -> object:
        """Encode and decode `value` as the engine would; a mismatch means the stored form loses data.

        Args:
            kind: ``"event"``, ``"effect"`` or ``"input"``.
            value: A value of that kind.

        Returns:
            The value read back from its stored form.

        Raises:
            AssertionError: The value read back differs (the message shows a diff).
            EncodeError: The value cannot be stored.
            DecodeError: Its stored form cannot be read back.
        """
        c = self.codec
        if kind == "event":
            name, text = c.encode_event(value, SPEC_ID)
            back = c.decode_event(name, loads(text), SPEC_ID, 0)
        elif kind == "effect":
            name, text = c.encode_effect(value, SPEC_ID)
            back = c.decode_effect(name, loads(text), SPEC_ID)
        else:
            name, text = c.encode_input(value, SPEC_ID)
            back = c.decode_input(name, loads(text), SPEC_ID)
        if not same_stored(value, back):
            raise _diff(f"{kind} {name!r} does not survive its stored form: values", value, back)
        return back

    def check_keys(self, input: object) -> None:
        """Check that the instance id and input key the engine would compute for `input` can be stored.

        An input whose `workflow_id` raises (one only a timer delivers, say) is not checked.

        Args:
            input: The input under test.

        Raises:
            InvalidWorkflowId: As `execute` would raise it (empty, over 512 bytes, NUL, lone surrogate).
        """
        wf = self.workflow
        try:
            workflow_id = wf.workflow_id(input)
        except Exception:
            return
        problem = key_problem(workflow_id)
        if problem is not None:
            raise InvalidWorkflowId(
                f"workflow_id({type(input).__qualname__}) returned an invalid id: {problem}",
                workflow_type=wf.type,
                workflow_id=None,
            )
        key = wf.input_key(input)
        problem = None if key is None else key_problem(key)
        if problem is not None:
            raise InvalidWorkflowId(
                f"invalid input key for {type(input).__qualname__}: {problem}",
                workflow_type=wf.type,
                workflow_id=workflow_id,
            )


@attrs.frozen
class Given:
    """A workflow with a history, waiting for the input under test (`when`).

    Attributes:
        spec: The spec it came from.
        history: The instance's events before the input.
    """

    spec: WorkflowSpec
    history: tuple[object, ...]

    def state(self) -> Any:
        """The state the history builds (folded in memory, without the stored form).

        Returns:
            The folded state.
        """
        wf = self.spec.workflow
        return wf.fold(wf.initial_state(), self.history)

    def when(self, input: object, *, now: datetime = DEFAULT_NOW) -> Expectation:
        """Run `input` against the state the history builds, with the engine's own decide step.

        Args:
            input: The input under test.
            now: The time `decide` sees, timezone-aware (default: 2026-01-01T00:00 UTC).

        Returns:
            What happened, to assert on with `then`, `then_rejected`, `then_nothing` or `then_state`.

        Raises:
            AssertionError: A history event, the input or an emitted value does not survive its stored form.
            DecideFailed: User code raised, as the engine would report it.
            EncodeError: An emitted value cannot be stored.
            CodecError: A value is of a class the workflow does not declare.
        """
        spec, decider = self.spec, self.spec.decider
        stored = []
        for seq, event in enumerate(self.history, start=1):
            spec.round_trip("event", event)
            name, text = spec.codec.encode_event(event, SPEC_ID)
            stored.append(LoadedEvent(seq, name, loads(text)))
        spec.round_trip("input", input)
        spec.check_keys(input)
        start = Origin(Rebuilt(decider.initial(SPEC_ID), 0, 0), None)
        before = decider.rebuild(SPEC_ID, start, stored)
        step = decider.decide(before, input, now, workflow_id=SPEC_ID)
        if isinstance(step, Accepted):
            for event in step.events:
                if not isinstance(event, RunContinued):  # the engine's marker has no stored form to check
                    spec.round_trip("event", event)
            for effect in step.effects:
                spec.round_trip("effect", effect)
            for timer in step.timers:
                spec.round_trip("input", timer.input)
        return Expectation(spec, before.state, step)


@attrs.frozen
class Expectation:
    """The result of `when`: assert on it with `then`, `then_rejected`, `then_nothing`, `then_state`.

    Each `then_*` returns the expectation itself, so checks chain.

    Attributes:
        spec: The spec it came from.
        state_before: The state the history built.
        step: The decide step's answer, the very value the engine would write from.
    """

    spec: WorkflowSpec
    state_before: Any
    step: Step

    @property
    def state(self) -> Any:
        """The state after the input (unchanged unless it was accepted)."""
        return self.step.state

    @property
    def decision(self) -> Decision[Any, Any] | None:
        """What `decide` returned (None when it was not called: the instance was terminal)."""
        return self.step.decision

    @property
    def continued(self) -> bool:
        """True when the decision continues the run as new (`Decision.continue_as_new`)."""
        decision = self.step.decision
        return decision is not None and decision.continue_run

    @property
    def already_completed(self) -> bool:
        """True when the instance was terminal, so `decide` was not called."""
        return not isinstance(self.step, Accepted) and self.step.outcome.status is OutcomeStatus.ALREADY_COMPLETED

    @property
    def workflow_type(self) -> str:
        """The workflow's type."""
        return self.spec.workflow.type

    def _accepted(self) -> Accepted:
        step = self.step
        if self.already_completed:
            raise AssertionError(
                f"workflow {self.workflow_type!r} is already terminal in state {self.state!r}; decide was not called"
            )
        if not isinstance(step, Accepted):
            reason = step.outcome.reason
            raise AssertionError(f"expected the input to be accepted, it was rejected: {reason!r}")
        return step

    def then(
        self,
        *,
        events: Sequence[object] = _UNSET,
        effects: Sequence[object] = _UNSET,
        timers: Sequence[Timer[Any]] = _UNSET,
        cancelled_timers: Iterable[str] = _UNSET,
        state: object = _UNSET,
        messages: Sequence[Message] = _UNSET,
        children: Sequence[ChildStart] = _UNSET,
        continued: bool = _UNSET,
    ) -> Expectation:
        """Assert the input was accepted with exactly these events, effects, timers, cancellations, messages, children.

        Only the arguments given are compared. Timers and cancellations are compared as the engine applies
        them: the last timer per key, and only the cancelled keys that this decision does not schedule
        again (design/decider.md).

        Args:
            events: The events, in order.
            effects: The effects, in order.
            timers: The timers to schedule.
            cancelled_timers: The timer keys cancelled.
            state: The state after the input.
            messages: The messages sent (`Message(input)` for `send`, `Message(input, type, id)` for
                `send_to`), in order.
            children: The children started (`ChildStart(input, id, on_parent_close, deadline)`), in order.
            continued: Whether the decision continues the run as new (`Decision.continue_as_new`); the
                engine's run marker is not among `events`.

        Returns:
            This expectation.

        Raises:
            AssertionError: The input was rejected, the instance was terminal, or a value differs (with a
                diff).
        """
        step = self._accepted()
        own_events = [e for e in step.events if not isinstance(e, RunContinued)]
        checks: list[tuple[str, object, object]] = [
            ("events", events, own_events),
            ("effects", effects, step.effects),
            ("timers", timers, step.timers),
            ("cancelled timers", cancelled_timers, step.cancelled_timers),
            ("messages", messages, step.messages),
            ("children", children, step.children),
        ]
        for what, expected, actual in checks:
            if expected is not _UNSET and list(expected) != list(actual):  # type: ignore[call-overload]
                raise _diff(what, list(expected), list(actual))  # type: ignore[call-overload]
        if state is not _UNSET and state != self.state:
            raise _diff("states", state, self.state)
        if continued is not _UNSET and continued != self.continued:
            raise AssertionError(
                f"expected the decision {'to' if continued else 'not to'} continue the run as new, it "
                + ("did" if self.continued else "did not")
            )
        return self

    def then_rejected(self, reason: object = _UNSET) -> Expectation:
        """Assert the input was rejected (with this reason, if given): nothing would be appended.

        Args:
            reason: The expected rejection reason.

        Returns:
            This expectation.

        Raises:
            AssertionError: It was accepted, the instance was terminal, or the reason differs.
        """
        if self.already_completed:
            raise AssertionError(f"workflow {self.workflow_type!r} is already terminal; decide was not called")
        if isinstance(self.step, Accepted):
            raise AssertionError(f"expected a rejection, the input was accepted: {self.decision!r}")
        if reason is not _UNSET and reason != self.step.outcome.reason:
            raise _diff("rejection reasons", reason, self.step.outcome.reason)
        return self

    def then_nothing(self) -> Expectation:
        """Assert the input changed nothing: accepted with no events, effects or timers, or already terminal.

        Returns:
            This expectation.

        Raises:
            AssertionError: It was rejected, or the decision carries something.
        """
        if self.already_completed:
            return self
        step = self._accepted()
        if step.events or step.effects or step.timers or step.cancelled_timers:
            raise _diff("decisions (expected nothing)", Decision(), step.decision)
        return self

    def then_already_completed(self) -> Expectation:
        """Assert the instance was already terminal, so `decide` was not called.

        Returns:
            This expectation.

        Raises:
            AssertionError: `decide` was called.
        """
        if not self.already_completed:
            raise AssertionError(f"expected an already-completed instance, got {self.decision!r}")
        return self

    def then_state(self, expected: object | Callable[[Any], bool]) -> Expectation:
        """Assert the state after the input equals `expected`, or satisfies it when it is a predicate.

        Args:
            expected: The state, or a function of the state returning a bool.

        Returns:
            This expectation.

        Raises:
            AssertionError: The state differs (with a diff) or fails the predicate.
        """
        if callable(expected) and not attrs.has(type(expected)):
            if not expected(self.state):
                raise AssertionError(f"state {self.state!r} does not satisfy {expected!r}")
        elif expected != self.state:
            raise _diff("states", expected, self.state)
        return self

    def then_outcome(self, expected: object) -> Expectation:
        """Assert how the instance stands after the input: its outcome (None while it stays open).

        The outcome is the one the engine would store: `Workflow.outcome` of the state after the input,
        as the decide step computed it.

        Args:
            expected: `Completed(result)`, `Failed(code, detail)`, `Cancelled(reason)`, `TimedOut(deadline)`
                or None.

        Returns:
            This expectation.

        Raises:
            AssertionError: The outcome differs (a diff is printed).
        """
        step = self.step
        actual = step.outcome if isinstance(step, Accepted) else self.spec.workflow.outcome(self.state)
        if actual != expected or type(actual) is not type(expected):
            raise _diff("outcomes", expected, actual)
        return self

    def then_terminal(self, terminal: bool = True) -> Expectation:
        """Assert `is_terminal` of the state after the input is `terminal`.

        Args:
            terminal: The expected answer.

        Returns:
            This expectation.

        Raises:
            AssertionError: It is not.
        """
        if self.spec.workflow.is_terminal(self.state) is not terminal:
            raise AssertionError(f"expected is_terminal to be {terminal} for state {self.state!r}")
        return self
