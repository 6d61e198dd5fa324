"""The lifecycle under crashes and races on real PostgreSQL: explicit connections, real threads."""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

from ironflow_py import InstanceStatus, OutcomeStatus, PostgresStore, StoreError, WorkflowService
from ironflow_py.lifecycle import Cancelled, Completed
from tests.lifecycle_workflows import EndJob, JobEnded, JobResult, JobWorkflow, StartJob

Conn = psycopg.Connection[tuple[Any, ...]]


def _row(admin: Conn, schema: str, workflow_id: str) -> tuple[Any, ...]:
    row = admin.execute(
        sql.SQL(
            "SELECT status, outcome, closed_at, last_seq, (SELECT count(*) FROM {s}.events e "
            "WHERE e.workflow_type = i.workflow_type AND e.workflow_id = i.workflow_id) "
            "FROM {s}.instances i WHERE workflow_type = 'job' AND workflow_id = %s"
        ).format(s=sql.Identifier(schema)),
        (workflow_id,),
    ).fetchone()
    assert row is not None
    return tuple(row)


def test_a_backend_killed_between_decide_and_commit_leaves_neither_outcome_nor_closing_events(
    pg_store: PostgresStore, admin: Conn
) -> None:
    inside, release = threading.Event(), threading.Event()

    class Stalling(JobWorkflow):
        def decide(self, now: datetime, state: Any, input: Any) -> Any:
            if isinstance(input, EndJob):
                inside.set()
                release.wait(10)
            return super().decide(now, state, input)

    service = WorkflowService(pg_store, workflows=[Stalling])
    service.execute(StartJob("j1"))
    before = _row(admin, pg_store.schema, "j1")
    errors: list[BaseException] = []

    def close() -> None:
        try:
            service.execute(EndJob("j1", "failed"))
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=close)
    thread.start()
    assert inside.wait(10)
    # The deciding transaction holds the lock and has read the instance; kill exactly its backend.
    killed = admin.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'ironflow_py' "
        "AND state = 'idle in transaction' AND strpos(query, %s) > 0",
        (f'"{pg_store.schema}".',),
    ).fetchall()
    release.set()
    thread.join(10)
    assert killed == [(True,)]
    assert len(errors) == 1 and isinstance(errors[0], StoreError)
    after = _row(admin, pg_store.schema, "j1")
    assert after == before and after[:3] == ("running", None, None)
    assert service.result("job", "j1") is None
    # The instance still closes properly afterwards, outcome and event together.
    service.execute(EndJob("j1", "failed", value=1))
    status, outcome, closed_at, last_seq, events = _row(admin, pg_store.schema, "j1")
    assert (status, outcome, last_seq, events) == (
        "failed",
        {"status": "failed", "code": "boom", "detail": {"value": 1}},
        2,
        2,
    )
    assert closed_at is not None


def test_eight_threads_racing_cancel_against_completion_end_each_instance_in_one_agreeing_status(
    pg_store: PostgresStore,
) -> None:
    instances = 200
    service = WorkflowService(pg_store, workflows=[JobWorkflow])
    ids = [f"r{n}" for n in range(instances)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: service.execute(StartJob(i)), ids))
    calls: list[tuple[str, str]] = [(i, kind) for i in ids for kind in ("cancel", "complete")]
    random.Random(12).shuffle(calls)
    lock = threading.Lock()
    in_flight = peak = 0
    results: dict[tuple[str, str], OutcomeStatus] = {}

    def call(item: tuple[str, str]) -> None:
        nonlocal in_flight, peak
        workflow_id, kind = item
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        try:
            if kind == "cancel":
                outcome = service.cancel("job", workflow_id, "race", request_id=f"cancel-{workflow_id}")
            else:
                outcome = service.execute(EndJob(workflow_id, "completed", value=1))
        finally:
            with lock:
                in_flight -= 1
        results[item] = outcome.status

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(call, calls))
    assert peak > 1, "the calls never overlapped"
    seen: set[InstanceStatus] = set()
    for workflow_id in ids:
        info = service.instance("job", workflow_id)
        assert info is not None
        ended = [e.event for e in service.history("job", workflow_id) if isinstance(e.event, JobEnded)]
        assert len(ended) == 1, (workflow_id, ended)
        assert info.status.value == ended[0].how  # the status agrees with the closing event
        expected = Completed(JobResult(1)) if ended[0].how == "completed" else Cancelled("race")
        assert service.result("job", workflow_id) == expected
        winner = "complete" if ended[0].how == "completed" else "cancel"
        loser = "cancel" if winner == "complete" else "complete"
        assert results[(workflow_id, winner)] is OutcomeStatus.ACCEPTED
        assert results[(workflow_id, loser)] is OutcomeStatus.ALREADY_COMPLETED
        seen.add(info.status)
    assert seen == {InstanceStatus.COMPLETED, InstanceStatus.CANCELLED}  # both sides won some races
