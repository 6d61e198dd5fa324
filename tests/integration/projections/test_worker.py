"""Projection workers on real PostgreSQL: failing handlers, rebuild, status, standby, the daemon loop."""

from __future__ import annotations

import threading
import time
from typing import Any

import attrs
import psycopg
import pytest
from psycopg import sql

from ironflow_py import (
    ConfigurationError,
    DecodeError,
    InMemoryProjection,
    MemoryStore,
    MigrationError,
    OnError,
    PostgresStore,
    Projection,
    ProjectionHandlerFailed,
    ProjectionRetry,
    ProjectionWorker,
    RecordedEvent,
    WorkflowService,
)
from ironflow_py.projections._batch import run_batch as real_batch
from ironflow_py.store.postgres_projections import applied_channel
from tests.projection_apps import (
    NAME,
    applied,
    caught_up,
    checkpoint,
    counter_projection,
    drain,
    run_until_raises,
    totals,
    wait_for_horizon,
)
from tests.workflows import Add, Added, Counter, Finish

Conn = psycopg.Connection[tuple[Any, ...]]


def test_a_failing_handler_rolls_back_the_whole_batch_and_is_retried(service: WorkflowService, admin: Conn) -> None:
    schema = service.store.schema  # type: ignore[attr-defined]
    broken = {"on": True}
    projection = counter_projection(
        schema, fail_on=lambda e: broken["on"] and isinstance(e.event, Added) and e.event.amount == 13
    )
    worker = ProjectionWorker(service, [projection], retry=ProjectionRetry(max_attempts=10, initial=0.0))
    try:
        positions = [service.execute(Add(f"c{i}", amount)).events[0].position for i, amount in enumerate([1, 2, 13, 4])]
        wait_for_horizon(admin, schema)  # so the first batch reads all four events
        for attempt in (1, 2):
            deadline = time.monotonic() + 30
            while (f := worker.failing.get(NAME)) is None or f.attempts < attempt:
                assert worker.run_once() == 0 and time.monotonic() < deadline
            failure = worker.failing[NAME]
            assert (failure.workflow_id, failure.seq, failure.position, failure.attempts) == (
                "c2",
                1,
                positions[2],
                attempt,
            )
            # Events 1 and 2 were handled before the failure, in the same batch: none of it is visible.
            assert applied(admin, schema) == []
            assert checkpoint(admin, schema) == 0
        broken["on"] = False
        drain(worker, positions[-1])
        assert worker.failing == {}
        assert [r[0] for r in applied(admin, schema)] == ["c0", "c1", "c2", "c3"]
        assert totals(admin, schema)["c2"] == (13, 1, 1)
    finally:
        worker.close()


def test_stop_policy_raises_after_max_attempts_without_moving(service: WorkflowService, admin: Conn) -> None:
    schema = service.store.schema  # type: ignore[attr-defined]
    projection = counter_projection(schema, fail_on=lambda e: e.workflow_id == "bad")
    worker = ProjectionWorker(
        service, [projection], retry=ProjectionRetry(max_attempts=3, initial=0.0, on_error=OnError.STOP)
    )
    try:
        service.execute(Add("good", 1))
        service.execute(Add("bad", 1))
        with pytest.raises(ProjectionHandlerFailed, match=r"instance 'bad' sequence 1 .*attempt 3") as info:
            run_until_raises(worker)
        assert isinstance(info.value.__cause__, RuntimeError)
        assert checkpoint(admin, schema) == 0
        assert applied(admin, schema) == []
    finally:
        worker.close()


def test_dead_letter_policy_records_the_event_and_moves_past_it(service: WorkflowService, admin: Conn) -> None:
    schema = service.store.schema  # type: ignore[attr-defined]
    projection = counter_projection(schema, fail_on=lambda e: e.workflow_id == "bad")
    worker = ProjectionWorker(
        service, [projection], retry=ProjectionRetry(max_attempts=2, initial=0.0, on_error=OnError.DEAD_LETTER)
    )
    try:
        service.execute(Add("good", 1))
        bad = service.execute(Add("bad", 5)).events[0].position
        last = service.execute(Add("bad", 1)).events[0].position
        drain(worker, last)
        letters = worker.control.dead_letters(NAME)
        # Both events of "bad" fail twice and are dead-lettered: each is recorded, none is lost silently.
        assert [(d.workflow_id, d.seq, d.position, d.attempts) for d in letters] == [
            ("bad", 1, bad, 2),
            ("bad", 2, last, 2),
        ]
        assert "handler refuses bad#1" in letters[0].error
        assert [r[0] for r in applied(admin, schema)] == ["good"]
        assert checkpoint(admin, schema) == last
    finally:
        worker.close()


