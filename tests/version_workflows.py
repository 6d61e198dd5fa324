"""Workflows for versions side by side and continue-as-new: an order in two versions, a long-lived ledger."""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Any

import attrs

from ironflow_py import Decision, Upcast, Workflow
from ironflow_py.lifecycle import Completed, RunOutcome
from ironflow_py.store.base import Loaded, Store, Transaction


@attrs.frozen
class Place:
    order_id: str
    amount: int


@attrs.frozen
class Charged:
    order_id: str


@attrs.frozen
class Expedite:
    """Only version 2 accepts it."""

    order_id: str


@attrs.frozen
class Placed:
    amount: int


@attrs.frozen
class Paid:
    amount: int


@attrs.frozen
class Expedited:
    pass


@attrs.frozen
class Charge:
    order_id: str
    amount: int


@attrs.frozen
class OrderState:
    amount: int = 0
    paid: int | None = None
    expedited: bool = False
    folded_by: str = ""  # which version's evolve folded the order's placement


class OrderV1(Workflow[OrderState, Any, Any, Charge]):
    """Version 1: pays the full amount."""

    type = "vorder"
    version = "1"
    inputs = {"vorder.place/1": Place, "vorder.charged/1": Charged}
    events = {"vorder.placed/1": Placed, "vorder.paid/1": Paid}
    effects = {"vorder.charge/1": Charge}
    result_type = int

    def initial_state(self) -> OrderState:
        return OrderState()

    def evolve(self, state: OrderState, event: Any) -> OrderState:
        if isinstance(event, Placed):
            return attrs.evolve(state, amount=event.amount, folded_by=self.version)
        if isinstance(event, Paid):
            return attrs.evolve(state, paid=event.amount)
        if isinstance(event, Expedited):
            return attrs.evolve(state, expedited=True)
        return state

    def decide(self, now: datetime, state: OrderState, input: Any) -> Decision[Any, Any]:
        if isinstance(input, Place):
            return Decision.accept(Placed(input.amount), effects=[Charge(input.order_id, input.amount)])
        return Decision.accept(Paid(self.price(state)))

    def price(self, state: OrderState) -> int:
        return state.amount

    def workflow_id(self, input: Any) -> str:
        return str(input.order_id)

    def outcome(self, state: OrderState) -> RunOutcome | None:
        return None if state.paid is None else Completed(state.paid)


class OrderV2(OrderV1):
    """Version 2: a one-unit discount, and an input version 1 does not have."""

    version = "2"
    inputs = {**OrderV1.inputs, "vorder.expedite/1": Expedite}
    events = {**OrderV1.events, "vorder.expedited/1": Expedited}

    def decide(self, now: datetime, state: OrderState, input: Any) -> Decision[Any, Any]:
        if isinstance(input, Expedite):
            return Decision.accept(Expedited())
        return super().decide(now, state, input)

    def price(self, state: OrderState) -> int:
        # A state folded by version 1's evolve is a bug here: make it visible in the price.
        return state.amount - 1 if state.folded_by == "2" else state.amount + 100


def _placed_renamed(data: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Version 3 stores the placement under a new name; the shape is the same."""
    return "vorder.placed/2", data


class OrderV3(OrderV1):
    """Version 3: the placement is stored as `vorder.placed/2`, with an upcaster for version 1's name, which
    version 1 still writes and reads as its own."""

    version = "3"
    events = {"vorder.placed/2": Placed, "vorder.paid/1": Paid}
    upcasters = {"vorder.placed/1": Upcast(_placed_renamed, to="vorder.placed/2")}


class SnapshottingOrderV1(OrderV1):
    """Version 1, a snapshot after every event (versions 1 and 2 share `state_version`, so their snapshots)."""

    snapshot_every = 1


class SnapshottingOrderV2(OrderV2):
    snapshot_every = 1


class NamedOrderV1(OrderV1):
    """Version 1 with its own state names and stored result name (what inspection and `wait` show)."""

    result_name = "vorder.total/1"

    def state_name(self, state: OrderState) -> str:
        return "v1-paid" if state.paid is not None else "v1-open"


class NamedOrderV2(OrderV2):
    result_name = "vorder.total/2"

    def state_name(self, state: OrderState) -> str:
        return "v2-paid" if state.paid is not None else "v2-open"


@attrs.frozen
class Deposit:
    ledger_id: str
    amount: int = 1


@attrs.frozen
class CloseLedger:
    ledger_id: str


@attrs.frozen
class Deposited:
    amount: int


@attrs.frozen
class LedgerClosed:
    pass


@attrs.frozen
class LedgerState:
    balance: int = 0
    deposits: int = 0
    closed: bool = False


class Ledger(Workflow[LedgerState, Any, Any, Any]):
    """A long-lived id: every `run_length` deposits it continues as new, carrying its balance."""

    type = "ledger"
    inputs = {"ledger.deposit/1": Deposit, "ledger.close/1": CloseLedger}
    events = {"ledger.deposited/1": Deposited, "ledger.closed/1": LedgerClosed}
    result_type = int
    run_length = 3

    def initial_state(self) -> LedgerState:
        return LedgerState()

    def evolve(self, state: LedgerState, event: Any) -> LedgerState:
        if isinstance(event, Deposited):
            return attrs.evolve(state, balance=state.balance + event.amount, deposits=state.deposits + 1)
        if isinstance(event, LedgerClosed):
            return attrs.evolve(state, closed=True)
        raise TypeError(f"not a ledger event: {event!r}")  # the engine's markers must never come here

    def decide(self, now: datetime, state: LedgerState, input: Any) -> Decision[Any, Any]:
        if isinstance(input, CloseLedger):
            return Decision.accept(LedgerClosed())
        decision: Decision[Any, Any] = Decision.accept(Deposited(input.amount))
        if (state.deposits + 1) % self.run_length == 0:
            return decision.continue_as_new()
        return decision

    def workflow_id(self, input: Any) -> str:
        return str(input.ledger_id)

    def outcome(self, state: LedgerState) -> RunOutcome | None:
        return Completed(state.balance) if state.closed else None


class CountingStore:
    """Wraps a store and records what every locked transaction's `load` returned (both adapters)."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.loads: list[Loaded] = []
        #: Sequences read by `events_after` (a replay past a cache or snapshot that did not fit).
        self.replays: list[int] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def locked(self, *args: Any, **kwargs: Any) -> Any:
        outer = self

        @contextlib.contextmanager
        def block() -> Any:
            with self.inner.locked(*args, **kwargs) as tx:
                yield _CountingTx(tx, outer)

        return block()


class _CountingTx:
    def __init__(self, tx: Transaction, owner: CountingStore) -> None:
        self._tx = tx
        self._owner = owner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tx, name)

    def load(self, *, after_seq: int = 0, with_snapshot: bool = False, known_gen: int | None = None) -> Loaded:
        loaded = self._tx.load(after_seq=after_seq, with_snapshot=with_snapshot, known_gen=known_gen)
        self._owner.loads.append(loaded)
        return loaded

    def events_after(self, seq: int) -> Any:
        rows = self._tx.events_after(seq)
        self._owner.replays.extend(e.seq for e in rows)
        return rows
