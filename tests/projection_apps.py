"""A SQL read model over the Counter workflow, used by projection tests in-process and via the CLI."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import sql

from ironflow_py import App, Projection, RecordedEvent
from tests.workflows import Added, Counter

NAME = "counter_totals"


def create_read_model(conn: psycopg.Connection[Any], schema: str) -> None:
    """`totals`: one row per counter; `applied`: one row per handled event, in the order handled."""
    s = sql.Identifier(schema)
    conn.execute(
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {}.rm_totals (workflow_id text PRIMARY KEY, total bigint NOT NULL, "
            "adds bigint NOT NULL, last_seq bigint NOT NULL)"
        ).format(s)
    )
    conn.execute(
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {}.rm_applied (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
            "workflow_id text NOT NULL, seq bigint NOT NULL, position bigint NOT NULL)"
        ).format(s)
    )


def counter_projection(
    schema: str, *, fail_on: Callable[[RecordedEvent[Any]], bool] | None = None
) -> Projection:
    """Upserts the running total per counter and logs every event; `fail_on` makes the handler raise."""
    s = sql.Identifier(schema)
    upsert = sql.SQL(
        "INSERT INTO {}.rm_totals AS t (workflow_id, total, adds, last_seq) VALUES (%s, %s, 1, %s) "
        "ON CONFLICT (workflow_id) DO UPDATE SET total = t.total + EXCLUDED.total, adds = t.adds + 1, "
        "last_seq = EXCLUDED.last_seq"
    ).format(s)
    log = sql.SQL("INSERT INTO {}.rm_applied (workflow_id, seq, position) VALUES (%s, %s, %s)").format(s)

    def handle(event: RecordedEvent[Any], conn: psycopg.Connection[Any]) -> None:
        conn.execute(log, (event.workflow_id, event.seq, event.position))
        if isinstance(event.event, Added):
            conn.execute(upsert, (event.workflow_id, event.event.amount, event.seq))
        if fail_on is not None and fail_on(event):
            raise RuntimeError(f"handler refuses {event.workflow_id}#{event.seq}")

    def reset(conn: psycopg.Connection[Any]) -> None:
        create_read_model(conn, schema)
        conn.execute(sql.SQL("TRUNCATE {}.rm_totals, {}.rm_applied").format(s, s))

    return Projection(NAME, handle, workflow_types=["counter"], reset=reset)


def counters() -> App:
    """The app the CLI loads (`tests.projection_apps:counters`); the schema comes from IRONFLOW_SCHEMA."""
    return App(workflows=[Counter], projections=[counter_projection(os.environ["IRONFLOW_SCHEMA"])])