def test_rebuild_gives_the_same_read_model_as_the_live_run(
    service: WorkflowService, worker: ProjectionWorker, admin: Conn
) -> None:
    schema = worker.store.schema
    last = 0
    for i in range(60):
        last = service.execute(Add(f"c{i % 7}", i + 1)).events[0].position
        if i % 20 == 19:
            drain(worker, last)  # live: several catch-ups interleaved with writes
    service.execute(Finish("c3"))
    last = service.execute(Add("c4", 100)).events[0].position
    drain(worker, last)
    live_totals, live_applied = totals(admin, schema), applied(admin, schema)
    worker.control.rebuild(worker._tracks[NAME].projection)
    assert totals(admin, schema) == {} and checkpoint(admin, schema) == 0
    drain(worker, last)
    assert totals(admin, schema) == live_totals
    assert sorted(applied(admin, schema)) == sorted(live_applied)


def test_a_rebuild_waits_for_the_batch_in_flight_and_its_reset_is_not_overwritten(
    service: WorkflowService, admin: Conn
) -> None:
    """A batch holds its checkpoint row from the start: a rebuild asked for meanwhile is seen waiting for
    the batch (pg_blocking_pids), then resets the checkpoint after the batch committed, so the batch's
    checkpoint cannot overwrite the reset."""
    schema = service.store.schema  # type: ignore[attr-defined]
    inside, release = threading.Event(), threading.Event()
    base = counter_projection(schema)

    def pausing(event: RecordedEvent[Any], conn: psycopg.Connection[Any]) -> None:
        inside.set()
        release.wait(30)
        assert base.handler is not None
        base.handler(event, conn)

    worker = ProjectionWorker(service, [attrs.evolve(base, handler=pausing)], worker_id=f"rebuild-{schema}")
    blocked_by_worker = (
        "SELECT count(*) FROM pg_stat_activity w JOIN pg_stat_activity b ON b.pid = ANY(pg_blocking_pids(w.pid)) "
        "WHERE b.application_name = %s"
    )
    app_name = f"ironflow_py.projections {worker.worker_id}"[:63]
    try:
        service.execute(Add("r", 1))
        wait_for_horizon(admin, schema)
        batch = threading.Thread(target=worker.run_once)
        batch.start()
        assert inside.wait(30)
        rebuild = threading.Thread(target=worker.control.rebuild, args=(NAME,))
        rebuild.start()
        deadline = time.monotonic() + 30
        while rebuild.is_alive() and admin.execute(blocked_by_worker, (app_name,)).fetchone() != (1,):
            assert time.monotonic() < deadline, "the rebuild neither finished nor waited"
            time.sleep(0.01)  # polling a condition, not ordering events
        waited = rebuild.is_alive()
        release.set()
        batch.join(30)
        rebuild.join(30)
    finally:
        release.set()
        worker.close()
    assert waited, "the rebuild ran while a batch was in flight"
    assert checkpoint(admin, schema) == 0, "the rebuild's reset came last"


def test_status_reports_lag_and_a_horizon_held_back_by_an_open_transaction(
    service: WorkflowService, worker: ProjectionWorker, pg_url: str
) -> None:
    first = service.execute(Add("a", 1)).events[0].position
    drain(worker, first)
    with psycopg.connect(pg_url) as blocker:
        blocker.execute("SELECT pg_current_xact_id()")  # holds an xid: the horizon cannot pass it
        held = [service.execute(Add("a", 1)).events[0].position for _ in range(3)]
        assert worker.run_until_idle() == 0
        status = worker.control.status([NAME])[0]
        assert status.position == first and status.lag_events >= 3 and status.lag_seconds is not None
        assert status.horizon.held_back and status.horizon.held_back_events >= 3
        assert status.horizon.blocker_pid is not None
        assert not worker.control.caught_up(NAME, held[0])
        blocker.rollback()
    drain(worker, held[-1])
    status = worker.control.status([NAME])[0]
    assert status.applied == 4 and status.lag_events == 0 and status.lag_seconds is None


def test_wait_until_caught_up_returns_false_on_timeout_and_true_once_applied(
    service: WorkflowService, worker: ProjectionWorker
) -> None:
    position = service.execute(Add("w", 1)).events[0].position
    assert worker.wait_until_caught_up(NAME, position, 0.01) is False
    drain(worker, position)
    assert worker.wait_until_caught_up(NAME, position, 0.01) is True


