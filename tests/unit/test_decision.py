"""Decision builders: immutable values, rejections carry a reason and nothing else."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ironflow_py import Decision, Timer

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_builders_return_new_values_and_keep_order() -> None:
    base: Decision[str, str] = Decision.accept("e1")
    built = base.with_event("e2").with_effect("f1", "f2").with_timer("t", NOW, "i").cancel_timer("old")
    assert base == Decision(events=("e1",))
    assert built == Decision(
        events=("e1", "e2"), effects=("f1", "f2"), timers=(Timer("t", NOW, "i"),), cancel_timers=("old",)
    )
    assert not built.rejected


def test_accept_takes_effects_keyword() -> None:
    assert Decision.accept("e", effects=["f"]) == Decision(events=("e",), effects=("f",))


def test_reject_carries_reason_and_refuses_additions() -> None:
    rejected = Decision.reject("nope")
    assert rejected.rejected and rejected.rejection == "nope"
    with pytest.raises(ValueError, match="rejected"):
        rejected.with_event("e")
    with pytest.raises(ValueError, match="reason"):
        Decision.reject(None)


def test_timers_need_aware_times() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Decision.accept().with_timer("t", datetime(2026, 1, 1), "i")
