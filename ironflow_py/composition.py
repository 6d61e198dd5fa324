"""Composition, pure: child references, the reserved outbox rows that carry messages, and the `Join` helper.

A decision asks for a message (`Decision.send`, `send_to`) or a child (`Decision.start_child`) as data; the
engine queues it as an outbox row with a reserved type name and the effect worker delivers it, with an
input key derived from the row, so the target applies it exactly once (design/composition.md). `Join`
is kept in a parent's own state to collect results: fan-in needs no engine counter.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any, Generic, Literal, TypeVar

import attrs

from ironflow_py._names import names

#: What happens to an open child when its parent closes (any outcome): ask it to cancel (through its
#: `cancel_input`; the default), terminate it, or leave it running.
ParentClosePolicy = Literal["request_cancel", "terminate", "abandon"]
PARENT_CLOSE_POLICIES: tuple[str, ...] = ("request_cancel", "terminate", "abandon")
#: A child's run deadline: the earlier of its own `run_timeout` and its parent's run deadline
#: ("inherit", the default), or its own only ("own").
DeadlinePolicy = Literal["inherit", "own"]
DEADLINE_POLICIES: tuple[str, ...] = ("inherit", "own")

#: Reserved outbox row types: delivered by the effect worker itself, never by a user handler.
MESSAGE_ROW = "ironflow.message/1"
START_CHILD_ROW = "ironflow.start_child/1"
CHILD_CLOSED_ROW = "ironflow.child_closed/1"
PARENT_CLOSED_ROW = "ironflow.parent_closed/1"
#: The `Failed.code` a parent's `child_closed_input` receives for a child that rejected its first input:
#: that child was never created (its `detail` is the rejection reason).
START_REJECTED = "ironflow.start_rejected"
RESERVED_ROWS: frozenset[str] = frozenset({MESSAGE_ROW, START_CHILD_ROW, CHILD_CLOSED_ROW, PARENT_CLOSED_ROW})


@attrs.frozen
class ChildRef:
    """Which child closed, as `Workflow.child_closed_input` receives it.

    Attributes:
        workflow_type: The child's workflow type.
        workflow_id: The child's instance id (the `id` given to `Decision.start_child`).
    """

    workflow_type: str
    workflow_id: str


@attrs.frozen
class ParentLink:
    """The parent a child instance records when it is started (stored on the child's instance row).

    Attributes:
        workflow_type: The parent's workflow type.
        workflow_id: The parent's instance id.
        on_parent_close: The child's `ParentClosePolicy`.
    """

    workflow_type: str
    workflow_id: str
    on_parent_close: str = "request_cancel"


def delivery_key(owner_type: str, owner_id: str, row_id: int) -> str:
    """The input key under which a reserved outbox row's input is applied to its target, at most 60 bytes.

    Derived from the row alone, so every delivery of one row (a retry, a second worker after a lost
    lease, a crash between commit and acknowledgement) carries the same key and the target records the
    input once; a repeat returns `duplicate`. The owner is hashed so the key stays short whatever its id.

    Args:
        owner_type: The workflow type of the instance that queued the row.
        owner_id: That instance's id.
        row_id: The outbox row's id.

    Returns:
        ``ironflow.delivery/<16 hex digits>/<row id>``.
    """
    digest = hashlib.blake2b(f"{owner_type}\x1f{owner_id}".encode(errors="surrogatepass"), digest_size=8)
    return f"ironflow.delivery/{digest.hexdigest()}/{row_id}"


V = TypeVar("V")


@attrs.frozen
class Resolution(Generic[V]):
    """One resolved key of a `Join`: its value, or the error it failed with.

    Attributes:
        key: The key.
        value: The value it resolved to (None when it failed).
        error: Why it failed (None when it succeeded).
    """

    key: str
    value: V | None = None
    error: Any = None

    @property
    def ok(self) -> bool:
        """True unless the key failed."""
        return self.error is None


@attrs.frozen
class Join(Generic[V]):
    """A pure fan-in over named keys, kept in a workflow's state: `all`, `race` and `map` in one value.

    Register the keys when the work starts (`Join.of`, `Join.race`, `add` in a later decision) and
    `resolve` (or `fail`) one key per notice; the join is `done` when every key is resolved (or, for a
    race, the first). Resolutions are kept in arrival order, the first one per key wins, and `results`
    lists them in key order, so the order in which children finish never changes the result. Every method
    returns a new value. It round-trips through the codec when `V` does (declare the state field as
    `Join[YourResult]`).

    Attributes:
        keys: The registered keys, in registration order.
        resolved: The resolutions, in arrival order, at most one per key.
        need: How many resolutions complete the join: None for all keys, 1 for a race.
    """

    keys: tuple[str, ...] = ()
    resolved: tuple[Resolution[V], ...] = ()
    need: int | None = None
    # Derived indexes, never compared, printed or encoded (cattrs skips init=False fields): each key's
    # position in `keys` (shared by every join with the same keys, which never changes it) and a bit mask
    # of the positions resolved. Built on first use, then handed on by `_settle`, so resolving one key of a
    # 10,000-key join is a dict lookup and a bit, not a scan (benchmarks/children.py).
    _positions: dict[str, int] | None = attrs.field(default=None, init=False, eq=False, repr=False)
    _settled: int = attrs.field(default=-1, init=False, eq=False, repr=False)

    @staticmethod
    def of(keys: str | Iterable[str]) -> Join[Any]:
        """A join that is done when every key is resolved (the `all` and `map` patterns).

        Args:
            keys: The keys to wait for, in the order `results` lists them; repeats are kept once (a single
                string is one key).

        Returns:
            A new join.
        """
        return Join(tuple(dict.fromkeys(names(keys))))

    @staticmethod
    def race(keys: str | Iterable[str]) -> Join[Any]:
        """A join that is done at the first resolution (the `race` pattern); `first` is the winner.

        Args:
            keys: The competing keys (a single string is one key).

        Returns:
            A new join with `need` 1.
        """
        return Join(tuple(dict.fromkeys(names(keys))), need=1)

    def add(self, *keys: str) -> Join[V]:
        """Register more keys (for example children started by a later decision).

        Args:
            *keys: Keys to add; keys already registered are ignored.

        Returns:
            A new join; a join of all keys is not done until these resolve too.
        """
        return attrs.evolve(self, keys=tuple(dict.fromkeys((*self.keys, *keys))))

    def _index(self) -> tuple[dict[str, int], int]:
        """Each key's position and the mask of resolved positions, built once per value (a benign race)."""
        positions = self._positions
        if positions is None:
            positions = {k: i for i, k in enumerate(self.keys)}
            object.__setattr__(self, "_positions", positions)
        settled = self._settled
        if settled < 0:
            settled = 0
            for r in self.resolved:
                at = positions.get(r.key)  # a decoded join could hold a key it never registered
                settled |= 0 if at is None else 1 << at
            object.__setattr__(self, "_settled", settled)
        return positions, settled

    def _settle(self, resolution: Resolution[V]) -> Join[V]:
        positions, settled = self._index()
        bit = positions.get(resolution.key)
        if bit is None:
            raise ValueError(f"key {resolution.key!r} is not registered in this join (registered: {self.keys})")
        if settled >> bit & 1:
            return self  # the first resolution of a key wins: a repeated notice changes nothing
        # The one O(n) step left is the tuple copy below: a C memcpy of n pointers (about 20 µs at 10,000).
        new = Join(self.keys, (*self.resolved, resolution), self.need)
        object.__setattr__(new, "_positions", positions)
        object.__setattr__(new, "_settled", settled | 1 << bit)
        return new

    def resolve(self, key: str, value: V) -> Join[V]:
        """Record that `key` succeeded with `value`; a key resolved before keeps its first value.

        Args:
            key: A registered key.
            value: Its result.

        Returns:
            A new join (this one if the key was already resolved).

        Raises:
            ValueError: `key` is not registered.
        """
        return self._settle(Resolution(key, value))

    def fail(self, key: str, error: object) -> Join[V]:
        """Record that `key` failed with `error` (it counts as resolved); the first resolution wins.

        Args:
            key: A registered key.
            error: Why, any serializable value (not None).

        Returns:
            A new join (this one if the key was already resolved).

        Raises:
            ValueError: `key` is not registered, or `error` is None.
        """
        if error is None:
            raise ValueError("a failed key needs an error")
        return self._settle(Resolution(key, None, error))

    @property
    def done(self) -> bool:
        """True once enough keys are resolved: all of them, or `need` of them (a race: the first)."""
        need = len(self.keys) if self.need is None else min(self.need, len(self.keys))
        return bool(self.keys) and len(self.resolved) >= need

    @property
    def pending(self) -> tuple[str, ...]:
        """The registered keys not resolved yet, in registration order."""
        positions, settled = self._index()
        return tuple(k for k in self.keys if not settled >> positions[k] & 1)

    @property
    def results(self) -> tuple[V | None, ...]:
        """The resolved values in key order (registration order), whatever order they arrived in.

        A failed key contributes None; see `failed` for why.
        """
        by_key = {r.key: r.value for r in self.resolved}
        return tuple(by_key[k] for k in self.keys if k in by_key)

    @property
    def first(self) -> Resolution[V] | None:
        """The first resolution that arrived (a race's winner), or None."""
        return self.resolved[0] if self.resolved else None

    @property
    def failed(self) -> tuple[Resolution[V], ...]:
        """The resolutions that failed, in key order."""
        positions, _ = self._index()
        return tuple(sorted((r for r in self.resolved if not r.ok), key=lambda r: positions[r.key]))
