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

# An onboarding app whose mail template lookup has a bug: a KeyError deep in the handler, dead after one try
# (for the "where is the traceback?" tests).
from ironflow_py.effects import RetryPolicy  # noqa: E402

buggy_mail = EffectRegistry()


def _template_for(kind: str) -> str:
    templates: dict[str, str] = {}
    return templates[kind]


@buggy_mail.handler(SendVerificationEmail, policy=RetryPolicy(max_attempts=1))
def _send_with_template(effect: SendVerificationEmail, ctx: EffectContext) -> None:
    _template_for("missing")


onboarding_buggy = App(workflows=[OnboardingWorkflow], effects=buggy_mail)

# The lifecycle tests' job workflow, for `wait`, `send` and `instances ...`.
from tests.lifecycle_workflows import JobWorkflow  # noqa: E402

jobs = App(workflows=[JobWorkflow])

# Changing a running workflow (design/versioning.md): a shop with upcasters, and a counter before and after
# an `evolve` fix that keeps the state's shape.
from tests.contract.test_evolve_change import BuggyCounter, FixedCounter  # noqa: E402
from tests.upcast_workflows import SnappyShop  # noqa: E402

shop = App(workflows=[SnappyShop])
buggy_counter = App(workflows=[BuggyCounter])
fixed_counter = App(workflows=[FixedCounter])

# Versions side by side: an app with only version 2 of the order in tests/version_workflows.py.
from tests.version_workflows import OrderV2  # noqa: E402

vorder_v2_only = App(workflows=[OrderV2])

# The tools on a type in several versions: apps without version 1, and one with versions of their own names.
from tests.version_workflows import NamedOrderV1, NamedOrderV2, OrderV3, SnapshottingOrderV2  # noqa: E402

order_v3_only = App(workflows=[OrderV3])
snapshotting_order_v2_only = App(workflows=[SnapshottingOrderV2])
named_orders = App(workflows=[NamedOrderV1, NamedOrderV2])
