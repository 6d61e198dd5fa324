"""Values PostgreSQL would refuse or silently change are refused (or normalised) before any write, the same
way on MemoryStore and PostgresStore (design/reliability.md, class 1)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import attrs
import pytest

from ironflow_py import Decision, EncodeError, InvalidWorkflowId, ManualClock, OutcomeStatus, Workflow, WorkflowService
from ironflow_py.store.base import Store
from ironflow_py.values import MAX_KEY_BYTES, text_problem

T0 = datetime(2026, 10, 30, 12, 0, tzinfo=UTC)
NEW_YORK = ZoneInfo("America/New_York")


@attrs.frozen
class Put:
    vid: str
    value: Any = None
    key: str | None = None
    timer_key: str | None = None
    at: datetime | None = None


@attrs.frozen
class Next:
    """Compute the next daily reminder from the stored one (wall-clock arithmetic in its zone)."""

    vid: str


@attrs.frozen
class Stored:
    value: Any
    at: datetime | None = None


@attrs.frozen
class Echo:
    value: Any


@attrs.frozen
class Vault:
    values: tuple[Any, ...] = ()
    at: datetime | None = None


class VaultWorkflow(Workflow[Vault, Put | Next, Stored, Echo]):
    type = "vault"
    inputs = {"vault.put/1": Put, "vault.next/1": Next}
    events = {"vault.stored/1": Stored}
    effects = {"vault.echo/1": Echo}

    def initial_state(self) -> Vault:
        return Vault()

    def workflow_id(self, input: Put | Next) -> str:
        return input.vid

    def input_key(self, input: Put | Next) -> str | None:
        return input.key if isinstance(input, Put) else None

    def evolve(self, state: Vault, event: Stored) -> Vault:
        return Vault((*state.values, event.value), event.at or state.at)

    def decide(self, now: datetime, state: Vault, input: Put | Next) -> Decision[Stored, Echo]:
        if isinstance(input, Next):
            assert state.at is not None
            return Decision.accept(Stored("next", state.at + timedelta(days=1)))
        decision = Decision.accept(Stored(input.value, input.at)).with_effect(Echo(input.value))
        if input.timer_key is not None:
            decision = decision.with_timer(input.timer_key, now + timedelta(hours=1), Put(input.vid, input.value))
        return decision


@pytest.fixture
def service(store: Store) -> WorkflowService:
    return WorkflowService(store, workflows=[VaultWorkflow], clock=ManualClock(T0))


def nothing_written(service: WorkflowService, store: Store, vid: str) -> None:
    assert service.list_instances("vault") == []
    if text_problem(vid) is None:  # PostgreSQL cannot even be asked about an id holding NUL
        assert service.history("vault", vid) == []
        assert store.effects("vault", vid) == []
        assert store.timers("vault", vid) == []


@pytest.mark.parametrize(
    ("value", "path"),
    [
        ("a\x00b", "$.value"),  # the example: NUL in a string
        ({"k\x00": 1}, "$.value[<key>]"),  # NUL in a dict key
        (["ok", "\ud800"], "$.value[1]"),  # a lone surrogate: not UTF-8
        ({"deep": [{"x": "\udfff!"}]}, "$.value.deep[0].x"),
        (float("nan"), "$.value"),
        ({"n": float("-inf")}, "$.value.n"),
    ],
)
def test_a_value_postgres_refuses_is_an_encode_error_naming_the_path_and_nothing_is_written(
    service: WorkflowService, store: Store, value: object, path: str
) -> None:
    with pytest.raises(EncodeError) as info:
        service.execute(Put("v1", value))
    error = info.value
    assert (error.workflow_type, error.workflow_id, error.type_name, error.path) == (
        "vault",
        "v1",
        "vault.stored/1",  # the event is encoded first
        path,
    )
    assert path in str(error)
    nothing_written(service, store, "v1")


def test_a_refused_value_in_a_timer_input_is_an_encode_error(service: WorkflowService, store: Store) -> None:
    """A timer's input goes through the same check (`Put.value` is the refused part)."""

    class TimerOnly(VaultWorkflow):
        def decide(self, now: datetime, state: Vault, input: Put | Next) -> Decision[Stored, Echo]:
            assert isinstance(input, Put)
            return Decision.accept(Stored("fine")).with_timer("t", now, Put(input.vid, input.value))

    svc = WorkflowService(store, workflows=[TimerOnly])
    with pytest.raises(EncodeError) as info:
        svc.execute(Put("v1", {"a": "\x00"}))
    assert (info.value.type_name, info.value.path) == ("vault.put/1", "$.value.a")
    nothing_written(svc, store, "v1")


@pytest.mark.parametrize(
    "vid",
    [
        "a\x00b",  # the example
        "\ud800",
        "é" * 257,  # 257 characters is under the limit, 514 bytes is over: bytes are what count
        "x" * (MAX_KEY_BYTES + 1),
        "",
    ],
)
def test_an_instance_id_postgres_would_refuse_is_invalid_before_any_write(
    service: WorkflowService, store: Store, vid: str
) -> None:
    with pytest.raises(InvalidWorkflowId) as info:
        service.execute(Put(vid, 1))
    assert info.value.workflow_type == "vault"
    assert vid == "" or vid not in str(info.value), "the id itself is not repeated in the message"
    nothing_written(service, store, vid)


@pytest.mark.parametrize("key", ["k\x00", "\udc00", "é" * 257])
def test_an_input_key_postgres_would_refuse_is_invalid_before_any_write(
    service: WorkflowService, store: Store, key: str
) -> None:
    with pytest.raises(InvalidWorkflowId, match="input key"):
        service.execute(Put("v1", 1, key=key))
    with pytest.raises(InvalidWorkflowId, match="input key"):
        service.execute(Put("v1", 1), input_key=key)
    nothing_written(service, store, "v1")