def test_in_memory_fold_matches_the_worker_and_filters_by_event_class(service: WorkflowService) -> None:
    def add(total: int, event: RecordedEvent[Any]) -> int:
        return total + int(event.event.amount)

    memory = InMemoryProjection("sum_added", 0, add, event_classes=[Added])
    worker = ProjectionWorker(service, [memory.projection()])
    try:
        outcomes = [service.execute(Add("m", n)) for n in (3, 4)]
        outcomes.append(service.execute(Finish("m")))
        last = outcomes[-1].events[0].position
        while not worker.control.caught_up("sum_added", last):
            worker.run_until_idle()
        assert memory.state == 7
        assert memory.fold(e for o in outcomes for e in o.events) == 7
        assert memory.fold(service.history("counter", "m")) == 7
    finally:
        worker.close()


def test_the_worker_hands_integers_beyond_64_bits_over_exactly(service: WorkflowService) -> None:
    """The worker parses payloads with the store's loader (orjson when installed), which reads a number
    orjson would turn into a float with the stdlib instead: a handler sees exactly the integer decided."""

    class BigCounter(Counter):
        limit = 2**80

    big = WorkflowService(service.store, workflows=[BigCounter])
    seen: list[object] = []

    def add(total: int, event: RecordedEvent[Any]) -> int:
        seen.append(event.event.amount)
        return total + int(event.event.amount)

    memory = InMemoryProjection("sum_big", 0, add, event_classes=[Added])
    worker = ProjectionWorker(big, [memory.projection()])
    try:
        last = 0
        for n in (2**64, 2**70 + 1, 3):
            last = big.execute(Add("big", n)).events[0].position
        while not worker.control.caught_up("sum_big", last):
            worker.run_until_idle()
        assert seen == [2**64, 2**70 + 1, 3] and all(type(n) is int for n in seen)
        assert memory.state == 2**64 + 2**70 + 4
    finally:
        worker.close()


def test_a_second_worker_is_a_standby_until_the_first_closes(service: WorkflowService) -> None:
    schema = service.store.schema  # type: ignore[attr-defined]
    first = ProjectionWorker(service, [counter_projection(schema)], worker_id="first")
    second = ProjectionWorker(service, [counter_projection(schema)], worker_id="second")
    try:
        position = service.execute(Add("s", 1)).events[0].position
        first.run_once()
        assert first.leading == {NAME}
        assert second.run_once() == 0 and second.leading == frozenset()
        first.close()
        position = service.execute(Add("s", 1)).events[0].position
        while not second.control.caught_up(NAME, position):
            second.run_until_idle()
        assert second.leading == {NAME}
    finally:
        first.close()
        second.close()


def test_a_running_worker_is_woken_by_notify_not_by_its_poll_interval(service: WorkflowService, admin: Conn) -> None:
    """The event is appended once the worker sleeps (its session is seen idle after its last poll's
    query), with a poll interval of 600 s: only the append's NOTIFY can wake it."""
    schema = service.store.schema  # type: ignore[attr-defined]
    worker = ProjectionWorker(service, [counter_projection(schema)], poll_interval=600.0, worker_id=f"wake-{schema}")
    # The last statement before its sleep is projection_held_back (as sent: up to its first parameter).
    held_back = worker.store.q["projection_held_back"].split("%(")[0]
    sleeping = (
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND state = 'idle' AND left(query, %s) = %s"
    )
    last_poll = (f"ironflow_py.projections {worker.worker_id}"[:63], len(held_back), held_back)
    tail = threading.Thread(target=worker.run)
    tail.start()
    try:
        deadline = time.monotonic() + 30
        while admin.execute(sleeping, last_poll).fetchone() != (1,):
            assert time.monotonic() < deadline and tail.is_alive(), "the worker never went to sleep"
            time.sleep(0.01)  # polling a condition, not ordering events
        for amount in (1, 2, 3):
            position = service.execute(Add("live", amount)).events[0].position
            assert caught_up(worker, position)
    finally:
        worker.stop()
        tail.join(30)
    assert not tail.is_alive()
    assert worker.leading == frozenset()  # stop() closed the connection, releasing the lead


def test_a_committed_batch_notifies_callers_waiting_for_the_projection(
    service: WorkflowService, worker: ProjectionWorker, pg_url: str
) -> None:
    """wait_until_caught_up sleeps on the projection's channel; every committed batch must notify it."""
    position = service.execute(Add("n", 1)).events[0].position
    with psycopg.connect(pg_url, autocommit=True) as listener:
        listener.execute(sql.SQL("LISTEN {}").format(sql.Identifier(applied_channel(worker.store.schema))))
        drain(worker, position)
        received = list(listener.notifies(timeout=10, stop_after=1))
    assert [n.payload for n in received] == [NAME]


