"""The effect runtime in process on real PostgreSQL, with an injected clock and seeded jitter."""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from ironflow_py import (
    ConfigurationError,
    DeadLetters,
    EffectContext,
    EffectRegistry,
    EffectRuntime,
    LeaseLost,
    ManualClock,
    MemoryStore,
    NotFound,
    PostgresStore,
    RetryPolicy,
    SchemaNotMigrated,
    WorkflowService,
)
from ironflow_py.cli import main
from tests.effect_app import FAST_FAIL, Job, Start, Tally, Work, WorkDone, counting_listeners, make_registry

# Later than the wall clock: the CLI's retry stamps rows with real time, which must already be due.
T0 = datetime(2030, 5, 1, 9, 0, tzinfo=UTC)
Conn = psycopg.Connection[tuple[Any, ...]]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def service(pg_store: PostgresStore, clock: ManualClock) -> WorkflowService:
    return WorkflowService(pg_store, workflows=[Job, Tally], clock=clock)


def runtime(service: WorkflowService, registry: EffectRegistry, *, seed: int = 7, **kw: Any) -> EffectRuntime:
    return EffectRuntime(service, registry, rng=random.Random(seed), handle_signals=False, listen=False, **kw)


def outbox(admin: Conn, schema: str) -> list[tuple[Any, ...]]:
    return admin.execute(
        sql.SQL("SELECT id, status, attempts, available_at, locked_by, last_error FROM {}.outbox ORDER BY id").format(
            sql.Identifier(schema)
        )
    ).fetchall()


def test_returned_input_is_applied_and_the_effect_marked_done(
    service: WorkflowService, tmp_path: Path, admin: Conn, pg_store: PostgresStore
) -> None:
    service.execute(Start("j1", 3, "reply"))
    assert runtime(service, make_registry(tmp_path)).run_once() == 3
    assert sorted(service.state("job", "j1").recorded) == [0, 1, 2]
    rows = outbox(admin, pg_store.schema)
    assert [(r[1], r[2]) for r in rows] == [("done", 1)] * 3


def test_returned_input_for_another_workflow_routes_by_its_own_id(service: WorkflowService, tmp_path: Path) -> None:
    service.execute(Start("j2", 2, "other"))
    runtime(service, make_registry(tmp_path)).run_once()
    assert sorted(service.state("tally", "tally-j2")) == [0, 1]
    assert service.state("job", "j2").recorded == ()


def test_async_handlers_run_too(service: WorkflowService, tmp_path: Path) -> None:
    service.execute(Start("j3", 4, "", async_=True))
    runtime(service, make_registry(tmp_path), concurrency=2).run_once()
    assert sorted(service.state("job", "j3").recorded) == [0, 1, 2, 3]


def test_handlers_returning_nothing_are_marked_done_in_a_batch(
    service: WorkflowService, tmp_path: Path, admin: Conn, pg_store: PostgresStore
) -> None:
    service.execute(Start("j4", 250, "noop"))
    rt = runtime(service, make_registry(tmp_path), concurrency=4, batch_size=100)
    claimed = [rt.run_once() for _ in range(4)]
    assert claimed == [100, 100, 50, 0]  # one batch per round
    assert {r[1] for r in outbox(admin, pg_store.schema)} == {"done"}


