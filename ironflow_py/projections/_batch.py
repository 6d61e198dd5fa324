"""One projection batch in one transaction: read past the cursor, guard the order, handle, save.

The read model's writes, the per-instance sequences and the checkpoint commit together or not at all.
A handler that raises rolls the whole batch back; the caller decides whether to retry, stop or
dead-letter the event.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, NamedTuple, NoReturn, Protocol

import attrs
import psycopg

from ironflow_py.errors import ProjectionGap
from ironflow_py.projections._projection import Projection
from ironflow_py.records import RecordedEvent
from ironflow_py.store.postgres import session_unusable
from ironflow_py.store.postgres_projections import PostgresProjections


class Decoder(Protocol):
    """Turns stored events into objects: `hooks` is the fast path per (workflow type, stored name), filled
    by `slow`, which goes through the workflow's codec and raises its typed errors."""

    hooks: dict[tuple[str, str], tuple[type, Callable[[Any, type], Any]]]

    def slow(self, workflow_type: str, type_name: str, data: Any, workflow_id: str, seq: int) -> Any: ...

    def is_upcast(self, workflow_type: str, type_name: str) -> bool: ...

    def name_of(self, workflow_type: str, event: Any) -> str | None: ...


#: Above this many cached instances the cache is dropped and the events table answers (bounded memory).
CACHE_LIMIT = 100_000


class Row(NamedTuple):
    tx_id: str
    position: int
    workflow_type: str
    workflow_id: str
    seq: int
    event_type: str
    payload: Any
    recorded_at: datetime


class HandlerFailure(Exception):
    """The handler (or the decoding) raised on `row`; the batch was rolled back.

    `narrow` is the number of rows read when a batch handler failed on more than one event: which one
    failed is unknown, so the worker runs that many events again one per batch.
    """

    def __init__(self, row: Row, cause: Exception, narrow: int = 0) -> None:
        self.row = row
        self.cause = cause
        self.narrow = narrow
        super().__init__(f"{type(cause).__name__}: {cause}")


class LeadLost(Exception):
    """Another worker took the lead of the projection (its lease fence is newer than this worker's): the
    batch was rolled back before anything of it committed, and this worker must step down."""

    def __init__(self, projection: str, fence: int | None, current: int | None) -> None:
        self.projection = projection
        self.fence = fence
        self.current = current
        super().__init__(f"projection {projection!r}: lead lost (fence {fence}, now {current})")


@attrs.frozen
class BatchResult:
    """What one batch did: rows read past the cursor, events handed to the handler, time taken."""

    read: int
    handled: int
    dead_lettered: int
    seconds: float


@attrs.define
class Track:
    """What a worker remembers about one projection between batches, valid while it holds the lead."""

    projection: Projection
    #: (workflow_type, event type name) pairs the handler wants; None: all.
    wanted: frozenset[tuple[str, str]] | None
    last_seqs: dict[tuple[str, str], int] = attrs.Factory(dict)
    generation: int | None = None
    #: The lease's fencing generation this worker took; every batch and checkpoint write is checked against it.
    fence: int | None = None
    #: position -> (error, attempts) of events to record as dead letters instead of handling
    dead: dict[int, tuple[str, int]] = attrs.Factory(dict)
    #: events still to run one per batch, after a batch handler failed on a batch of several
    narrow: int = 0

    def forget(self) -> None:
        self.last_seqs.clear()
        self.generation = None


def run_batch(
    conn: psycopg.Connection[Any],
    statements: PostgresProjections,
    track: Track,
    decode: Decoder,
    limit: int,
    applied_channel: str,
    idle_ms: int | None = None,
) -> BatchResult:
    """Apply the next batch of `track.projection` in one transaction (the caller holds the lead).

    With `idle_ms` the server ends the session if the transaction sits idle that long (see `lock_checkpoint`).

    Raises:
        LeadLost: The lease's fence is not `track.fence` any more, when the batch starts or when it saves;
            the transaction was rolled back.
    """
    started = time.perf_counter()
    proj = track.projection
    try:
        with statements.batch(conn):
            tx_id, position, generation, fence = statements.lock_checkpoint(conn, proj.name, idle_ms)
            if fence != track.fence:
                # Taken over while this worker was not looking (frozen, or its lease ran out): its cache may be
                # stale against what the new leader applied, so it handles nothing.
                raise LeadLost(proj.name, track.fence, fence)
            if generation != track.generation:
                track.forget()
                track.generation = generation
            rows = statements.read(conn, tx_id, position, limit)
            if not rows:
                return BatchResult(0, 0, 0, time.perf_counter() - started)
            handled, dead = _apply(conn, statements, track, decode, rows, tx_id, position)
            last_row = Row(*rows[-1])
            assert track.fence is not None
            if not statements.save(
                conn, proj.name, last_row.tx_id, last_row.position, handled, applied_channel, track.fence
            ):
                # Taken over while the handler ran: the fenced save moved nothing; roll the batch back.
                raise LeadLost(proj.name, track.fence, None)
    except BaseException:
        # The cache was updated as events went by; after a rollback it may be ahead of what committed.
        track.forget()
        if proj.on_rollback is not None:
            proj.on_rollback()
        raise
    if proj.on_commit is not None:
        proj.on_commit()
    for p in [p for p in track.dead if p <= last_row.position]:
        del track.dead[p]
    if len(track.last_seqs) > CACHE_LIMIT:
        track.last_seqs.clear()
    return BatchResult(len(rows), handled, dead, time.perf_counter() - started)


