"""The harness and the engine read a decision the same way: WorkflowSpec, MemoryStore and PostgresStore agree.

One class of fault: "the harness and the engine interpret a decision differently". Each case is a decision
whose meaning needs a rule (design/decider.md, the timer rule); the test runs it through `WorkflowSpec` and
through `WorkflowService` on each store and checks that what the harness reports is what the store holds.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import attrs
import pytest

from ironflow_py import Decision, ManualClock, Timer, Workflow, WorkflowService
from ironflow_py.store.base import Store
from ironflow_py.testing import WorkflowSpec

T0 = datetime(2026, 4, 1, 8, 0, tzinfo=UTC)


@attrs.frozen
class Plan:
    """Schedule `(key, minutes from now)` timers and cancel `cancel` keys, in one decision."""

    pid: str
    schedule: tuple[tuple[str, int], ...] = ()
    cancel: tuple[str, ...] = ()


@attrs.frozen
class Wake:
    pid: str


@attrs.frozen
class Planned:
    pass


class Planner(Workflow[int, Plan | Wake, Planned, object]):
    type = "planner"
    inputs = {"planner.plan/1": Plan, "planner.wake/1": Wake}
    events = {"planner.planned/1": Planned}

    def initial_state(self) -> int:
        return 0

    def workflow_id(self, input: Plan | Wake) -> str:
        return input.pid

    def evolve(self, state: int, event: Planned) -> int:
        return state + 1

    def decide(self, now: datetime, state: int, input: Plan | Wake) -> Decision[Planned, object]:
        decision: Decision[Planned, object] = Decision.accept(Planned())
        if isinstance(input, Plan):
            for key, minutes in input.schedule:
                decision = decision.with_timer(key, now + timedelta(minutes=minutes), Wake(input.pid))
            decision = decision.cancel_timer(*input.cancel)
        return decision


#: Before each case the instance has timers "a" and "b", both due in one minute.
SETUP = Plan("p", schedule=(("a", 1), ("b", 1)))
CASES = {
    # Cancel and schedule one key: a reschedule (the known disagreement: the harness used to say cancelled).
    "schedule and cancel one key": (Plan("p", (("a", 5),), ("a",)), {"a": 5}, (), {"a": 5, "b": 1}),
    # The last timer for a key wins (PostgreSQL used to refuse the decision: one upsert hit its row twice).
    "one key scheduled twice": (Plan("p", (("c", 5), ("c", 9))), {"c": 9}, (), {"a": 1, "b": 1, "c": 9}),
    # A key cancelled twice is one cancellation (the harness used to report it twice).
    "one key cancelled twice": (Plan("p", (), ("b", "b")), {}, ("b",), {"a": 1}),
}


def _due(minutes: dict[str, int]) -> list[tuple[str, datetime]]:
    return sorted((key, T0 + timedelta(minutes=m)) for key, m in minutes.items())


@pytest.mark.parametrize("case", CASES)
def test_harness_and_store_agree_on_what_a_decision_schedules(store: Store, case: str) -> None:
    plan, timers, cancelled, held = CASES[case]
    spec = WorkflowSpec(Planner).given(Planned()).when(plan, now=T0)
    spec.then(
        timers=[Timer(key, T0 + timedelta(minutes=m), Wake("p")) for key, m in timers.items()],
        cancelled_timers=list(cancelled),
    )

    service = WorkflowService(store, workflows=[Planner], clock=ManualClock(T0))
    service.execute(SETUP)
    assert service.execute(plan).accepted
    assert sorted((t.key, t.due_at) for t in store.timers("planner", "p")) == _due(held)
    # And what the store holds is exactly the harness's answer applied to the timers that were there.
    before = {"a": 1, "b": 1}
    applied = {k: m for k, m in before.items() if k not in cancelled} | timers
    assert _due(applied) == _due(held)