def test_always_failing_handler_backs_off_then_dead_letters_and_the_workflow_is_told(
    service: WorkflowService,
    clock: ManualClock,
    tmp_path: Path,
    admin: Conn,
    pg_store: PostgresStore,
    pg_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    service.execute(Start("j5", 1, "fail"))
    rt = runtime(service, make_registry(tmp_path), seed=42)
    expected = random.Random(42)
    for attempt in (1, 2):
        assert rt.run_once() == 1
        (row,) = outbox(admin, pg_store.schema)
        cap = min(FAST_FAIL.max_delay, FAST_FAIL.base_delay * FAST_FAIL.factor ** (attempt - 1))
        delay = timedelta(seconds=cap * expected.random())
        assert (row[1], row[2], row[3], row[4]) == ("pending", attempt, clock.now() + delay, None)
        assert row[5] == "Retryable: downstream unavailable"
        assert rt.run_once() == 0  # not due before its backoff ends
        clock.advance(delay)
    assert rt.run_once() == 1
    (row,) = outbox(admin, pg_store.schema)
    assert (row[1], row[2]) == ("dead", 3)
    assert row[5] == "gave up after 3 attempts: Retryable: downstream unavailable"
    (abandoned,) = service.state("job", "j5").abandoned
    assert (abandoned.index, abandoned.error) == (0, row[5])
    dead = DeadLetters(pg_store)
    assert dead.count() == 1
    assert [d.id for d in dead.list()] == [row[0]]

    args = ["--database-url", pg_url, "--schema", pg_store.schema, "dead-letters"]
    assert main([*args, "list"]) == 0
    assert "gave up after 3 attempts" in capsys.readouterr().out
    assert main([*args, "retry", str(row[0])]) == 0
    assert main([*args, "retry", str(row[0])]) == 1  # no longer dead
    assert dead.count() == 0
    assert rt.run_once() == 1  # runs again, from attempt 1, with the same idempotency key
    traces = [line.split() for line in (tmp_path / "failed.log").read_text().splitlines()]
    assert [t[2] for t in traces] == ["1", "2", "3", "1"]
    assert len({t[3] for t in traces}) == 1


def test_permanent_error_dead_letters_at_once_and_discard_removes_it(
    service: WorkflowService, tmp_path: Path, admin: Conn, pg_store: PostgresStore
) -> None:
    service.execute(Start("j6", 1, "permanent"))
    runtime(service, make_registry(tmp_path)).run_once()
    ((effect_id, status, attempts, *_, error),) = outbox(admin, pg_store.schema)
    assert (status, attempts, error) == ("dead", 1, "Permanent: card declined")
    assert service.state("job", "j6").abandoned[0].error == "Permanent: card declined"
    dead = DeadLetters(pg_store)
    dead.discard(effect_id)
    assert outbox(admin, pg_store.schema) == []
    with pytest.raises(NotFound, match=str(effect_id)):
        dead.discard(effect_id)


def test_bad_rows_are_dead_lettered_with_a_clear_error_and_work_goes_on(
    service: WorkflowService, tmp_path: Path, admin: Conn, pg_store: PostgresStore
) -> None:
    insert = sql.SQL(
        "INSERT INTO {0}.outbox (workflow_type, workflow_id, effect_type, payload, available_at, created_at, bucket) "
        "SELECT %(t)s, %(i)s, %(e)s, %(p)s::jsonb, %(at)s, %(at)s, {0}.instance_bucket(%(t)s, %(i)s)"
    ).format(sql.Identifier(pg_store.schema))
    for wtype, etype, payload in [
        ("job", "job.unheard_of/1", "{}"),
        ("job", "job.work/1", '{"job_id": "x", "index": "not a number", "mode": "noop"}'),
        ("nobody", "job.work/1", "{}"),
    ]:
        admin.execute(insert, {"t": wtype, "i": "x", "e": etype, "p": payload, "at": T0})
    service.execute(Start("j7", 1, "reply"))
    runtime(service, make_registry(tmp_path)).run_once()
    rows = outbox(admin, pg_store.schema)
    assert [r[1] for r in rows] == ["dead", "dead", "dead", "done"]
    assert "'job.unheard_of/1'" in rows[0][5] and "not declared" in rows[0][5]
    assert "does not match Work" in rows[1][5]
    assert "'nobody' is not registered" in rows[2][5]
    assert service.state("job", "j7").recorded == (0,)


def test_an_effect_class_without_a_handler_is_dead_lettered(
    service: WorkflowService, admin: Conn, pg_store: PostgresStore
) -> None:
    service.execute(Start("j8", 1, "noop"))
    runtime(service, EffectRegistry()).run_once()
    (row,) = outbox(admin, pg_store.schema)
    assert row[1] == "dead"
    assert row[5].startswith("no handler is registered for effect Work")


def test_heartbeat_extends_the_lease_and_a_lost_claim_applies_nothing(
    service: WorkflowService, clock: ManualClock, admin: Conn, pg_store: PostgresStore
) -> None:
    registry = EffectRegistry(default_policy=RetryPolicy(max_attempts=5, jitter=False))
    lease_query = sql.SQL("SELECT locked_until, available_at FROM {}.outbox").format(sql.Identifier(pg_store.schema))
    # What the handler saw, asserted after the run: the runtime turns a failed assertion inside a handler
    # into a retry and a log line, so nothing may be asserted in there.
    seen: dict[str, Any] = {}

    @registry.handler(Work)
    def work(effect: Work, ctx: EffectContext) -> object:
        clock.advance(timedelta(seconds=50))
        seen["returned"] = ctx.heartbeat()  # lease 60 s: now + 60
        seen["stored"] = admin.execute(lease_query).fetchone()
        # Another worker takes the row over (as if our lease had expired).
        admin.execute(
            sql.SQL("UPDATE {}.outbox SET locked_by = 'other', attempts = attempts + 1").format(
                sql.Identifier(pg_store.schema)
            )
        )
        try:
            seen["after_loss"] = ctx.heartbeat()
        except LeaseLost as exc:
            seen["after_loss"] = exc
        return WorkDone(effect.job_id, effect.index)

    service.execute(Start("j9", 1, "noop"))
    runtime(service, registry, lease=60).run_once()
    extended = T0 + timedelta(seconds=110)
    assert seen["returned"] == extended
    assert seen["stored"] == (extended, extended), "the heartbeat wrote the new lease end, not just returned it"
    assert isinstance(seen["after_loss"], LeaseLost), "a heartbeat on a lost claim raises LeaseLost"
    (row,) = outbox(admin, pg_store.schema)
    assert (row[1], row[4]) == ("pending", "other")  # the other worker's claim is untouched
    assert service.state("job", "j9").recorded == ()  # and the returned input was not applied


def test_the_daemon_wakes_on_notify_and_stops_on_request(
    pg_url: str, schema: str, pg_store: PostgresStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a poll interval of an hour, only LISTEN/NOTIFY can make the effect run; the listener must have
    received the decision's notification (a first poll that happens to find the row proves nothing)."""
    listeners = counting_listeners(monkeypatch)
    service = WorkflowService(pg_store, workflows=[Job, Tally])
    rt = EffectRuntime(service, make_registry(tmp_path), handle_signals=False, poll_interval=3600)
    thread = threading.Thread(target=rt.run)
    thread.start()
    try:
        assert _wait(lambda: bool(listeners) and listeners[0].wakes >= 1), "the listener never connected"
        service.execute(Start("j10", 2, "reply"))
        assert _wait(lambda: listeners[0].wakes >= 2), "no notification reached the listener"
        assert _wait(lambda: sorted(service.state("job", "j10").recorded) == [0, 1])
    finally:
        rt.stop()
        thread.join(10)
    assert not thread.is_alive()


def _wait(predicate: Any, timeout: float = 10.0) -> bool:
    done = threading.Event()
    deadline = datetime.now(UTC) + timedelta(seconds=timeout)
    while datetime.now(UTC) < deadline:
        if predicate():
            return True
        done.wait(0.01)
    return False


def test_the_daemon_survives_its_connections_being_killed(
    pg_url: str, pg_store: PostgresStore, admin: Conn, tmp_path: Path
) -> None:
    """A database hiccup costs errors in the log, not the worker: work after it is still done."""
    app_name = f"ironflow_kill_{pg_store.schema}"
    caller = WorkflowService(pg_store, workflows=[Job, Tally])
    with PostgresStore.connect(pg_url, schema=pg_store.schema, application_name=app_name) as store:
        service = WorkflowService(store, workflows=[Job, Tally])
        rt = EffectRuntime(service, make_registry(tmp_path), handle_signals=False, listen=False, poll_interval=0.05)
        thread = threading.Thread(target=rt.run)
        thread.start()
        try:
            caller.execute(Start("before", 1, "reply"))
            assert _wait(lambda: caller.state("job", "before").recorded == (0,))
            killed = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = %s",
                (app_name,),
            ).fetchone()
            assert killed is not None and killed[0] >= 1  # the runtime's pooled connections are dead now
            caller.execute(Start("after", 1, "reply"))
            assert _wait(lambda: caller.state("job", "after").recorded == (0,))
            assert thread.is_alive()
        finally:
            rt.stop()
            thread.join(10)


def test_the_runtime_needs_postgres_and_sane_settings(service: WorkflowService) -> None:
    with pytest.raises(ConfigurationError, match="PostgresStore"):
        EffectRuntime(WorkflowService(MemoryStore(), workflows=[Job]), EffectRegistry())
    with pytest.raises(ConfigurationError, match="concurrency"):
        EffectRuntime(service, EffectRegistry(), concurrency=0)


def test_run_on_an_unmigrated_schema_fails_at_once_saying_to_migrate(pg_url: str, schema: str) -> None:
    with PostgresStore.connect(pg_url, schema=schema) as store:
        rt = runtime(WorkflowService(store, workflows=[Job, Tally]), make_registry(Path(".")))
        with pytest.raises(SchemaNotMigrated, match=r"is not migrated .*: run `ironflow-py migrate`"):
            rt.run()


def test_retrying_a_dead_letter_wakes_the_workers(
    service: WorkflowService, pg_store: PostgresStore, pg_url: str, tmp_path: Path
) -> None:
    """The revived row is due at once; its NOTIFY tells idle workers so, instead of their next poll."""
    service.execute(Start("j11", 1, "permanent"))
    runtime(service, make_registry(tmp_path)).run_once()
    (dead,) = DeadLetters(pg_store).list()
    with psycopg.connect(pg_url, autocommit=True) as listener:
        listener.execute(sql.SQL("LISTEN {}").format(sql.Identifier(pg_store.channel)))
        DeadLetters(pg_store).retry(dead.id)
        received = list(listener.notifies(timeout=10, stop_after=1))
    assert len(received) == 1


def test_released_claims_wake_the_other_workers(
    pg_store: PostgresStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker that hands back claims at shutdown notifies, so an idle worker (poll interval: an hour)
    takes them over at once."""
    listeners = counting_listeners(monkeypatch)
    service = WorkflowService(pg_store, workflows=[Job, Tally])
    service.execute(Start("j12", 1, "reply"))
    leaving = EffectRuntime(service, make_registry(tmp_path), handle_signals=False, listen=False)
    claims = leaving.outbox.claim_effects(service.clock.now(), timedelta(seconds=60), 10)
    assert len(claims) == 1
    idle = EffectRuntime(service, make_registry(tmp_path), handle_signals=False, poll_interval=3600)
    thread = threading.Thread(target=idle.run)
    thread.start()
    try:
        assert _wait(lambda: bool(listeners) and listeners[0].wakes >= 1), "the listener never connected"
        assert leaving.outbox.release_effects(claims, service.clock.now()) == {claims[0].id}
        assert _wait(lambda: listeners[0].wakes >= 2), "the release did not notify"
        assert _wait(lambda: service.state("job", "j12").recorded == (0,))
    finally:
        idle.stop()
        thread.join(10)
    assert not thread.is_alive()
