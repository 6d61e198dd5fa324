"""Upcasting on both stores: a row stored under an old name and shape is read through the workflow's
upcasters wherever it is decoded (folding, history, timer inputs, pending effects), and rewriting the rows
(`events upgrade`) changes nothing a cold rebuild sees."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ironflow_py import (
    Completed,
    DecodeError,
    EffectContext,
    EffectRegistry,
    InMemoryProjection,
    ManualClock,
    UnknownTypeName,
    WorkflowService,
)
from ironflow_py._log import get_log
from ironflow_py.effects._attempt import DEFAULT_TIMER_POLICY, Attempts
from ironflow_py.store.base import Store
from ironflow_py.upgrade import upgrade_events
from tests.upcast_workflows import (
    Email,
    Pay,
    Place,
    Placed,
    Receipt,
    ReceiptResult,
    RemindLater,
    Shop,
    ShopState,
    SnappyShop,
    plant_effect,
    plant_event,
    plant_outcome,
    plant_timer_input,
)

T0 = datetime(2030, 1, 1, tzinfo=UTC)


def cold(store: Store, *workflows: Any) -> WorkflowService:
    """No state cache: every read and decision rebuilds from the store, as a fresh process would."""
    return WorkflowService(store, workflows=list(workflows) or [Shop], state_cache_size=0, clock=ManualClock(T0))


def two_old_placed(store: Store, wtype: str = "shop") -> None:
    service = cold(store, SnappyShop) if wtype == "snappy-shop" else cold(store)
    for quantity in (1, 2, 4):
        service.execute(Place("o1", "tea", quantity))
    plant_event(store, wtype, "o1", 1, "shop.placed/1", {"sku": "tea", "qty": 10})  # two steps to /3
    plant_event(store, wtype, "o1", 2, "shop.placed/2", {"sku": "tea", "quantity": 20})  # one step


def drop_snapshot(store: Store, wtype: str, wid: str) -> None:
    snap = store.latest_snapshot(wtype, wid)
    if snap is not None:
        with store.locked(wtype, wid) as tx:
            assert tx.drop_snapshot(snap.seq)
    assert store.latest_snapshot(wtype, wid) is None


def test_old_events_decode_through_the_upcasters_in_history_state_and_decisions(store: Store) -> None:
    two_old_placed(store)
    service = cold(store)
    history = service.history("shop", "o1")
    assert [(r.seq, r.type_name, r.event) for r in history] == [
        (1, "shop.placed/3", Placed("tea", 10, 0)),
        (2, "shop.placed/3", Placed("tea", 20, 0)),
        (3, "shop.placed/3", Placed("tea", 4, 250)),
    ]
    assert service.state("shop", "o1") == ShopState(items=34, lines=3)
    # A projection of the history (the PostgreSQL projection worker: tests/integration/test_versioning.py).
    items = InMemoryProjection("items", 0, lambda n, r: n + r.event.quantity, event_classes=[Placed])
    assert items.fold(history) == 34
    assert service.execute(Place("o1", "tea", 1)).state == ShopState(items=35, lines=4)
    # Nothing stored was rewritten by reading it.
    assert [e.type_name for e in store.events("shop", "o1")][:2] == ["shop.placed/1", "shop.placed/2"]


def test_an_old_timer_input_and_an_old_pending_effect_decode_through_the_upcasters(store: Store) -> None:
    clock = ManualClock(T0)
    service = WorkflowService(store, workflows=[Shop], state_cache_size=0, clock=clock)
    placed = service.execute(Place("o1", "tea", 1))
    service.execute(RemindLater("o1", T0 + timedelta(minutes=1)))
    plant_timer_input(store, "shop", "o1", "remind", "shop.remind/1", {"order_id": "o1", "text": "call back"})
    plant_effect(store, placed.effect_ids[0], "shop.email/1", {"order_id": "o1", "address": "bob@example.com"})
    sent: list[Email] = []
    registry = EffectRegistry()

    @registry.handler(Email)
    def send(effect: Email, ctx: EffectContext) -> None:
        sent.append(effect)

    outbox = store.outbox("contract")
    attempts = Attempts(
        service,
        registry,
        outbox,
        clock,
        random.Random(0).random,
        timedelta(minutes=5),
        DEFAULT_TIMER_POLICY,
        get_log("t"),
    )
    clock.advance(timedelta(minutes=2))
    for claim in outbox.claim_effects(clock.now(), attempts.lease, 10):
        done = attempts.run_effect(claim)
        if done is not None:
            outbox.complete_effects([done[0]], clock.now())
    for timer in outbox.claim_timers(clock.now(), attempts.lease, 10):
        attempts.fire_timer(timer)
    assert sent == [Email("o1", "bob@example.com")]
    assert service.state("shop", "o1").reminders == ("call back",)


def test_events_upgrade_rewrites_old_rows_and_a_cold_rebuild_gives_the_same_state(store: Store) -> None:
    two_old_placed(store, "snappy-shop")
    drop_snapshot(store, "snappy-shop", "o1")  # it was written from the rows before they were planted
    service = cold(store, SnappyShop)
    before = service.state("snappy-shop", "o1")
    assert before == ShopState(items=34, lines=3)
    history_before = [(r.seq, r.type_name, r.event) for r in service.history("snappy-shop", "o1")]
    report = upgrade_events(service, "snappy-shop", batch=1)
    assert (report.instances, report.events) == (1, 2)
    assert [(e.type_name, e.data) for e in store.events("snappy-shop", "o1")][:2] == [
        ("shop.placed/3", {"sku": "tea", "quantity": 10, "unit_cents": 0}),
        ("shop.placed/3", {"sku": "tea", "quantity": 20, "unit_cents": 0}),
    ]
    # A second run finds nothing left to rewrite.
    assert upgrade_events(service, "snappy-shop").events == 0
    # Cold: no cache, no snapshot; the whole history folds from the rewritten rows.
    drop_snapshot(store, "snappy-shop", "o1")
    after = cold(store, SnappyShop)
    assert after.state("snappy-shop", "o1") == before
    assert [(r.seq, r.type_name, r.event) for r in after.history("snappy-shop", "o1")] == history_before


def test_a_name_neither_declared_nor_upcast_is_still_unknown(store: Store) -> None:
    cold(store).execute(Place("o1", "tea", 1))
    plant_event(store, "shop", "o1", 1, "shop.placed/0", {"sku": "tea"})
    with pytest.raises(UnknownTypeName, match=r"shop\.placed/0"):
        cold(store).history("shop", "o1")


def test_an_upcaster_that_raises_is_a_decode_error_naming_the_chain_not_the_value(store: Store) -> None:
    cold(store).execute(Place("o1", "tea", 1))
    plant_event(store, "shop", "o1", 1, "shop.placed/1", {"sku": "secret-sku-123"})  # no "qty": KeyError
    with pytest.raises(DecodeError, match=r"shop\.placed/1.*KeyError") as caught:
        cold(store).state("shop", "o1")
    assert "secret-sku-123" not in str(caught.value)
    assert caught.value.seq == 1


def test_an_old_outcome_result_decodes_through_the_upcasters(store: Store) -> None:
    service = cold(store, Receipt)
    service.execute(Pay("r1", 250))
    stored = store.instance("receipt", "r1")
    assert stored is not None and stored.outcome_data == {
        "status": "completed",
        "result": {"total_cents": 250, "currency": "EUR"},
        "result_type": "receipt.result/2",
    }
    assert service.result("receipt", "r1") == Completed(ReceiptResult(250, "EUR"))
    plant_outcome(
        store, "receipt", "r1", {"status": "completed", "result": {"total": 99}, "result_type": "receipt.result/1"}
    )
    assert service.result("receipt", "r1") == Completed(ReceiptResult(99, "EUR"))
    assert service.wait("receipt", "r1", timeout=5).unwrap() == ReceiptResult(99, "EUR")
    plant_outcome(
        store, "receipt", "r1", {"status": "completed", "result": {"total": 99}, "result_type": "receipt.result/0"}
    )
    with pytest.raises(UnknownTypeName, match=r"receipt\.result/0"):
        service.result("receipt", "r1")
