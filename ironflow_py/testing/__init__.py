"""Testing workflows without a database: given/when/then, whole-life scenarios in memory, replay checks;
and, in `pytest_plugin`, PostgreSQL fixtures."""

from ironflow_py.testing.compat import check_history_compat, check_upcasters
from ironflow_py.testing.harness import Expectation, WorkflowSpec
from ironflow_py.testing.replay import check_codec_round_trip, check_replay_determinism
from ironflow_py.testing.scenario import Scenario

__all__ = [
    "Expectation",
    "Scenario",
    "WorkflowSpec",
    "check_codec_round_trip",
    "check_history_compat",
    "check_replay_determinism",
    "check_upcasters",
]
