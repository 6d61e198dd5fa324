"""A shop workflow whose event, timer input and effect were renamed twice, with upcasters for the old names,
and a way to rewrite a stored row into an old shape in either store (raw SQL on PostgreSQL), as rows written
by last year's code would be."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import attrs
from psycopg import sql

from ironflow_py import Completed, Decision, MemoryStore, PostgresStore, Upcast, Workflow
from ironflow_py.store.base import Store, StoredEvent


@attrs.frozen
class Place:
    order_id: str
    sku: str
    quantity: int


@attrs.frozen
class Remind:
    order_id: str
    note: str


@attrs.frozen
class RemindLater:
    order_id: str
    at: datetime


@attrs.frozen
class Placed:
    sku: str
    quantity: int
    unit_cents: int


@attrs.frozen
class Reminded:
    note: str


@attrs.frozen
class Email:
    order_id: str
    to: str


@attrs.frozen
class ShopState:
    items: int = 0
    lines: int = 0
    reminders: tuple[str, ...] = ()


def placed_v1(data: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """v1 called the quantity `qty`."""
    rest = {k: v for k, v in data.items() if k != "qty"}
    return "shop.placed/2", {**rest, "quantity": data["qty"]}


def placed_v2(data: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """v3 added the unit price; older orders had none recorded."""
    return "shop.placed/3", {**data, "unit_cents": 0}


def remind_v1(data: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """v1 of the timer input called the note `text`."""
    return "shop.remind/2", {"order_id": data["order_id"], "note": data["text"]}


def email_v1(data: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """v1 of the effect called the address `address`."""
    return "shop.email/2", {"order_id": data["order_id"], "to": data["address"]}


class Shop(Workflow[ShopState, Place | Remind | RemindLater, Placed | Reminded, Email]):
    type = "shop"
    inputs = {"shop.place/1": Place, "shop.remind/2": Remind, "shop.remind_later/1": RemindLater}
    events = {"shop.placed/3": Placed, "shop.reminded/1": Reminded}
    effects = {"shop.email/2": Email}
    upcasters = {
        "shop.placed/1": Upcast(placed_v1, to="shop.placed/2"),
        "shop.placed/2": Upcast(placed_v2, to="shop.placed/3"),
        "shop.remind/1": remind_v1,  # a bare function: its target is checked when it runs
        "shop.email/1": Upcast(email_v1, to="shop.email/2"),
    }

    def initial_state(self) -> ShopState:
        return ShopState()

    def workflow_id(self, input: Place | Remind | RemindLater) -> str:
        return input.order_id

    def evolve(self, state: ShopState, event: Placed | Reminded) -> ShopState:
        if isinstance(event, Placed):
            return attrs.evolve(state, items=state.items + event.quantity, lines=state.lines + 1)
        return attrs.evolve(state, reminders=(*state.reminders, event.note))

    def decide(self, now: datetime, state: ShopState, input: Place | Remind | RemindLater) -> Decision[Any, Email]:
        if isinstance(input, Place):
            return Decision.accept(Placed(input.sku, input.quantity, 250)).with_effect(
                Email(input.order_id, "ada@example.com")
            )
        if isinstance(input, RemindLater):
            return Decision.accept().with_timer("remind", input.at, Remind(input.order_id, "soon"))
        return Decision.accept(Reminded(input.note))


class SnappyShop(Shop):
    """The same shop, snapshotting every 2 events."""

    type = "snappy-shop"
    snapshot_every = 2


#: What each old name looked like, for `check_upcasters` and for planting rows.
OLD_SAMPLES: dict[str, dict[str, Any]] = {
    "shop.placed/1": {"sku": "tea", "qty": 3},
    "shop.placed/2": {"sku": "tea", "quantity": 3},
    "shop.remind/1": {"order_id": "o1", "text": "call back"},
    "shop.email/1": {"order_id": "o1", "address": "ada@example.com"},
}


def _pg(store: PostgresStore, statement: str, *params: Any) -> int:
    with store.pool.connection() as conn:
        return conn.execute(sql.SQL(statement).format(sql.Identifier(store.schema)), params).rowcount


def plant_event(store: Store, wtype: str, wid: str, seq: int, name: str, data: Any) -> None:
    """Overwrite event `seq` of an instance with `name` and `data`, as old code would have stored it."""
    if isinstance(store, MemoryStore):
        rows = store._events[(wtype, wid)]
        old = rows[seq - 1]
        rows[seq - 1] = StoredEvent(old.seq, old.position, name, data, old.recorded_at)
        return
    assert isinstance(store, PostgresStore)
    changed = _pg(
        store,
        "UPDATE {}.events SET event_type = %s, payload = %s::jsonb "
        "WHERE workflow_type = %s AND workflow_id = %s AND seq = %s",
        name,
        json.dumps(data),
        wtype,
        wid,
        seq,
    )
    assert changed == 1


def plant_timer_input(store: Store, wtype: str, wid: str, key: str, name: str, data: Any) -> None:
    """Overwrite a scheduled timer's input with an old name and shape."""
    if isinstance(store, MemoryStore):
        timer = store._timers[(wtype, wid, key)]
        timer.input_type, timer.payload = name, data
        return
    assert isinstance(store, PostgresStore)
    changed = _pg(
        store,
        "UPDATE {}.timers SET input_type = %s, payload = %s::jsonb "
        "WHERE workflow_type = %s AND workflow_id = %s AND timer_key = %s",
        name,
        json.dumps(data),
        wtype,
        wid,
        key,
    )
    assert changed == 1


