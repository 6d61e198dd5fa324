"""The attempt code shared by the PostgreSQL runtime and the scenario runner counts attempts that ended
without settling (class 3) and treats a returned input the store would refuse as permanent (class 2),
the same on both stores. The real-process versions are in tests/reliability/test_crash_loops.py."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ironflow_py import ManualClock, WorkflowService
from ironflow_py._log import get_log
from ironflow_py.effects._attempt import DEFAULT_TIMER_POLICY, Attempts
from ironflow_py.store.base import Store
from tests.effect_app import FAST_FAIL, Job, Start, make_registry

T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
LEASE = timedelta(minutes=1)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def service(store: Store, clock: ManualClock) -> WorkflowService:
    return WorkflowService(store, workflows=[Job], clock=clock)


def attempts(service: WorkflowService, store: Store, clock: ManualClock, folder: Path, worker: str) -> Attempts:
    return Attempts(
        service,
        make_registry(folder),
        store.outbox(worker),
        clock,
        random.Random(0).random,
        LEASE,
        DEFAULT_TIMER_POLICY,
        get_log("effects"),
    )


def test_claims_whose_workers_were_lost_use_up_the_attempts(
    service: WorkflowService, store: Store, clock: ManualClock, tmp_path: Path
) -> None:
    """Each of max_attempts claims is taken and never settled (its process died); the next claim does not
    run the handler: the row goes dead saying the worker was lost, and the dead-letter input arrives."""
    service.execute(Start("j", 1, "record"))
    for n in range(1, FAST_FAIL.max_attempts + 1):
        (claim,) = store.outbox(f"w{n}").claim_effects(clock.now(), LEASE, 10)
        assert claim.attempt == n
        clock.advance(2 * LEASE)  # the lease runs out: nobody will settle this claim
    (last,) = store.outbox("survivor").claim_effects(clock.now(), LEASE, 10)
    assert attempts(service, store, clock, tmp_path, "survivor").run_effect(last) is None
    assert list(tmp_path.glob("handled-*.log")) == [], "the handler did not run a 4th time"
    (row,) = store.effects("job", "j")
    assert row.status == "dead" and row.last_error is not None
    assert row.last_error.startswith(f"worker lost: attempt {FAST_FAIL.max_attempts} of {FAST_FAIL.max_attempts}")
    assert [a.error.split(":")[0] for a in service.state("job", "j").abandoned] == ["worker lost"]


def test_an_attempt_within_the_policy_still_runs_after_a_lost_one(
    service: WorkflowService, store: Store, clock: ManualClock, tmp_path: Path
) -> None:
    service.execute(Start("j", 1, "record"))
    store.outbox("w1").claim_effects(clock.now(), LEASE, 10)  # lost
    clock.advance(2 * LEASE)
    (claim,) = store.outbox("w2").claim_effects(clock.now(), LEASE, 10)
    done = attempts(service, store, clock, tmp_path, "w2").run_effect(claim)
    assert done is not None and store.outbox("w2").complete_effects([claim], clock.now()) == {claim.id}
    assert len(list(tmp_path.glob("handled-*.log"))) == 1


def test_a_returned_input_the_store_refuses_is_dead_at_once(
    service: WorkflowService, store: Store, clock: ManualClock, tmp_path: Path
) -> None:
    """The handler returns an input with NUL in a string: not retried, dead after one attempt with the
    codec's error (naming the field path), and the dead-letter input delivered."""
    service.execute(Start("j", 1, "nul_reply"))
    (claim,) = store.outbox("w1").claim_effects(clock.now(), LEASE, 10)
    attempts(service, store, clock, tmp_path, "w1").run_effect(claim)
    (row,) = store.effects("job", "j")
    assert (row.status, row.attempts) == ("dead", 1)
    assert row.last_error is not None and "can never be applied" in row.last_error and "$.error" in row.last_error
    (abandoned,) = service.state("job", "j").abandoned
    assert "NUL" in abandoned.error
