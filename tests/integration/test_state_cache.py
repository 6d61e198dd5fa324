"""The in-process state cache never serves a stale state: it is checked inside the locked transaction."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from typing import Any

import psycopg
from psycopg import sql

from ironflow_py import PostgresStore, WorkflowService
from tests.workflows import Add, Counter, CounterState


def test_a_write_by_another_process_is_seen_by_a_warm_cache(pg_store: PostgresStore, pg_url: str) -> None:
    service = WorkflowService(pg_store, workflows=[Counter])
    for _ in range(3):
        service.execute(Add("c1", 1))
    registration = service.registration("counter")
    assert registration.handler.cache is not None and len(registration.handler.cache) == 1

    script = textwrap.dedent(
        f"""
        from ironflow_py import PostgresStore, WorkflowService
        from tests.workflows import Add, Counter
        with PostgresStore.connect({pg_url!r}, schema={pg_store.schema!r}) as store:
            print(WorkflowService(store, workflows=[Counter]).execute(Add("c1", 10)).events[0].seq)
        """
    )
    other = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True, env=dict(os.environ)
    )
    assert other.stdout.strip().splitlines()[-1] == "4"

    outcome = service.execute(Add("c1", 1))
    assert outcome.events[0].seq == 5
    assert outcome.state == CounterState(total=14, adds=5)


def test_a_cache_whose_history_is_gone_is_dropped(pg_store: PostgresStore, admin: psycopg.Connection[Any]) -> None:
    service = WorkflowService(pg_store, workflows=[Counter])
    for _ in range(3):
        service.execute(Add("c1", 1))
    for table in ("events", "instances"):
        admin.execute(sql.SQL("DELETE FROM {}.{}").format(sql.Identifier(pg_store.schema), sql.Identifier(table)))
    outcome = service.execute(Add("c1", 1))
    assert outcome.events[0].seq == 1
    assert outcome.state == CounterState(total=1, adds=1)


def test_a_failed_decision_does_not_poison_the_cache(pg_store: PostgresStore) -> None:
    service = WorkflowService(pg_store, workflows=[Counter])
    service.execute(Add("c1", 1))
    try:
        service.execute(Add("c1", 1, effect_note=object()))
    except Exception as exc:
        assert type(exc).__name__ == "EncodeError"
    assert service.execute(Add("c1", 1)).state == CounterState(total=2, adds=2)
    assert WorkflowService(pg_store, workflows=[Counter]).state("counter", "c1") == CounterState(total=2, adds=2)