def plant_effect(store: Store, effect_id: int, name: str, data: Any) -> None:
    """Overwrite a pending effect with an old name and shape."""
    if isinstance(store, MemoryStore):
        row = store._outbox[effect_id]
        row.effect_type, row.payload = name, data
        return
    assert isinstance(store, PostgresStore)
    changed = _pg(
        store,
        "UPDATE {}.outbox SET effect_type = %s, payload = %s::jsonb WHERE id = %s",
        name,
        json.dumps(data),
        effect_id,
    )
    assert changed == 1


@attrs.frozen
class Pay:
    receipt_id: str
    cents: int


@attrs.frozen
class Paid:
    cents: int


@attrs.frozen
class ReceiptResult:
    total_cents: int
    currency: str


def receipt_v1(data: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """v1 results had `total` in cents and no currency."""
    return "receipt.result/2", {"total_cents": data["total"], "currency": "EUR"}


class Receipt(Workflow[int, Pay, Paid, object]):
    """Closes on its first payment; its result's shape changed once (`receipt.result/1` -> `/2`)."""

    type = "receipt"
    inputs = {"receipt.pay/1": Pay}
    events = {"receipt.paid/1": Paid}
    result_type = ReceiptResult
    result_name = "receipt.result/2"
    upcasters = {"receipt.result/1": Upcast(receipt_v1, to="receipt.result/2")}

    def initial_state(self) -> int:
        return 0

    def workflow_id(self, input: Pay) -> str:
        return input.receipt_id

    def evolve(self, state: int, event: Paid) -> int:
        return state + event.cents

    def outcome(self, state: int) -> Completed | None:
        return Completed(ReceiptResult(state, "EUR")) if state else None

    def decide(self, now: datetime, state: int, input: Pay) -> Decision[Paid, object]:
        return Decision.accept(Paid(input.cents))


def plant_outcome(store: Store, wtype: str, wid: str, data: Any) -> None:
    """Overwrite a closed instance's stored outcome, as old code would have stored it."""
    if isinstance(store, MemoryStore):
        ref = (wtype, wid)
        store._instances[ref] = attrs.evolve(store._instances[ref], outcome_data=data)
        return
    assert isinstance(store, PostgresStore)
    changed = _pg(
        store,
        "UPDATE {}.instances SET outcome = %s::jsonb WHERE workflow_type = %s AND workflow_id = %s",
        json.dumps(data),
        wtype,
        wid,
    )
    assert changed == 1
