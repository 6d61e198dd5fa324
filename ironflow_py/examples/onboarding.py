"""User onboarding: verification email, mark verified, wait a day, usage tips, complete.

Starting twice with the same request id returns the existing instance (`duplicate`); a `WakeUp` during the
day-long wait cancels the timer and sends the tips at once. Handlers call the outside world through an
injected `OnboardingServices`, passing each effect's idempotency key.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol

import attrs

from ironflow_py import App, Decision, Workflow
from ironflow_py.diagram import StateMachine, Transition
from ironflow_py.effects import EffectContext, EffectRegistry
from ironflow_py.lifecycle import Completed, RunOutcome

TIPS_DELAY = timedelta(days=1)


@attrs.frozen
class StartOnboarding:
    user_id: str
    email: str
    request_id: str


@attrs.frozen
class VerificationEmailSent:
    user_id: str
    message_id: str


@attrs.frozen
class UserVerified:
    user_id: str


@attrs.frozen
class TipsDue:
    user_id: str


@attrs.frozen
class WakeUp:
    user_id: str


@attrs.frozen
class TipsSent:
    user_id: str


OnboardingInput = StartOnboarding | VerificationEmailSent | UserVerified | TipsDue | WakeUp | TipsSent


@attrs.frozen
class OnboardingStarted:
    email: str


@attrs.frozen
class VerificationEmailed:
    message_id: str


@attrs.frozen
class Verified:
    tips_at: datetime


@attrs.frozen
class TipsRequested:
    trigger: str  # "timer" or "wake_up"


@attrs.frozen
class OnboardingCompleted:
    success: bool
    user_id: str


OnboardingEvent = OnboardingStarted | VerificationEmailed | Verified | TipsRequested | OnboardingCompleted


@attrs.frozen
class SendVerificationEmail:
    user_id: str
    email: str


@attrs.frozen
class MarkUserVerified:
    user_id: str


@attrs.frozen
class SendUsageTips:
    user_id: str
    email: str


OnboardingEffect = SendVerificationEmail | MarkUserVerified | SendUsageTips


@attrs.frozen
class OnboardingState:
    status: str = "new"  # new, emailing, verifying, waiting, sending_tips, completed
    user_id: str = ""
    email: str = ""
    result: dict[str, object] | None = None


def onboarding_result(state: OnboardingState) -> dict[str, object] | None:
    """`{"success": True, "user_id": ...}` once completed, None while running."""
    return state.result


class OnboardingWorkflow(Workflow[OnboardingState, OnboardingInput, OnboardingEvent, OnboardingEffect]):
    type = "onboarding"
    inputs = {
        "onboarding.start/1": StartOnboarding,
        "onboarding.verification_email_sent/1": VerificationEmailSent,
        "onboarding.user_verified/1": UserVerified,
        "onboarding.tips_due/1": TipsDue,
        "onboarding.wake_up/1": WakeUp,
        "onboarding.tips_sent/1": TipsSent,
    }
    events = {
        "onboarding.started/1": OnboardingStarted,
        "onboarding.verification_emailed/1": VerificationEmailed,
        "onboarding.verified/1": Verified,
        "onboarding.tips_requested/1": TipsRequested,
        "onboarding.completed/1": OnboardingCompleted,
    }
    effects = {
        "onboarding.send_verification_email/1": SendVerificationEmail,
        "onboarding.mark_user_verified/1": MarkUserVerified,
        "onboarding.send_usage_tips/1": SendUsageTips,
    }

    def initial_state(self) -> OnboardingState:
        return OnboardingState()

    def workflow_id(self, input: OnboardingInput) -> str:
        return input.user_id

    def input_key(self, input: OnboardingInput) -> str | None:
        return input.request_id if isinstance(input, StartOnboarding) else None

    def outcome(self, state: OnboardingState) -> RunOutcome | None:
        """Completed with `{"success": ..., "user_id": ...}` once the tips are sent."""
        return Completed(state.result) if state.status == "completed" else None

    def evolve(self, state: OnboardingState, event: OnboardingEvent) -> OnboardingState:
        match event:
            case OnboardingStarted(email=email):
                return attrs.evolve(state, status="emailing", email=email)
            case VerificationEmailed():
                return attrs.evolve(state, status="verifying")
            case Verified():
                return attrs.evolve(state, status="waiting")
            case TipsRequested():
                return attrs.evolve(state, status="sending_tips")
            case OnboardingCompleted(success=success, user_id=user_id):
                return attrs.evolve(state, status="completed", result={"success": success, "user_id": user_id})
        raise TypeError(f"unexpected event {event!r}")

    def decide(
        self, now: datetime, state: OnboardingState, input: OnboardingInput
    ) -> Decision[OnboardingEvent, OnboardingEffect]:
        uid = input.user_id
        match input:
            case StartOnboarding(email=email):
                if state.status != "new":
                    return Decision.reject(f"user {uid} is already onboarding")
                return Decision.accept(OnboardingStarted(email)).with_effect(SendVerificationEmail(uid, email))
            case VerificationEmailSent(message_id=message_id) if state.status == "emailing":
                return Decision.accept(VerificationEmailed(message_id)).with_effect(MarkUserVerified(uid))
            case UserVerified() if state.status == "verifying":
                at = now + TIPS_DELAY
                return Decision.accept(Verified(at)).with_timer("tips", at, TipsDue(uid))
            case TipsDue() if state.status == "waiting":
                return Decision.accept(TipsRequested("timer")).with_effect(SendUsageTips(uid, state.email))
            case WakeUp():
                if state.status != "waiting":
                    return Decision.reject(f"user {uid} is not waiting (status {state.status})")
                return (
                    Decision.accept(TipsRequested("wake_up"))
                    .with_effect(SendUsageTips(uid, state.email))
                    .cancel_timer("tips")
                )
            case TipsSent() if state.status == "sending_tips":
                return Decision.accept(OnboardingCompleted(True, uid))
        return Decision.accept()  # a late or repeated effect result: already applied, append nothing

    def describe(self) -> StateMachine:
        return StateMachine(
            initial="new",
            transitions=(
                Transition("new", "emailing", "StartOnboarding", ("SendVerificationEmail",)),
                Transition("emailing", "verifying", "VerificationEmailSent", ("MarkUserVerified",)),
                Transition("verifying", "waiting", "UserVerified", timers=("tips",)),
                Transition("waiting", "sending_tips", "TipsDue", ("SendUsageTips",)),
                Transition("waiting", "sending_tips", "WakeUp", ("SendUsageTips",), cancels=("tips",)),
                Transition("sending_tips", "completed", "TipsSent"),
            ),
            terminal=frozenset({"completed"}),
        )


class OnboardingServices(Protocol):
    """The outside world the handlers talk to (a mail provider, the user directory)."""

    def send_email(self, to: str, template: str, idempotency_key: str) -> str: ...

    def mark_verified(self, user_id: str, idempotency_key: str) -> None: ...


def onboarding_effects(services: OnboardingServices) -> EffectRegistry:
    registry = EffectRegistry()

    @registry.handler(SendVerificationEmail)
    def send_verification(effect: SendVerificationEmail, ctx: EffectContext) -> VerificationEmailSent:
        message_id = services.send_email(effect.email, "verify", ctx.idempotency_key)
        return VerificationEmailSent(effect.user_id, message_id)

    @registry.handler(MarkUserVerified)
    def mark_verified(effect: MarkUserVerified, ctx: EffectContext) -> UserVerified:
        services.mark_verified(effect.user_id, ctx.idempotency_key)
        return UserVerified(effect.user_id)

    @registry.handler(SendUsageTips)
    def send_tips(effect: SendUsageTips, ctx: EffectContext) -> TipsSent:
        services.send_email(effect.email, "usage-tips", ctx.idempotency_key)
        return TipsSent(effect.user_id)

    return registry


class PrintingServices:
    """Stand-in services for `ironflow-py --app ironflow_py.examples.onboarding:app worker`."""

    def send_email(self, to: str, template: str, idempotency_key: str) -> str:
        print(f"email {template!r} to {to} (key {idempotency_key})")
        return f"msg-{idempotency_key}"

    def mark_verified(self, user_id: str, idempotency_key: str) -> None:
        print(f"user {user_id} verified (key {idempotency_key})")


app = App(workflows=[OnboardingWorkflow], effects=onboarding_effects(PrintingServices()))
