"""A value PostgreSQL refuses is a permanent `ValueRefused`, never a retryable `StoreError`; and what the
codec writes, jsonb gives back unchanged (design/reliability.md, classes 1 and 2)."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from ironflow_py import StoreError, ValueRefused
from ironflow_py.store.base import Writes
from ironflow_py.store.postgres import PostgresStore
from ironflow_py.values import to_json
from tests.unit.test_values import json_values

T0 = datetime(2026, 3, 1, tzinfo=UTC)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=json_values)
def test_jsonb_gives_back_what_the_codec_wrote_with_the_same_types(pg_store: PostgresStore, value: Any) -> None:
    """MemoryStore keeps `json.loads(text)`; PostgreSQL keeps what jsonb makes of the text. They agree."""
    text = to_json(value)
    with pg_store.connection() as conn:
        row = conn.execute("SELECT %s::jsonb", (text,)).fetchone()
    assert row is not None
    memory = json.loads(text)
    assert row[0] == memory
    assert repr(row[0]) == repr(memory) or _same_types(row[0], memory)


def _same_types(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_types(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return all(_same_types(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b)


def write_raw(store: PostgresStore, workflow_id: str, payload: str) -> None:
    """One event written straight through the store port, bypassing every check of the service."""

    with store.locked("raw", workflow_id) as tx:
        tx.write(Writes(T0, 1, events=[("raw/1", payload)]))


@pytest.mark.parametrize(
    ("workflow_id", "payload", "sqlstate"),
    [
        ("w1", '"\\u0000"', "22P05"),  # jsonb refuses an escaped NUL (untranslatable character)
        ("w1", '"\\ud800"', "22P02"),  # a lone surrogate escape is invalid JSON for jsonb
        (os.urandom(1500).hex(), "{}", "54000"),  # 3,000 random bytes: over the btree's row size limit
    ],
    ids=["nul-escape", "surrogate-escape", "index-row-too-large"],
)
def test_a_value_the_database_refuses_is_value_refused_not_store_error(
    pg_store: PostgresStore, workflow_id: str, payload: str, sqlstate: str
) -> None:
    with pytest.raises(ValueRefused) as info:
        write_raw(pg_store, workflow_id, payload)
    assert not isinstance(info.value, StoreError), "a refused value is not an outage"
    assert info.value.sqlstate == sqlstate
    assert info.value.workflow_type == "raw"
    assert pg_store.list_instances("raw") == []


@pytest.mark.parametrize("workflow_id", ["nul\x00", "\udfff"])
def test_a_value_the_driver_refuses_before_sending_is_value_refused(pg_store: PostgresStore, workflow_id: str) -> None:
    with pytest.raises(ValueRefused) as info:
        write_raw(pg_store, workflow_id, "{}")
    assert info.value.sqlstate is None
    assert pg_store.list_instances("raw") == []
