"""Apps the CLI tests load with --app."""

from ironflow_py import App
from ironflow_py.examples.orders import OrderWorkflow

orders = App(workflows=[OrderWorkflow])
nothing = object()

# An onboarding app whose mailer is down: its first effect dies at once (for the "why is it stuck?" test).
from ironflow_py.effects import EffectContext, EffectRegistry  # noqa: E402
from ironflow_py.errors import Permanent  # noqa: E402
from ironflow_py.examples.onboarding import OnboardingWorkflow, SendVerificationEmail  # noqa: E402

broken_mail = EffectRegistry()


@broken_mail.handler(SendVerificationEmail)
def _mail_down(effect: SendVerificationEmail, ctx: EffectContext) -> None:
    raise Permanent("mail provider rejected the address")


onboarding_broken = App(workflows=[OnboardingWorkflow], effects=broken_mail)
