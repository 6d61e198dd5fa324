"""Testing workflows without a database: given/when/then, replay checks, and (for PostgreSQL) fixtures."""

from ironflow_py.testing.harness import Expectation, WorkflowSpec
from ironflow_py.testing.replay import check_codec_round_trip, check_replay_determinism

__all__ = ["Expectation", "WorkflowSpec", "check_codec_round_trip", "check_replay_determinism"]
