"""One projection batch in one transaction: read past the cursor, guard the order, handle, save.

The read model's writes, the per-instance sequences and the checkpoint commit together or not at all.
A handler that raises rolls the whole batch back; the caller decides whether to retry, stop or
dead-letter the event.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, NamedTuple

import attrs
import psycopg
from psycopg.rows import args_row

from ironflow_py.errors import ProjectionGap
from ironflow_py.projection import Projection
from ironflow_py.records import RecordedEvent

#: (workflow_type, type_name, data, workflow_id, seq) -> the decoded event
Decode = Callable[[str, str, Any, str, int], Any]
#: Above this many cached instances the cache is dropped; the table answers instead (bounded memory).
CACHE_LIMIT = 200_000


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
    """The handler (or the decoding) raised on `row`; the batch was rolled back."""

    def __init__(self, row: Row, cause: Exception) -> None:
        self.row = row
        self.cause = cause
        super().__init__(f"{type(cause).__name__}: {cause}")


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
    #: position -> (error, attempts) of events to record as dead letters instead of handling
    dead: dict[int, tuple[str, int]] = attrs.Factory(dict)

    def forget(self) -> None:
        self.last_seqs.clear()
        self.generation = None


def run_batch(
    conn: psycopg.Connection[Any],
    q: dict[str, str],
    track: Track,
    decode: Decode,
    limit: int,
    applied_channel: str,
) -> BatchResult:
    """Apply the next batch of `track.projection` in one transaction (the caller holds the lead)."""
    started = time.perf_counter()
    proj = track.projection
    name = proj.name
    staged: dict[tuple[str, str], int] = {}
    try:
        with conn.transaction():
            row = conn.execute(q["projection_checkpoint_for_update"], {"name": name}).fetchone()
            assert row is not None, "the worker creates the checkpoint row before its first batch"
            tx_id, position, generation = row
            if generation != track.generation:
                track.forget()
                track.generation = generation
            cur = conn.cursor(row_factory=args_row(Row))
            rows: list[Row] = cur.execute(
                q["projection_read"], {"tx_id": tx_id, "position": position, "limit": limit}
            ).fetchall()
            if not rows:
                return BatchResult(0, 0, 0, time.perf_counter() - started)
            handled, dead = _apply(conn, q, track, decode, rows, staged)
            last_row = rows[-1]
            conn.execute(
                q["projection_save"],
                {
                    "name": name,
                    "types": [k[0] for k in staged],
                    "ids": [k[1] for k in staged],
                    "seqs": list(staged.values()),
                    "tx_id": last_row.tx_id,
                    "position": last_row.position,
                    "handled": handled,
                },
            )
            conn.execute(q["projection_notify_applied"], {"channel": applied_channel, "name": name})
    except BaseException:
        if proj.on_rollback is not None:
            proj.on_rollback()
        raise
    if proj.on_commit is not None:
        proj.on_commit()
    for position in [p for p in track.dead if p <= last_row.position]:
        del track.dead[position]
    if len(track.last_seqs) + len(staged) > CACHE_LIMIT:
        track.last_seqs.clear()
    track.last_seqs.update(staged)
    return BatchResult(len(rows), handled, dead, time.perf_counter() - started)


def _apply(
    conn: psycopg.Connection[Any],
    q: dict[str, str],
    track: Track,
    decode: Decode,
    rows: Sequence[Row],
    staged: dict[tuple[str, str], int],
) -> tuple[int, int]:
    """Guard each instance's order, then hand the wanted events to the handler; (handled, dead-lettered)."""
    proj = track.projection
    cache = track.last_seqs
    found = _stored_seqs(conn, q, track, rows)
    handled = dead = 0
    wants_type, wanted, handler = proj.wants_type, track.wanted, proj.handler
    for r in rows:
        if not wants_type(r.workflow_type):
            continue
        key = (r.workflow_type, r.workflow_id)
        last = staged.get(key)
        if last is None:
            last = cache.get(key)
            if last is None:
                last = found.get(key, 0)
        if r.seq != last + 1:
            raise ProjectionGap(
                projection=proj.name,
                workflow_type=r.workflow_type,
                workflow_id=r.workflow_id,
                expected_seq=last + 1,
                seq=r.seq,
                position=r.position,
            )
        staged[key] = r.seq
        if wanted is not None and (r.workflow_type, r.event_type) not in wanted:
            continue
        if r.position in track.dead:
            error, attempts = track.dead[r.position]
            conn.execute(q["projection_dead_letter"], _dead_params(proj.name, r, error, attempts))
            dead += 1
            continue
        try:
            event = decode(r.workflow_type, r.event_type, r.payload, r.workflow_id, r.seq)
            handler(
                RecordedEvent(
                    r.workflow_type, r.workflow_id, r.seq, r.position, r.event_type, event, r.recorded_at
                ),
                conn,
            )
        except Exception as exc:
            raise HandlerFailure(r, exc) from exc
        handled += 1
    return handled, dead


def _stored_seqs(
    conn: psycopg.Connection[Any], q: dict[str, str], track: Track, rows: Sequence[Row]
) -> dict[tuple[str, str], int]:
    """The stored last sequence of the instances in `rows` that the cache does not know (one query)."""
    cache = track.last_seqs
    missing = {
        (r.workflow_type, r.workflow_id)
        for r in rows
        if (r.workflow_type, r.workflow_id) not in cache and track.projection.wants_type(r.workflow_type)
    }
    if not missing:
        return {}
    found = conn.execute(
        q["projection_last_seqs"],
        {"name": track.projection.name, "types": [k[0] for k in missing], "ids": [k[1] for k in missing]},
    ).fetchall()
    return {(wtype, wid): last_seq for wtype, wid, last_seq in found}


def _dead_params(name: str, r: Row, error: str, attempts: int) -> dict[str, Any]:
    return {
        "name": name,
        "tx_id": r.tx_id,
        "position": r.position,
        "workflow_type": r.workflow_type,
        "workflow_id": r.workflow_id,
        "seq": r.seq,
        "event_type": r.event_type,
        "error": error,
        "attempts": attempts,
    }