def _apply(
    conn: psycopg.Connection[Any],
    statements: PostgresProjections,
    track: Track,
    decode: Decoder,
    rows: Sequence[tuple[Any, ...]],
    tx_id: str,
    position: int,
) -> tuple[int, int]:
    """Guard each instance's order, then hand the wanted events to the handler; (handled, dead-lettered)."""
    proj = track.projection
    cache = track.last_seqs
    found = _last_applied(conn, statements, track, rows, tx_id, position)
    handled = dead = 0
    types, wanted, handler, dead_positions = proj.workflow_types, track.wanted, proj.handler, track.dead
    hooks = decode.hooks
    batch: list[RecordedEvent[Any]] | None = None if handler is not None else []
    batch_rows: list[tuple[Any, ...]] = []
    for r in rows:
        _, pos, wtype, wid, seq, etype, payload, at = r
        if types is not None and wtype not in types:
            continue
        key = (wtype, wid)
        last = cache.get(key)
        if last is None:
            last = found[key]
        if seq != last + 1:
            raise ProjectionGap(
                projection=proj.name,
                workflow_type=wtype,
                workflow_id=wid,
                expected_seq=last + 1,
                seq=seq,
                position=pos,
            )
        cache[key] = seq
        if wanted is not None and (wtype, etype) not in wanted:
            continue
        if dead_positions and pos in dead_positions:
            error, attempts = dead_positions[pos]
            statements.dead_letter(conn, proj.name, r, error, attempts)
            dead += 1
            continue
        try:
            decoded = _decoded(decode, proj, hooks.get((wtype, etype)), wtype, etype, payload, wid, seq)
            if decoded is None:
                continue
            event, name = decoded
            recorded = RecordedEvent(wtype, wid, seq, pos, name, event, at)
            if batch is not None:
                batch.append(recorded)
                batch_rows.append(r)
            else:
                assert handler is not None  # a Projection has exactly one of the two
                handler(recorded, conn)
        except Exception as exc:
            _raise_failure(conn, Row(*r), exc)
        handled += 1
    if batch:
        assert proj.handle_batch is not None
        try:
            proj.handle_batch(conn, batch)
        except Exception as exc:
            # Which event failed is unknown: with more than one, the worker narrows the batch to single events.
            _raise_failure(conn, Row(*batch_rows[0]), exc, narrow=len(rows) if len(batch) > 1 else 0)
    return handled, dead


def _decoded(
    decode: Decoder,
    proj: Projection,
    fast: tuple[type, Callable[[Any, type], Any]] | None,
    wtype: str,
    etype: str,
    payload: Any,
    wid: str,
    seq: int,
) -> tuple[Any, str] | None:
    """The event object and the stored name to show with it, or None if the projection does not want it.

    Through the cached structure hook, or the codec (which raises the typed error).
    """
    if fast is not None:
        try:
            return fast[1](payload, fast[0]), etype
        except Exception:
            return decode.slow(wtype, etype, payload, wid, seq), etype  # raises the typed error
    event = decode.slow(wtype, etype, payload, wid, seq)
    if decode.is_upcast(wtype, etype):
        # Upcast from an old name: the handler sees the name its class has now, and only the
        # classes it asked for (a bare upcaster's target was unknown when `wanted` was built).
        classes = proj.event_classes
        if classes is not None and type(event) not in classes:
            return None
        etype = decode.name_of(wtype, event) or etype
    return event, etype


def _raise_failure(conn: psycopg.Connection[Any], row: Row, exc: Exception, narrow: int = 0) -> NoReturn:
    """Raise what the caller acts on: a lost connection as a driver error, anything else as HandlerFailure."""
    if session_unusable(conn, exc):
        # Not the handler's fault and not an attempt: the caller reconnects and retries the batch (a session
        # left on a read-only node after a failover included: the new one reaches the primary).
        if isinstance(exc, psycopg.Error):
            raise exc
        raise psycopg.OperationalError(f"the connection was lost while the handler ran: {exc}") from exc
    raise HandlerFailure(row, exc, narrow) from exc


def _last_applied(
    conn: psycopg.Connection[Any],
    statements: PostgresProjections,
    track: Track,
    rows: Sequence[tuple[Any, ...]],
    tx_id: str,
    position: int,
) -> dict[tuple[str, str], int]:
    """For instances the cache does not know: the last sequence the cursor has passed (one query).

    Within a lead the cache holds what this worker applied, which catches any reorder or skip. For an
    instance first seen now, the events table says which earlier events are behind the checkpoint; an
    earlier event still ahead of it (a reorder) or missing shows up as a gap.
    """
    cache, types = track.last_seqs, track.projection.workflow_types
    first: dict[tuple[str, str], int] = {}
    for r in rows:
        key = (r[2], r[3])
        if key not in cache and key not in first and (types is None or r[2] in types):
            first[key] = r[4]
    if not first:
        return {}
    return statements.last_applied(conn, first, tx_id, position)
