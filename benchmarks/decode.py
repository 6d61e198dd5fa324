"""What decoding one stored event costs, step by step: psycopg fetch with stdlib json vs orjson, then cattrs.

Decides the JSON path (design/codec.md): the fastest loader that keeps types exact.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import psycopg
from cattrs.preconf import json as cattrs_json
from psycopg import sql
from psycopg.types.json import set_json_loads

from benchmarks._common import fresh_schema, print_table
from benchmarks.decisions import seed
from ironflow_py import PostgresStore
from ironflow_py.codec import make_converter
from tests.workflows import Added

ROWS = 20_000


def per_item_us(fn: Callable[[], Any], items: int, repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best / items * 1e6


def main(url: str) -> None:
    loaders: list[tuple[str, Callable[[str | bytes], Any]]] = [("stdlib json", json.loads)]
    try:
        import orjson

        loaders.append(("orjson", orjson.loads))
    except ImportError:
        pass
    rows: list[list[str]] = []
    with fresh_schema(url) as schema, PostgresStore.connect(url, schema=schema, max_size=1) as store:
        store.migrate()
        seed(url, schema, 1, ROWS)
        query = sql.SQL("SELECT seq, event_type, payload FROM {}.events WHERE workflow_id = 'i0' ORDER BY seq").format(
            sql.Identifier(schema)
        )
        for name, loads in loaders:
            with psycopg.connect(url) as conn:
                set_json_loads(loads, conn)
                cost = per_item_us(lambda: conn.execute(query).fetchall(), ROWS)
            rows.append([f"fetch + parse jsonb ({name})", f"{cost:.2f}"])
        with psycopg.connect(url) as conn:
            texts = [
                r[0]
                for r in conn.execute(sql.SQL("SELECT payload::text FROM {}.events").format(sql.Identifier(schema)))
            ]
        for name, loads in loaders:
            cost = per_item_us(lambda: [loads(t) for t in texts], ROWS)  # noqa: B023 - called at once
            rows.append([f"parse only ({name})", f"{cost:.2f}"])
        data = [json.loads(t) for t in texts]
        for detailed in (False, True):
            converter = make_converter() if not detailed else cattrs_json.make_converter()
            hook = converter.get_structure_hook(Added)
            cost = per_item_us(lambda: [hook(d, Added) for d in data], ROWS)  # noqa: B023 - called at once
            rows.append([f"cattrs structure (detailed_validation={detailed})", f"{cost:.2f}"])
    if len(loaders) == 1:
        rows.append(["orjson", "not installed: `pip install orjson` to compare"])
    print_table(f"decode cost per event, {ROWS:,} rows, best of 5", ["step", "µs/event"], rows)
