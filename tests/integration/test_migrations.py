"""Migrations: they produce the schema the code expects, re-running is a no-op, concurrent runs are safe."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest
from psycopg import sql

from ironflow_py import MigrationError, PostgresStore
from ironflow_py.store._sql import load_migrations, load_queries

Conn = psycopg.Connection[tuple[Any, ...]]

# What the code relies on: table -> ordered (column, type, nullable). Change it with a new migration.
EXPECTED_COLUMNS = {
    "events": [
        ("position", "bigint", False),
        ("tx_id", "xid8", False),
        ("workflow_type", "text", False),
        ("workflow_id", "text", False),
        ("seq", "bigint", False),
        ("event_type", "text", False),
        ("payload", "jsonb", False),
        ("recorded_at", "timestamp with time zone", False),
        ("bucket", "integer", False),
    ],
    "events_archive": [
        ("position", "bigint", False),
        ("tx_id", "xid8", False),
        ("workflow_type", "text", False),
        ("workflow_id", "text", False),
        ("seq", "bigint", False),
        ("event_type", "text", False),
        ("payload", "jsonb", False),
        ("recorded_at", "timestamp with time zone", False),
        ("archived_at", "timestamp with time zone", False),
        ("bucket", "integer", False),
    ],
    "input_keys": [
        ("workflow_type", "text", False),
        ("workflow_id", "text", False),
        ("input_key", "text", False),
        ("status", "text", False),
        ("recorded_at", "timestamp with time zone", False),
        ("bucket", "integer", False),
    ],
    "input_keys_archive": [
        ("workflow_type", "text", False),
        ("workflow_id", "text", False),
        ("input_key", "text", False),
        ("status", "text", False),
        ("recorded_at", "timestamp with time zone", False),
        ("archived_at", "timestamp with time zone", False),
        ("bucket", "integer", False),
    ],
    "instances": [
        ("workflow_type", "text", False),
        ("workflow_id", "text", False),
        ("status", "text", False),
        ("last_seq", "bigint", False),
        ("created_at", "timestamp with time zone", False),
        ("updated_at", "timestamp with time zone", False),
        ("outcome", "jsonb", True),
        ("closed_at", "timestamp with time zone", True),
        ("paused_at", "timestamp with time zone", True),
        ("pruned_at", "timestamp with time zone", True),
        ("parent_type", "text", True),
        ("parent_id", "text", True),
        ("parent_close_policy", "text", True),
        ("version", "text", False),
        ("run", "integer", False),
        ("run_start", "bigint", False),
        ("bucket", "integer", False),
        ("snapshot_gen", "bigint", False),
    ],
    "outbox": [
        ("id", "bigint", False),
        ("workflow_type", "text", False),
        ("workflow_id", "text", False),
        ("effect_type", "text", False),
        ("payload", "jsonb", False),
        ("status", "text", False),
        ("attempts", "integer", False),
        ("available_at", "timestamp with time zone", False),
        ("locked_by", "text", True),
        ("locked_until", "timestamp with time zone", True),
        ("last_error", "text", True),
        ("created_at", "timestamp with time zone", False),
        ("completed_at", "timestamp with time zone", True),
        ("trace_context", "text", True),
        ("claim_token", "bigint", True),
        ("last_traceback", "text", True),
        ("payload_bytes", "integer", True),
        ("bucket", "integer", False),
    ],
    "projection_checkpoints": [
        ("name", "text", False),
        ("tx_id", "xid8", False),
        ("position", "bigint", False),
        ("generation", "bigint", False),
        ("applied", "bigint", False),
        ("updated_at", "timestamp with time zone", False),
        ("failed_at", "timestamp with time zone", True),
        ("failed_position", "bigint", True),
        ("failed_error", "text", True),
    ],
    "projection_dead_letters": [
        ("id", "bigint", False),
        ("projection", "text", False),
        ("tx_id", "xid8", False),
        ("position", "bigint", False),
        ("workflow_type", "text", False),
        ("workflow_id", "text", False),
        ("seq", "bigint", False),
        ("event_type", "text", False),
        ("error", "text", False),
        ("attempts", "integer", False),
        ("recorded_at", "timestamp with time zone", False),
    ],
    "schema_migrations": [
        ("version", "integer", False),
        ("name", "text", False),
        ("applied_at", "timestamp with time zone", False),
    ],
    "snapshots": [
        ("workflow_type", "text", False),
        ("workflow_id", "text", False),
        ("seq", "bigint", False),
        ("state_version", "integer", False),
        ("payload", "jsonb", False),
        ("created_at", "timestamp with time zone", False),
        ("bucket", "integer", False),
    ],
    "projection_leases": [
        ("name", "text", False),
        ("holder", "text", False),
        ("fence", "bigint", False),
        ("expires_at", "timestamp with time zone", False),
        ("acquired_at", "timestamp with time zone", False),
        ("renewed_at", "timestamp with time zone", False),
    ],
    "timers": [
        ("id", "bigint", False),
        ("workflow_type", "text", False),
        ("workflow_id", "text", False),
        ("timer_key", "text", False),
        ("due_at", "timestamp with time zone", False),
        ("input_type", "text", False),
        ("payload", "jsonb", False),
        ("attempts", "integer", False),
        ("locked_by", "text", True),
        ("locked_until", "timestamp with time zone", True),
        ("last_error", "text", True),
        ("trace_context", "text", True),
        ("claim_token", "bigint", True),
        ("bucket", "integer", False),
    ],
}
EXPECTED_INDEXES = {
    "events_archive_by_instance",
    "events_archive_pkey",
    "input_keys_archive_pkey",
    "instances_prunable",
    "outbox_dead_by_close",
    "outbox_finished",
    "outbox_open_by_instance",
    "events_by_tx",
    "events_by_bucket",
    "outbox_due_by_bucket",
    "timers_due_by_bucket",
    "events_instance_seq",
    "events_pkey",
    "input_keys_pkey",
    "instances_by_parent",
    "instances_by_status",
    "instances_open_versions",
    "instances_paused",
    "instances_pkey",
    "snapshots_pkey",
    "outbox_by_instance",
    "outbox_dead",
    "outbox_due",
    "outbox_pkey",
    "projection_checkpoints_pkey",
    "projection_dead_letters_by_projection",
    "projection_dead_letters_pkey",
    "projection_leases_pkey",
    "schema_migrations_pkey",
    "timers_due",
    "timers_id_key",
    "timers_pkey",
}


def test_migrations_produce_the_schema_the_code_expects(pg_store: PostgresStore, admin: Conn) -> None:
    rows = admin.execute(
        "SELECT table_name, column_name, data_type, is_nullable = 'YES' FROM information_schema.columns "
        "WHERE table_schema = %s ORDER BY table_name, ordinal_position",
        (pg_store.schema,),
    ).fetchall()
    actual: dict[str, list[tuple[str, str, bool]]] = {}
    for table, column, data_type, nullable in rows:
        actual.setdefault(table, []).append((column, data_type, nullable))
    assert actual == EXPECTED_COLUMNS
    indexes = {
        r[0] for r in admin.execute("SELECT indexname FROM pg_indexes WHERE schemaname = %s", (pg_store.schema,))
    }
    assert indexes == EXPECTED_INDEXES
    triggers = admin.execute(
        "SELECT tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND NOT t.tgisinternal",
        (pg_store.schema,),
    ).fetchall()
    assert sorted(r[0] for r in triggers) == ["events_notify", "instances_closed_notify", "instances_run_notify"]
    assert pg_store.applied_migrations() == [m.version for m in load_migrations(pg_store.schema)]


def test_every_named_query_is_valid_against_the_migrated_schema(pg_store: PostgresStore, admin: Conn) -> None:
    """Describe each query without running it: the server parses and plans it against the real tables.
    Statements PREPARE cannot take (DDL, SET) run inside a transaction that is rolled back."""
    queries = load_queries(pg_store.schema)
    checked: list[str] = []
    with psycopg.connect(admin.info.dsn, autocommit=True) as conn:
        for name, text in queries.items():
            raw = psycopg.ClientCursor(conn).mogrify(text, _null_params(text))
            try:
                if raw.lstrip().upper().startswith(("CREATE", "ALTER", "DROP", "SET")):
                    with conn.transaction(force_rollback=True):
                        conn.execute(raw)
                else:
                    conn.execute(sql.SQL("PREPARE ironflow_check AS {}").format(sql.SQL(raw)))
                    conn.execute("DEALLOCATE ironflow_check")
            except psycopg.Error as exc:
                raise AssertionError(f"query {name!r} is not valid: {exc}") from exc
            checked.append(name)
    assert checked == list(queries) and len(checked) > 40


def _null_params(text: str) -> dict[str, None]:
    import re

    return dict.fromkeys(re.findall(r"%\((\w+)\)[sb]", text))


def test_migrate_again_applies_nothing(pg_store: PostgresStore) -> None:
    assert pg_store.migrate() == []


def test_concurrent_migrations_apply_each_file_once(pg_url: str, schema: str, admin: Conn) -> None:
    """Four processes' worth of stores migrate one new schema at once. The test holds the migration lock
    until all four are seen waiting for it, so their transactions certainly overlap."""
    stores = [PostgresStore.connect(pg_url, schema=schema, max_size=1) for _ in range(4)]
    holder = psycopg.connect(pg_url)
    try:
        holder.execute(stores[0].q["migration_lock"], {"schema": schema})
        with ThreadPoolExecutor(4) as pool:
            runs = [pool.submit(s.migrate) for s in stores]
            tick = threading.Event()
            while _waiting_on(admin, holder) < 4 and not any(r.done() for r in runs):
                tick.wait(0.01)
            finished_early = [r for r in runs if r.done()]
            holder.rollback()
            results = [r.result() for r in runs]
        assert finished_early == [], "a migration ran while another transaction held the migration lock"
    finally:
        holder.close()
        for s in stores:
            s.close()
    versions = [m.version for m in load_migrations(schema)]
    assert sorted(v for r in results for v in r) == versions
    assert sum(1 for r in results if r) == 1


def _waiting_on(admin: Conn, holder: Conn) -> int:
    row = admin.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))", (holder.info.backend_pid,)
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_schema_newer_than_the_code_is_refused(pg_store: PostgresStore, admin: Conn) -> None:
    admin.execute(
        sql.SQL("INSERT INTO {}.schema_migrations (version, name) VALUES (999, 'future')").format(
            sql.Identifier(pg_store.schema)
        )
    )
    with pytest.raises(MigrationError, match=r"\[999\]"):
        pg_store.migrate()


def test_a_schema_that_had_018_before_017_ends_with_the_same_lock_and_load(
    pg_url: str, schema: str, admin: Conn, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Numbers landed out of order: 018 (schema lock keys) before 017 (versions and runs). Both define
    lock_and_load; a schema that applied 018 first gets 017 afterwards and must end with the same function
    a new schema gets (017, then 018)."""
    from ironflow_py.store import postgres

    real = load_migrations
    with PostgresStore.connect(pg_url, schema=schema) as store:
        monkeypatch.setattr(postgres, "load_migrations", lambda s: [m for m in real(s) if m.version != 17])
        assert 18 in store.migrate()
        monkeypatch.setattr(postgres, "load_migrations", real)
        assert store.migrate() == [17]
    body = admin.execute(
        "SELECT p.prosrc FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
        "WHERE p.proname = 'lock_and_load' AND n.nspname = %s",
        (schema,),
    ).fetchone()
    assert body is not None and "instance_lock_key" in body[0] and "v_run_start" in body[0]
