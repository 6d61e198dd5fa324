"""A ledger for the failover tests: keyed deposits, one effect per deposit whose handler feeds back a
confirmation, and a SQL read model of the totals.

`Deposit(account, key, amount)` appends `Deposited` (the key is the input key) and emits `Confirm`; the
handler returns `Confirmed`, which appends `Acknowledged`. `Close(account)` ends the instance (for
waiters). `LedgerState` keeps every key in history order, so a test can count how often each was applied.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import datetime
from typing import Any

import attrs
import psycopg
from psycopg import sql

from ironflow_py import Decision, EffectContext, EffectRegistry, Projection, RecordedEvent, RetryPolicy, Workflow

PROJECTION = "ledger_totals"


@attrs.frozen
class Deposit:
    account: str
    key: str
    amount: int


@attrs.frozen
class Confirmed:
    account: str
    key: str


@attrs.frozen
class Close:
    account: str


@attrs.frozen
class Deposited:
    key: str
    amount: int


@attrs.frozen
class Acknowledged:
    key: str


@attrs.frozen
class Closed:
    total: int


@attrs.frozen
class Confirm:
    account: str
    key: str


@attrs.frozen
class LedgerState:
    total: int = 0
    keys: tuple[str, ...] = ()
    acked: tuple[str, ...] = ()
    closed: bool = False


LedgerInput = Deposit | Confirmed | Close
LedgerEvent = Deposited | Acknowledged | Closed


class Ledger(Workflow[LedgerState, LedgerInput, LedgerEvent, Confirm]):
    type = "ledger"
    inputs = {"ledger.deposit/1": Deposit, "ledger.confirmed/1": Confirmed, "ledger.close/1": Close}
    events = {"ledger.deposited/1": Deposited, "ledger.acknowledged/1": Acknowledged, "ledger.closed/1": Closed}
    effects = {"ledger.confirm/1": Confirm}

    def initial_state(self) -> LedgerState:
        return LedgerState()

    def workflow_id(self, input: LedgerInput) -> str:
        return input.account

    def input_key(self, input: LedgerInput) -> str | None:
        return input.key if isinstance(input, Deposit) else None

    def is_terminal(self, state: LedgerState) -> bool:
        return state.closed

    def evolve(self, state: LedgerState, event: LedgerEvent) -> LedgerState:
        if isinstance(event, Deposited):
            return attrs.evolve(state, total=state.total + event.amount, keys=(*state.keys, event.key))
        if isinstance(event, Acknowledged):
            return attrs.evolve(state, acked=(*state.acked, event.key))
        return attrs.evolve(state, closed=True)

    def decide(self, now: datetime, state: LedgerState, input: LedgerInput) -> Decision[LedgerEvent, Confirm]:
        if isinstance(input, Deposit):
            return Decision.accept(Deposited(input.key, input.amount)).with_effect(Confirm(input.account, input.key))
        if isinstance(input, Confirmed):
            return Decision.accept(Acknowledged(input.key))
        return Decision.accept(Closed(state.total))


class Handled:
    """Every run of the `Confirm` handler: key -> runs, and (key, monotonic time) of each run."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.runs: Counter[str] = Counter()
        self.times: list[tuple[str, float]] = []

    def registry(self) -> EffectRegistry:
        """The handlers; retries are quick and plenty (an outage may cost an attempt, design/effects.md)."""
        registry = EffectRegistry(default_policy=RetryPolicy(max_attempts=20, base_delay=0.2, max_delay=1.0))

        @registry.handler(Confirm)
        def confirm(effect: Confirm, ctx: EffectContext) -> Confirmed:
            with self.lock:
                self.runs[effect.key] += 1
                self.times.append((effect.key, time.monotonic()))
            return Confirmed(effect.account, effect.key)

        return registry


def create_read_model(conn: psycopg.Connection[Any], schema: str) -> None:
    """`ledger_totals`: per account the total, the deposits and the acknowledgements projected."""
    conn.execute(
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {}.ledger_totals (account text PRIMARY KEY, total bigint NOT NULL, "
            "deposits bigint NOT NULL, acks bigint NOT NULL)"
        ).format(sql.Identifier(schema))
    )


def ledger_projection(schema: str, applied_at: list[tuple[str, float]]) -> Projection:
    """Folds the ledger's events into `ledger_totals`; `applied_at` gets (deposit key, monotonic time) of each
    `Deposited` handled."""
    upsert = sql.SQL(
        "INSERT INTO {}.ledger_totals AS t (account, total, deposits, acks) VALUES (%s, %s, %s, %s) "
        "ON CONFLICT (account) DO UPDATE SET total = t.total + EXCLUDED.total, "
        "deposits = t.deposits + EXCLUDED.deposits, acks = t.acks + EXCLUDED.acks"
    ).format(sql.Identifier(schema))

    def handle(event: RecordedEvent[Any], conn: psycopg.Connection[Any]) -> None:
        if isinstance(event.event, Deposited):
            applied_at.append((event.event.key, time.monotonic()))
            conn.execute(upsert, (event.workflow_id, event.event.amount, 1, 0))
        elif isinstance(event.event, Acknowledged):
            conn.execute(upsert, (event.workflow_id, 0, 0, 1))

    return Projection(PROJECTION, handle, workflow_types=["ledger"])


def read_model(conn: psycopg.Connection[Any], schema: str) -> dict[str, tuple[int, int, int]]:
    """account -> (total, deposits, acks) as projected."""
    rows = conn.execute(
        sql.SQL("SELECT account, total, deposits, acks FROM {}.ledger_totals").format(sql.Identifier(schema))
    ).fetchall()
    return {r[0]: (int(r[1]), int(r[2]), int(r[3])) for r in rows}
