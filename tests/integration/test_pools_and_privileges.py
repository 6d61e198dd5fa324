"""Pools and privileges (issue #11 item 6), on real PostgreSQL.

- `migrate()` under a least-privilege application role (no CREATE on the database or the schema) is a no-op
  when nothing is to be applied, and refuses with the server's reason when something is; the migrator role
  applies it.
- A worker whose handlers hold a pooled connection while feeding an input back never stalls, even with
  more handlers than the store's pool had connections: the runtime sizes the pool from its concurrency.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from ironflow_py import EffectContext, EffectRegistry, EffectRuntime, PostgresStore, StoreError, WorkflowService
from tests.effect_app import Job, Start, Work, WorkDone


@pytest.fixture
def app_role(admin: psycopg.Connection[Any], schema: str) -> Iterator[str]:
    """A login role with only what an application needs on `schema`: USAGE and DML, no CREATE anywhere."""
    role = f"app_{schema}"[:63]
    admin.execute(sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB").format(sql.Identifier(role)))
    try:
        yield role
    finally:
        admin.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def grant_application_rights(admin: psycopg.Connection[Any], schema: str, role: str) -> None:
    ident_schema, ident_role = sql.Identifier(schema), sql.Identifier(role)
    admin.execute(sql.SQL("REVOKE CREATE ON DATABASE postgres FROM PUBLIC"))  # PG15's default already
    admin.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(ident_schema, ident_role))
    dml = sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {} TO {}")
    admin.execute(dml.format(ident_schema, ident_role))
    admin.execute(sql.SQL("GRANT USAGE ON ALL SEQUENCES IN SCHEMA {} TO {}").format(ident_schema, ident_role))


def test_migrate_under_an_application_role_with_nothing_to_apply_succeeds(
    pg_store: PostgresStore, admin: psycopg.Connection[Any], pg_url: str, schema: str, app_role: str
) -> None:
    grant_application_rights(admin, schema, app_role)
    row = admin.execute("SELECT has_database_privilege(%s, current_database(), 'CREATE')", (app_role,)).fetchone()
    assert row == (False,)  # the role really cannot create a schema
    with PostgresStore.connect(make_conninfo(pg_url, user=app_role), schema=schema, max_size=2) as store:
        assert store.migrate() == []
        store.require_migrated()  # another member of the class: the startup check reads only
        service = WorkflowService(store, workflows=[Job])
        assert service.execute(Start("j", 0, "noop")).status.value == "accepted"  # and it can work


def test_migrate_under_an_application_role_with_something_to_apply_is_refused(
    pg_store: PostgresStore, admin: psycopg.Connection[Any], pg_url: str, schema: str, app_role: str
) -> None:
    """A fresh schema needs the migrator: the application role is refused with the server's reason."""
    fresh = f"{schema}_fresh"[:63]
    url = make_conninfo(pg_url, user=app_role)
    with PostgresStore.connect(url, schema=fresh, max_size=2) as store, pytest.raises(StoreError, match="denied"):
        store.migrate()
    row = admin.execute("SELECT count(*) FROM pg_namespace WHERE nspname = %s", (fresh,)).fetchone()
    assert row == (0,)


def test_handlers_holding_a_connection_never_stall_a_worker_with_more_handlers_than_connections(
    pg_url: str, schema: str, pg_store: PostgresStore, tmp_path: Path
) -> None:
    """The issue's example: 2 of 300 effects in 75 s. Six handlers each hold a pooled connection and feed
    an input back (a second connection) on a store opened with a pool of two."""
    holding = threading.Semaphore(0)
    registry = EffectRegistry()
    with PostgresStore.connect(pg_url, schema=schema, max_size=2) as store:

        @registry.handler(Work)
        def hold_and_reply(effect: Work, ctx: EffectContext) -> object:
            with store.connection() as conn:  # a handler using the app's pool for its own reads
                conn.execute("SELECT 1")
                holding.release()
                reply = WorkDone(effect.job_id, effect.index)
                WorkflowService(store, workflows=[Job]).execute(reply)  # a second connection, while holding
            return None

        service = WorkflowService(store, workflows=[Job])
        rt = EffectRuntime(service, registry, handle_signals=False, concurrency=6, listen=False)
        assert store.pool.max_size == 8  # sized from the concurrency
        service.execute(Start("many", 30, "noop"))
        thread = threading.Thread(target=rt.run)
        started = time.monotonic()
        thread.start()
        try:
            pause = threading.Event()
            while len(service.state("job", "many").recorded) < 30 and time.monotonic() - started < 60:
                pause.wait(0.05)
            elapsed = time.monotonic() - started
        finally:
            rt.stop()
            thread.join(30)
        assert sorted(service.state("job", "many").recorded) == list(range(30))  # each once, none lost
        assert elapsed < 20  # a stall costs the pool timeout (30 s) per attempt
