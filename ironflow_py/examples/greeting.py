"""Greeting with approval: greet, wait one second (a durable timer), then complete or fail on approval.

An approval that arrives while the greeting is being composed or during the wait is kept and applied when
the wait ends; after completion inputs are refused (`already_completed`) and append nothing; a re-delivered
greeting result appends nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import attrs

from ironflow_py import App, Decision, Workflow
from ironflow_py.diagram import StateMachine, Transition
from ironflow_py.effects import EffectContext, EffectRegistry
from ironflow_py.lifecycle import Completed, Failed, RunOutcome

WAIT = timedelta(seconds=1)


@attrs.frozen
class StartGreeting:
    greeting_id: str
    name: str


@attrs.frozen
class GreetingComposed:
    """Returned by the `Greet` effect's handler."""

    greeting_id: str
    text: str


@attrs.frozen
class WaitOver:
    greeting_id: str


@attrs.frozen
class Approval:
    greeting_id: str
    approved: bool


GreetingInput = StartGreeting | GreetingComposed | WaitOver | Approval


@attrs.frozen
class GreetingStarted:
    name: str


@attrs.frozen
class Greeted:
    text: str
    wait_until: datetime


@attrs.frozen
class ApprovalNoted:
    approved: bool


@attrs.frozen
class WaitEnded:
    pass


@attrs.frozen
class GreetingCompleted:
    greeting: str


@attrs.frozen
class GreetingFailed:
    reason: str


GreetingEvent = GreetingStarted | Greeted | ApprovalNoted | WaitEnded | GreetingCompleted | GreetingFailed


@attrs.frozen
class Greet:
    greeting_id: str
    name: str


@attrs.frozen
class GreetingState:
    status: str = "new"  # new, greeting, waiting, awaiting_approval, completed, failed
    name: str = ""
    greeting: str | None = None
    approval: bool | None = None
    error: str | None = None


@attrs.frozen
class GreetingResult:
    """What `greeting_result` reports, while running and after completion."""

    status: str
    greeting: str | None
    error: str | None


def greeting_result(state: GreetingState) -> GreetingResult:
    return GreetingResult(state.status, state.greeting if state.status == "completed" else None, state.error)


class GreetingWorkflow(Workflow[GreetingState, GreetingInput, GreetingEvent, Greet]):
    type = "greeting"
    inputs = {
        "greeting.start/1": StartGreeting,
        "greeting.composed/1": GreetingComposed,
        "greeting.wait_over/1": WaitOver,
        "greeting.approval/1": Approval,
    }
    events = {
        "greeting.started/1": GreetingStarted,
        "greeting.greeted/1": Greeted,
        "greeting.approval_noted/1": ApprovalNoted,
        "greeting.wait_ended/1": WaitEnded,
        "greeting.completed/1": GreetingCompleted,
        "greeting.failed/1": GreetingFailed,
    }
    effects = {"greeting.greet/1": Greet}
    result_type = str

    def initial_state(self) -> GreetingState:
        return GreetingState()

    def workflow_id(self, input: GreetingInput) -> str:
        return input.greeting_id

    def outcome(self, state: GreetingState) -> RunOutcome | None:
        """Completed with the greeting text, or Failed("not_approved") when the approval was refused."""
        if state.status == "completed":
            return Completed(state.greeting)
        if state.status == "failed":
            return Failed("not_approved", state.error)
        return None

    def evolve(self, state: GreetingState, event: GreetingEvent) -> GreetingState:
        match event:
            case GreetingStarted(name=name):
                return attrs.evolve(state, status="greeting", name=name)
            case Greeted(text=text):
                return attrs.evolve(state, status="waiting", greeting=text)
            case ApprovalNoted(approved=approved):
                return attrs.evolve(state, approval=approved)
            case WaitEnded():
                return attrs.evolve(state, status="awaiting_approval")
            case GreetingCompleted():
                return attrs.evolve(state, status="completed")
            case GreetingFailed(reason=reason):
                return attrs.evolve(state, status="failed", error=reason)
        raise TypeError(f"unexpected event {event!r}")

    def _finish(self, state: GreetingState, approved: bool) -> Decision[GreetingEvent, Greet]:
        assert state.greeting is not None
        return Decision.accept(GreetingCompleted(state.greeting) if approved else GreetingFailed("not approved"))

    def decide(self, now: datetime, state: GreetingState, input: GreetingInput) -> Decision[GreetingEvent, Greet]:
        match input:
            case StartGreeting(greeting_id=gid, name=name):
                if state.status != "new":
                    return Decision.reject(f"greeting {gid} already started")
                return Decision.accept(GreetingStarted(name)).with_effect(Greet(gid, name))
            case GreetingComposed(text=text):
                if state.status != "greeting":
                    return Decision.accept()  # a re-delivered result: already applied, append nothing
                return Decision.accept(Greeted(text, now + WAIT)).with_timer(
                    "wait", now + WAIT, WaitOver(input.greeting_id)
                )
            case WaitOver():
                if state.status != "waiting":
                    return Decision.accept()
                if state.approval is None:
                    return Decision.accept(WaitEnded())
                return self._finish(state, state.approval)
            case Approval(approved=approved):
                if state.status == "awaiting_approval":
                    return self._finish(state, approved)
                if state.approval is not None:
                    return Decision.reject("an approval was already given")
                return Decision.accept(ApprovalNoted(approved))  # kept until the wait is over
        raise TypeError(f"unexpected input {input!r}")

    def describe(self) -> StateMachine:
        return StateMachine(
            initial="new",
            transitions=(
                Transition("new", "greeting", "StartGreeting", ("Greet",)),
                Transition("greeting", "waiting", "GreetingComposed", timers=("wait",)),
                Transition("waiting", "awaiting_approval", "WaitOver (no approval yet)"),
                Transition("waiting", "completed", "WaitOver (approved earlier)"),
                Transition("waiting", "failed", "WaitOver (refused earlier)"),
                Transition("awaiting_approval", "completed", "Approval(true)"),
                Transition("awaiting_approval", "failed", "Approval(false)"),
            ),
            terminal=frozenset({"completed", "failed"}),
        )


def greet(effect: Greet, ctx: EffectContext) -> GreetingComposed:
    return GreetingComposed(effect.greeting_id, f"Hello, {effect.name}!")


def greeting_effects() -> EffectRegistry:
    registry = EffectRegistry()
    registry.register(Greet, greet)
    return registry


app = App(workflows=[GreetingWorkflow], effects=greeting_effects())
