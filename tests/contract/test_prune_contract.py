"""The prune port on both stores: what each retention removes, what it keeps, tombstones and reused ids.

Every test drives real decisions and real claims through a `ManualClock`, then prunes with `now` moved past
the retention; the PostgreSQL-only rules (projection checkpoints, the prune lock, a kill mid-batch) are in
tests/integration/test_retention.py and tests/reliability/test_prune_kill.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ironflow_py import ClosedMode, InstanceStatus, ManualClock, OutcomeStatus, RetentionPolicy, WorkflowService
from ironflow_py.clock import store_time
from ironflow_py.lifecycle import Completed
from ironflow_py.store.base import Store
from tests.lifecycle_workflows import EndJob, JobResult, JobWorkflow, MoreWork, Poke, StartJob

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


class SnapshottingJob(JobWorkflow):
    snapshot_every = 1


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def service(store: Store, clock: ManualClock) -> WorkflowService:
    return WorkflowService(store, workflows=[SnapshottingJob], clock=clock)


def _finish_effects(store: Store, clock: ManualClock) -> int:
    outbox = store.outbox("w")
    claims = outbox.claim_effects(store_time(clock), timedelta(minutes=1), 100)
    return len(outbox.complete_effects(claims, store_time(clock)))


def _closed_job(service: WorkflowService, store: Store, clock: ManualClock, job: str) -> None:
    """A job with a done effect, a pending timer, an input key and a snapshot, then closed."""
    service.execute(StartJob(job, timer_in=3600, work=1))
    _finish_effects(store, clock)
    assert service.execute(EndJob(job, "completed", 7, key=f"end-{job}")).accepted


def _now(clock: ManualClock) -> datetime:
    now = store_time(clock)
    assert now is not None
    return now


def test_a_closed_instance_is_tombstoned_after_its_retention(
    service: WorkflowService, store: Store, clock: ManualClock
) -> None:
    _closed_job(service, store, clock, "j1")
    assert store.timers("job", "j1") and store.latest_snapshot("job", "j1") is not None
    policy = RetentionPolicy(closed_instances=DAY, done_effects=None)
    pruner = store.pruner()
    assert pruner.prune_all(policy, _now(clock) + DAY - timedelta(seconds=1)).instances == 0  # not yet
    report = pruner.prune_all(policy, _now(clock) + DAY + timedelta(seconds=1))
    assert (report.instances, report.events, report.input_keys, report.timers, report.snapshots) == (1, 2, 1, 1, 1)
    assert report.effects == 1  # its done effect went with it, though done effects have no retention here
    assert store.events("job", "j1") == [] and store.timers("job", "j1") == [] and store.effects("job", "j1") == []
    assert store.latest_snapshot("job", "j1") is None
    info = store.instance("job", "j1")
    assert info is not None and info.status is InstanceStatus.COMPLETED and info.outcome_data is not None
    assert service.result("job", "j1") == Completed(JobResult(7))


def test_inputs_to_a_tombstoned_instance_answer_already_completed(
    service: WorkflowService, store: Store, clock: ManualClock
) -> None:
    _closed_job(service, store, clock, "j1")
    store.pruner().prune_all(RetentionPolicy(closed_instances=timedelta(0)), _now(clock) + timedelta(seconds=1))
    assert store.events("job", "j1") == []
    for input in (Poke("j1"), StartJob("j1", work=2), EndJob("j1", "completed", key="end-j1")):
        outcome = service.execute(input)
        assert outcome.status is OutcomeStatus.ALREADY_COMPLETED, input
    assert service.terminate("job", "j1", "late").status is OutcomeStatus.ALREADY_COMPLETED
    assert store.events("job", "j1") == [] and store.effects("job", "j1") == []  # nothing was written
    info = store.instance("job", "j1")
    assert info is not None and info.last_seq == 2


def test_a_deleted_instance_id_starts_fresh_without_stale_keys_timers_or_effects(
    service: WorkflowService, store: Store, clock: ManualClock
) -> None:
    _closed_job(service, store, clock, "j1")
    policy = RetentionPolicy(closed_instances=timedelta(0), closed_mode=ClosedMode.DELETE)
    report = store.pruner().prune_all(policy, _now(clock) + timedelta(seconds=1))
    assert report.instances == 1
    assert store.instance("job", "j1") is None and store.events("job", "j1") == []
    assert store.timers("job", "j1") == [] and store.effects("job", "j1") == []
    assert service.execute(StartJob("j1")).accepted  # fresh: seq 1 again, no old timer
    assert [e.seq for e in store.events("job", "j1")] == [1]
    assert store.timers("job", "j1") == []
    again = service.execute(EndJob("j1", "completed", 1, key="end-j1"))  # the old key is gone
    assert again.status is OutcomeStatus.ACCEPTED


def test_an_instance_with_a_pending_effect_is_kept(service: WorkflowService, store: Store, clock: ManualClock) -> None:
    service.execute(StartJob("j1"))
    service.execute(EndJob("j1", "completed"))
    service.execute(MoreWork("j1", 1))  # already completed: writes nothing
    service.execute(StartJob("j2", work=1))
    service.execute(EndJob("j2", "completed"))  # closes with its effect still pending
    report = store.pruner().prune_all(RetentionPolicy(closed_instances=timedelta(0)), _now(clock) + DAY)
    assert report.instances == 1
    assert store.events("job", "j2") and not store.events("job", "j1")
    _finish_effects(store, clock)
    assert store.pruner().prune_all(RetentionPolicy(closed_instances=timedelta(0)), _now(clock) + DAY).instances == 1


def test_done_effects_of_open_instances_go_oldest_first_in_bounded_batches(
    service: WorkflowService, store: Store, clock: ManualClock
) -> None:
    for n in range(5):
        service.execute(MoreWork("open", n) if n else StartJob("open", work=1))
        assert _finish_effects(store, clock) == 1
        clock.advance(timedelta(minutes=1))
    service.execute(MoreWork("open", 99))  # pending: never pruned
    policy = RetentionPolicy(done_effects=timedelta(minutes=2, seconds=30), closed_instances=None, batch_size=2)
    first = store.pruner().prune_batch(policy, _now(clock))
    assert (first.effects, first.batches) == (2, 1)
    left = [e for e in store.effects("job", "open") if e.status == "done"]
    assert len(left) == 3 and min(e.id for e in left) > 2  # the two oldest went first
    rest = store.pruner().prune_all(policy, _now(clock))
    assert rest.effects == 1  # only those finished more than 2.5 minutes ago
    assert [e.status for e in store.effects("job", "open")].count("pending") == 1
    assert store.events("job", "open")  # an open instance keeps its history


def test_dead_effects_are_kept_until_the_policy_allows_them(
    service: WorkflowService, store: Store, clock: ManualClock
) -> None:
    service.execute(StartJob("j1", work=1))
    outbox = store.outbox("w")
    (claim,) = outbox.claim_effects(store_time(clock), timedelta(minutes=1), 10)
    assert outbox.mark_dead(claim, _now(clock), "boom")
    service.execute(EndJob("j1", "completed"))
    later = _now(clock) + 10 * DAY
    keep_dead = RetentionPolicy(done_effects=timedelta(0), closed_instances=timedelta(0))
    report = store.pruner().prune_all(keep_dead, later)
    assert report.dead_effects == 0 and report.instances == 1  # tombstoned; the dead letter stays
    assert [e.status for e in store.effects("job", "j1")] == ["dead"]
    deleting = RetentionPolicy(closed_instances=timedelta(0), closed_mode=ClosedMode.DELETE)
    service.execute(StartJob("j2", work=1))
    (claim2,) = outbox.claim_effects(store_time(clock), timedelta(minutes=1), 10)
    assert outbox.mark_dead(claim2, _now(clock), "boom")
    service.execute(EndJob("j2", "completed"))
    assert store.pruner().prune_all(deleting, later).instances == 0  # delete mode keeps it for its dead letter
    assert store.instance("job", "j2") is not None
    allowed = RetentionPolicy(dead_effects=DAY, closed_instances=timedelta(0), closed_mode=ClosedMode.DELETE)
    report = store.pruner().prune_all(allowed, later)
    assert report.dead_effects == 2 and report.instances == 1  # j1's on its own, j2's with its instance
    assert store.instance("job", "j2") is None and store.effects("job", "j1") == []


def test_closed_instances_go_in_close_order_and_a_batch_is_bounded(
    service: WorkflowService, store: Store, clock: ManualClock
) -> None:
    for job in ("c", "a", "b"):
        service.execute(StartJob(job))
        service.execute(EndJob(job, "completed"))
        clock.advance(timedelta(minutes=1))
    policy = RetentionPolicy(closed_instances=timedelta(0), batch_size=2)
    first = store.pruner().prune_batch(policy, _now(clock))
    assert first.instances == 2
    assert store.events("job", "b") and not store.events("job", "c") and not store.events("job", "a")
    assert store.pruner().prune_all(policy, _now(clock)).instances == 1


def test_a_named_projection_without_a_checkpoint_holds_instances_back(
    service: WorkflowService, store: Store, clock: ManualClock
) -> None:
    service.execute(StartJob("j1"))
    service.execute(EndJob("j1", "completed"))
    policy = RetentionPolicy(closed_instances=timedelta(0))
    assert store.pruner(["never-ran"]).prune_all(policy, _now(clock) + DAY).instances == 0
    assert store.events("job", "j1")


def test_the_policy_refuses_nonsense() -> None:
    for bad in (
        {"done_effects": timedelta(seconds=-1)},
        {"closed_instances": 5},
        {"batch_size": 0},
        {"interval": timedelta(0)},
        {"closed_mode": "shred"},
    ):
        with pytest.raises(ValueError):
            RetentionPolicy(**bad)


def test_a_single_projection_name_is_one_name(store: Store) -> None:
    """`pruner("orders")` names one projection, not "o", "r", "d", ..."""
    assert tuple(store.pruner("orders").projections) == ("orders",)  # type: ignore[attr-defined]
