"""A counter that snapshots, and a way to plant a snapshot in either store (tests only)."""

from __future__ import annotations

import json
from typing import Any

from psycopg import sql

from ironflow_py import MemoryStore, PostgresStore
from ironflow_py.store.base import Store, StoredSnapshot
from tests.workflows import Counter


class SnappyCounter(Counter):
    type = "snappy"
    inputs = {f"snappy.{k.split('.', 1)[1]}": v for k, v in Counter.inputs.items()}
    events = {f"snappy.{k.split('.', 1)[1]}": v for k, v in Counter.events.items()}
    effects = {f"snappy.{k.split('.', 1)[1]}": v for k, v in Counter.effects.items()}
    snapshot_every = 3


def plant_snapshot(store: Store, workflow_id: str, seq: int, version: int, data: Any) -> None:
    if isinstance(store, MemoryStore):
        store.put_snapshot("snappy", workflow_id, StoredSnapshot(seq, version, data))
        return
    assert isinstance(store, PostgresStore)
    with store.pool.connection() as conn:
        conn.execute(
            sql.SQL(
                "UPDATE {}.snapshots SET seq = %s, state_version = %s, payload = %s::jsonb "
                "WHERE workflow_type = 'snappy' AND workflow_id = %s"
            ).format(sql.Identifier(store.schema)),
            (seq, version, json.dumps(data), workflow_id),
        )
        # As every snapshot writer must (migration 020), so that a warm cache looks again.
        conn.execute(
            sql.SQL(
                "UPDATE {}.instances SET snapshot_gen = snapshot_gen + 1 "
                "WHERE workflow_type = 'snappy' AND workflow_id = %s"
            ).format(sql.Identifier(store.schema)),
            (workflow_id,),
        )