def test_worker_configuration_errors_are_typed(service: WorkflowService) -> None:
    with pytest.raises(ConfigurationError, match="PostgresStore"):
        ProjectionWorker(WorkflowService(MemoryStore(), workflows=[Counter]), [])
    with pytest.raises(ConfigurationError, match="no registered workflow declares event Add"):
        ProjectionWorker(service, [Projection("p", lambda e, c: None, event_classes=[Add])])
    with pytest.raises(ConfigurationError, match=r"workflow types \['nope'\] are not registered"):
        ProjectionWorker(service, [Projection("p", lambda e, c: None, workflow_types=["nope"])])
    with pytest.raises(ConfigurationError, match="unique"):
        ProjectionWorker(service, [Projection("p", lambda e, c: None), Projection("p", lambda e, c: None)])


def test_a_running_worker_picks_up_events_released_by_a_transaction_that_wrote_none(
    service: WorkflowService, pg_url: str
) -> None:
    """The append's NOTIFY arrives while an unrelated transaction holds the horizon; that transaction
    ends without any NOTIFY, and the worker must still apply the event long before its poll interval."""
    schema = service.store.schema  # type: ignore[attr-defined]
    worker = ProjectionWorker(service, [counter_projection(schema)], poll_interval=600.0)
    tail = threading.Thread(target=worker.run)
    with psycopg.connect(pg_url) as blocker:
        blocker.execute("SELECT pg_current_xact_id()")
        tail.start()
        try:
            position = service.execute(Add("held", 1)).events[0].position
            assert not worker.wait_until_caught_up(NAME, position, 0.2)
            blocker.rollback()
            assert caught_up(worker, position)
        finally:
            worker.stop()
            tail.join(30)


def test_a_horizon_released_between_the_read_and_the_sleep_does_not_strand_the_event(
    service: WorkflowService, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The transaction holding the horizon ends right after the worker's read found nothing (so no NOTIFY
    follows, and nothing is behind the horizon any more when the worker decides how long to sleep): the
    worker must still apply the event long before its 600 s poll interval."""
    schema = service.store.schema  # type: ignore[attr-defined]
    worker = ProjectionWorker(service, [counter_projection(schema)], poll_interval=600.0)
    with psycopg.connect(pg_url) as blocker:
        blocker.execute("SELECT pg_current_xact_id()")
        position = service.execute(Add("late", 1)).events[0].position

        def read_then_release(*args: Any) -> Any:
            result = real_batch(*args)
            if result.read == 0 and blocker.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                blocker.rollback()
            return result

        monkeypatch.setattr("ironflow_py.projections._worker.run_batch", read_then_release)
        tail = threading.Thread(target=worker.run)
        tail.start()
        try:
            assert caught_up(worker, position)
        finally:
            worker.stop()
            tail.join(30)


def test_an_unmigrated_schema_is_a_typed_error(pg_url: str, schema: str) -> None:
    with PostgresStore.connect(pg_url, schema=schema, max_size=2) as store:
        worker = ProjectionWorker(WorkflowService(store, workflows=[Counter]), [counter_projection(schema)])
        with pytest.raises(MigrationError, match="ironflow-py migrate"):
            worker.run()


def test_an_event_that_no_longer_decodes_is_a_handler_failure_naming_it(service: WorkflowService, admin: Conn) -> None:
    schema = service.store.schema  # type: ignore[attr-defined]
    worker = ProjectionWorker(service, [counter_projection(schema)], retry=ProjectionRetry(max_attempts=1))
    try:
        service.execute(Add("d", 1))  # decoded first: the fast path is warm when the bad one comes
        admin.execute(
            sql.SQL(
                "INSERT INTO {0}.events (workflow_type, workflow_id, seq, event_type, payload, recorded_at, bucket) "
                "VALUES ('counter', 'd', 2, 'counter.added/1', "
                "'{{\"amount\": \"many\", \"total\": 1}}', now(), {0}.instance_bucket('counter', 'd'))"
            ).format(sql.Identifier(schema))
        )
        with pytest.raises(ProjectionHandlerFailed, match="sequence 2") as info:
            run_until_raises(worker)
        cause = info.value.__cause__
        assert isinstance(cause, DecodeError) and (cause.workflow_id, cause.seq) == ("d", 2)
        assert checkpoint(admin, schema) == 0
    finally:
        worker.close()