@pytest.mark.parametrize("timer_key", ["t\x00", "é" * 257])
def test_a_timer_key_postgres_would_refuse_is_an_encode_error(
    service: WorkflowService, store: Store, timer_key: str
) -> None:
    with pytest.raises(EncodeError, match="timer key"):
        service.execute(Put("v1", 1, timer_key=timer_key))
    nothing_written(service, store, "v1")


def test_ids_and_keys_at_the_byte_limit_are_stored(service: WorkflowService, store: Store) -> None:
    """512 bytes fit the unique indexes (instances, input_keys, timers) on PostgreSQL."""
    vid = "é" * (MAX_KEY_BYTES // 2)
    key = "k" * MAX_KEY_BYTES
    first = service.execute(Put(vid, 1, key=key, timer_key="ü" * (MAX_KEY_BYTES // 2)))
    again = service.execute(Put(vid, 1, key=key))
    assert (first.status, again.status) == (OutcomeStatus.ACCEPTED, OutcomeStatus.DUPLICATE)
    assert [e.event for e in service.history("vault", vid)] == [Stored(1)]
    assert [t.key for t in store.timers("vault", vid)] == ["ü" * (MAX_KEY_BYTES // 2)]


def test_an_explicit_input_key_makes_any_input_idempotent(service: WorkflowService) -> None:
    first = service.execute(Put("v1", 1), input_key="req-7")
    again = service.execute(Put("v1", 1), input_key="req-7")
    other = service.execute(Put("v1", 2), input_key="req-8")
    assert [first.status, again.status, other.status] == [
        OutcomeStatus.ACCEPTED,
        OutcomeStatus.DUPLICATE,
        OutcomeStatus.ACCEPTED,
    ]
    assert service.state("vault", "v1").values == (1, 2)


@pytest.mark.parametrize(
    "number",
    [
        1e16,  # jsonb writes 1e+16 back as 10000000000000000: an int
        1e300,
        -2.5e-7,
        123.0,
    ],
)
def test_floats_come_back_as_the_same_floats_on_both_stores(service: WorkflowService, number: float) -> None:
    service.execute(Put("v1", {"n": number, "list": [number]}))
    (event,) = service.history("vault", "v1")
    back = event.event.value
    assert back == {"n": number, "list": [number]}
    assert type(back["n"]) is float and type(back["list"][0]) is float


def test_negative_zero_is_stored_as_zero_on_both_stores(service: WorkflowService) -> None:
    """numeric has no negative zero; MemoryStore stores what PostgreSQL gives back, an equal 0.0."""
    service.execute(Put("v1", -0.0))
    (event,) = service.history("vault", "v1")
    assert event.event.value == 0.0 and str(event.event.value) == "0.0"


@pytest.mark.parametrize("cache", [10_000, 0], ids=["warm", "cold"])
def test_a_zoneinfo_datetime_keeps_its_zone_across_storage(store: Store, cache: int) -> None:
    """The issue's example: a daily 09:00 America/New_York reminder computed from a stored value before
    the November change of clocks is 14:00Z whether the state came from the cache or from storage."""
    service = WorkflowService(store, workflows=[VaultWorkflow], clock=ManualClock(T0), state_cache_size=cache)
    service.execute(Put("r1", "reminder", at=datetime(2026, 10, 31, 9, 0, tzinfo=NEW_YORK)))
    nxt = service.execute(Next("r1")).state.at
    assert nxt == datetime(2026, 11, 1, 14, 0, tzinfo=UTC)
    assert nxt.tzinfo is NEW_YORK and (nxt.hour, nxt.minute) == (9, 0)
    # A fresh service (a restart) reads the same zone back.
    restarted = WorkflowService(store, workflows=[VaultWorkflow], clock=ManualClock(T0))
    assert restarted.state("vault", "r1").at.tzinfo is NEW_YORK


@pytest.mark.parametrize(
    "at",
    [
        datetime(2026, 10, 31, 9, 0, tzinfo=timezone(timedelta(hours=-4))),  # a fixed offset stays fixed
        datetime(2026, 10, 31, 9, 0),  # a naive datetime stays naive
        datetime(2026, 10, 31, 9, 0, tzinfo=UTC),
    ],
    ids=["fixed-offset", "naive", "utc"],
)
def test_fixed_offset_and_naive_datetimes_come_back_with_the_same_tzinfo(store: Store, at: datetime) -> None:
    WorkflowService(store, workflows=[VaultWorkflow]).execute(Put("d1", "x", at=at))
    back = WorkflowService(store, workflows=[VaultWorkflow], state_cache_size=0).state("vault", "d1").at
    assert back == at and back.tzinfo == at.tzinfo and back.utcoffset() == at.utcoffset()


class _HomeMadeZone(tzinfo):
    """A tzinfo whose rules cannot be written down (like pytz or dateutil zones)."""

    def utcoffset(self, dt: datetime | None) -> timedelta:
        return timedelta(hours=2)

    def dst(self, dt: datetime | None) -> timedelta:
        return timedelta(0)

    def tzname(self, dt: datetime | None) -> str:
        return "HOME"


def test_a_datetime_in_a_zone_that_cannot_be_stored_is_refused(service: WorkflowService, store: Store) -> None:
    with pytest.raises(EncodeError, match="_HomeMadeZone zone cannot be stored"):
        service.execute(Put("z1", "x", at=datetime(2026, 1, 1, tzinfo=_HomeMadeZone())))
    nothing_written(service, store, "z1")
