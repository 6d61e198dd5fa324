"""What a user declares to keep a read model: a named handler over the global event stream.

A `Projection` receives each decoded event with its metadata (`RecordedEvent`) and the connection whose
transaction also moves the checkpoint, so the read model and the checkpoint commit together. An
`InMemoryProjection` is a pure fold over the same events, for tests and small derived views.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import attrs

from ironflow_py._names import names
from ironflow_py.errors import ConfigurationError
from ironflow_py.records import RecordedEvent

if TYPE_CHECKING:
    import psycopg

S = TypeVar("S")

Handler = Callable[[RecordedEvent[Any], "psycopg.Connection[Any]"], None]
BatchHandler = Callable[["psycopg.Connection[Any]", Sequence[RecordedEvent[Any]]], None]


class OnError(enum.StrEnum):
    """What a worker does once a handler has failed on one event `max_attempts` times.

    Attributes:
        STOP: Raise `ProjectionHandlerFailed`; the checkpoint stays before the event.
        DEAD_LETTER: Record the event and the error in `projection_dead_letters` and move on past it.
    """

    STOP = "stop"
    DEAD_LETTER = "dead_letter"


def _frozen_names(value: str | Iterable[str] | None) -> frozenset[str] | None:
    return None if value is None else frozenset(names(value))


def _frozen_classes(value: Iterable[type] | None) -> frozenset[type] | None:
    return None if value is None else frozenset(value)


@attrs.frozen
class Projection:
    """A read model fed by a worker.

    `name` is stable: it keys the checkpoint. Give exactly one of `handler` (called once per event) and
    `handle_batch` (called once per batch with all of its wanted events, so a read model can be written with
    one statement per batch). `workflow_types` and `event_classes` narrow what reaches the
    handler (None: everything); changing them on a live projection needs a rebuild. `reset` runs in the
    rebuild's transaction, to empty the read model's tables. `on_commit` / `on_rollback` run after each
    batch's transaction ends, for state kept outside PostgreSQL. A projection that is not `durable` is
    replayed from the start whenever a worker starts it.

    Attributes:
        name: Stable name; keys the checkpoint, the leader lock and the dead letters.
        handler: `handler(event, conn)`: apply one `RecordedEvent` to the read model using `conn`, the
            psycopg connection whose transaction also moves the checkpoint (so both commit together). An
            exception rolls the whole batch back and is retried under `ProjectionRetry`.
        handle_batch: `handle_batch(conn, events)`: apply a batch's wanted events (a non-empty sequence of
            `RecordedEvent`, in stream order; each instance's events in sequence order) with `conn`, as
            `handler` does. If it raises, the batch rolls back and the worker runs the events of that batch
            again one per call, so retries, `stop` and dead letters name the one event that fails.
        workflow_types: Only events of these workflow types reach the handler (None: all; a string is one type).
        event_classes: Only events of these classes reach the handler (None: all).
        reset: `reset(conn)`, run in the rebuild's transaction to empty the read model.
        on_commit: Called after each batch commits.
        on_rollback: Called after a batch rolls back.
        durable: False to replay from the start whenever a worker takes the projection on.

    Raises:
        ConfigurationError: `name` is empty or not a string, or not exactly one of `handler` and
            `handle_batch` is given (raised when the projection is built).
    """

    name: str
    handler: Handler | None = None
    workflow_types: frozenset[str] | None = attrs.field(default=None, converter=_frozen_names)
    event_classes: frozenset[type] | None = attrs.field(default=None, converter=_frozen_classes)
    reset: Callable[[psycopg.Connection[Any]], None] | None = None
    on_commit: Callable[[], None] | None = None
    on_rollback: Callable[[], None] | None = None
    durable: bool = True
    handle_batch: BatchHandler | None = None

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ConfigurationError("a projection needs a non-empty string name")
        if (self.handler is None) == (self.handle_batch is None):
            raise ConfigurationError(f"projection {self.name!r} needs exactly one of handler and handle_batch")

    def wants_type(self, workflow_type: str) -> bool:
        """Whether events of `workflow_type` reach the handler.

        Args:
            workflow_type: A workflow type.

        Returns:
            True if `workflow_types` is None or contains it.
        """
        return self.workflow_types is None or workflow_type in self.workflow_types


class InMemoryProjection(Generic[S]):
    """A read model that is a pure fold: `state = evolve(state, event)` over the events it accepts.

    `fold(events)` computes it without any database. `projection()` gives a `Projection` a worker can run:
    events of a batch are folded into a staged state that becomes `state` only when the batch commits.

    Args:
        name: The projection's stable name.
        initial: The state before any event.
        evolve: `evolve(state, event) -> state`, pure, over `RecordedEvent`s.
        workflow_types: Only events of these workflow types are folded (None: all; a string is one type).
        event_classes: Only events of these classes are folded (None: all).
    """

    def __init__(
        self,
        name: str,
        initial: S,
        evolve: Callable[[S, RecordedEvent[Any]], S],
        *,
        workflow_types: str | Iterable[str] | None = None,
        event_classes: Iterable[type] | None = None,
    ) -> None:
        self.name = name
        self.initial = initial
        self.evolve = evolve
        self.workflow_types = _frozen_names(workflow_types)
        self.event_classes = _frozen_classes(event_classes)
        self.state: S = initial
        self._staged: S = initial

    def accepts(self, event: RecordedEvent[Any]) -> bool:
        """Whether `event` passes the workflow-type and event-class filters.

        Args:
            event: A recorded event.

        Returns:
            True if it would be folded.
        """
        return (self.workflow_types is None or event.workflow_type in self.workflow_types) and (
            self.event_classes is None or type(event.event) in self.event_classes
        )

    def fold(self, events: Iterable[RecordedEvent[Any]], state: S | None = None) -> S:
        """The state after folding `events`, without touching `self.state`.

        Args:
            events: Recorded events in stream order; those the filters reject are skipped.
            state: The state to start from (default: `initial`).

        Returns:
            The folded state.
        """
        current = self.initial if state is None else state
        for event in events:
            if self.accepts(event):
                current = self.evolve(current, event)
        return current

    def projection(self) -> Projection:
        """A `Projection` a `ProjectionWorker` can run, keeping `self.state` at the last committed batch.

        It is not durable: a worker replays it from the start whenever it takes it on.

        Returns:
            The projection.
        """
        return Projection(
            self.name,
            self._handle,
            workflow_types=self.workflow_types,
            event_classes=self.event_classes,
            on_commit=self._commit,
            on_rollback=self._rollback,
            reset=self._reset,
            durable=False,
        )

    def _handle(self, event: RecordedEvent[Any], conn: psycopg.Connection[Any]) -> None:
        self._staged = self.evolve(self._staged, event)

    def _commit(self) -> None:
        self.state = self._staged

    def _rollback(self) -> None:
        self._staged = self.state

    def _reset(self, conn: psycopg.Connection[Any]) -> None:
        self.state = self._staged = self.initial
