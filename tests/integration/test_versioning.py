"""Changing a running workflow on PostgreSQL, from the command line: a v1 row written with raw SQL is read
through the upcasters by a projection, `events upgrade` rewrites it, `history export` feeds
`check_history_compat`, and `snapshots verify` finds what an old `evolve` wrote."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from starlette.testclient import TestClient

from ironflow_py import InMemoryProjection, PostgresStore, ProjectionWorker, RecordedEvent, WorkflowService
from ironflow_py.cli import main
from ironflow_py.testing import check_history_compat
from ironflow_py.upgrade import upgrade_events
from ironflow_py.web import create_app
from tests.contract.test_evolve_change import BuggyCounter, FixedCounter
from tests.upcast_workflows import Place, Placed, Reminded, ShopState, SnappyShop, plant_event
from tests.version_workflows import Charged, NamedOrderV1, NamedOrderV2, SnapshottingOrderV1
from tests.version_workflows import Place as VPlace
from tests.workflows import Add, CounterState


@pytest.fixture
def cli(pg_store: PostgresStore, pg_url: str, monkeypatch: pytest.MonkeyPatch) -> PostgresStore:
    monkeypatch.setenv("IRONFLOW_DATABASE_URL", pg_url)
    monkeypatch.setenv("IRONFLOW_SCHEMA", pg_store.schema)
    return pg_store


def old_shop(store: PostgresStore, *ids: str) -> WorkflowService:
    service = WorkflowService(store, workflows=[SnappyShop], state_cache_size=0)
    for wid in ids:
        service.execute(Place(wid, "tea", 1))
        plant_event(store, "snappy-shop", wid, 1, "shop.placed/1", {"sku": "tea", "qty": 7})
    return service


def test_a_projection_reads_a_v1_row_through_the_upcasters(pg_store: PostgresStore) -> None:
    service = old_shop(pg_store, "o1")
    last = service.execute(Place("o1", "cake", 2)).events[0].position
    seen: list[tuple[str, object]] = []

    def add(total: int, recorded: RecordedEvent[Placed]) -> int:
        seen.append((recorded.type_name, recorded.event))
        return total + recorded.event.quantity

    # Filtered by class: the worker must also read the old name that upcasts to it.
    memory = InMemoryProjection("items", 0, add, event_classes=[Placed])
    ignored = InMemoryProjection("reminders", 0, lambda n, _: n + 1, event_classes=[Reminded])
    worker = ProjectionWorker(service, [memory.projection(), ignored.projection()])
    try:
        deadline = time.monotonic() + 30
        # Bounded: an open transaction elsewhere on the server holds the projection horizon back a while.
        while not (worker.control.caught_up("items", last) and worker.control.caught_up("reminders", last)):
            assert time.monotonic() < deadline, "the projections did not catch up"
            worker.run_until_idle()
    finally:
        worker.close()
    assert memory.state == 9 and ignored.state == 0
    assert seen == [("shop.placed/3", Placed("tea", 7, 0)), ("shop.placed/3", Placed("cake", 2, 250))]


def test_events_upgrade_from_the_cli_then_a_cold_rebuild_gives_the_same_state(
    cli: PostgresStore, capsys: pytest.CaptureFixture[str]
) -> None:
    service = old_shop(cli, "o1", "o2", "o3")
    service.execute(Place("o1", "cake", 2))  # seq 2: a snapshot, from the planted row already
    before = {wid: service.state("snappy-shop", wid) for wid in ("o1", "o2", "o3")}
    assert before["o1"] == ShopState(items=9, lines=2)
    assert main(["--app", "tests.apps:shop", "events", "upgrade", "snappy-shop", "--batch", "2"]) == 0
    assert "snappy-shop: rewrote 3 events of 3 instances in 3 transactions" in capsys.readouterr().out
    with cli.pool.connection() as conn:
        old = conn.execute(
            f'SELECT count(*) FROM "{cli.schema}".events WHERE event_type = %s', ("shop.placed/1",)
        ).fetchone()
        conn.execute(f'DELETE FROM "{cli.schema}".snapshots')
    assert old == (0,)
    cold = WorkflowService(cli, workflows=[SnappyShop], state_cache_size=0)
    assert {wid: cold.state("snappy-shop", wid) for wid in before} == before


def test_the_cli_tools_leave_an_instance_of_a_version_the_app_does_not_register(
    cli: PostgresStore, capsys: pytest.CaptureFixture[str]
) -> None:
    WorkflowService(cli, workflows=[SnapshottingOrderV1]).execute(VPlace("o1", 10))
    assert main(["--app", "tests.apps:order_v3_only", "events", "upgrade", "vorder"]) == 0
    assert (
        "vorder: rewrote 0 events of 0 instances in 0 transactions; skipped 1 instances of versions 1 "
        "(not registered by this app)"
    ) in capsys.readouterr().out
    assert [e.type_name for e in cli.events("vorder", "o1")] == ["vorder.placed/1"]
    verify = ["--app", "tests.apps:snapshotting_order_v2_only", "snapshots", "verify", "vorder", "--drop"]
    assert main(verify) == 3
    assert "o1 @1: version_not_loaded (it runs version '1', which this process has not registered)" in (
        capsys.readouterr().out
    )
    snap = cli.latest_snapshot("vorder", "o1")
    assert snap is not None and snap.data["folded_by"] == "1"


def test_inspect_wait_and_the_web_view_show_an_instance_with_its_own_versions_code(
    cli: PostgresStore, capsys: pytest.CaptureFixture[str]
) -> None:
    WorkflowService(cli, workflows=[NamedOrderV1]).execute(VPlace("o1", 10))
    both = WorkflowService(cli, workflows=[NamedOrderV1, NamedOrderV2])
    both.execute(Charged("o1"))
    assert main(["--app", "tests.apps:named_orders", "inspect", "show", "vorder", "o1"]) == 0
    shown = capsys.readouterr().out
    assert "v1-paid" in shown and "v2-" not in shown
    assert main(["--app", "tests.apps:named_orders", "--json", "wait", "vorder", "o1", "--timeout", "5"]) == 0
    assert json.loads(capsys.readouterr().out) == {"status": "completed", "result": 10, "result_type": "vorder.total/1"}
    with TestClient(create_app(both)) as web:
        page = web.get("/instances/vorder/o1")
    assert page.status_code == 200
    assert "v1-paid" in page.text and "v2-" not in page.text


def test_history_export_feeds_check_history_compat(
    cli: PostgresStore, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    old_shop(cli, "o1")
    assert main(["--app", "tests.apps:shop", "history", "export", "snappy-shop", "o1"]) == 0
    exported = capsys.readouterr().out
    assert [e["type"] for e in json.loads(exported)["events"]] == ["shop.placed/1"]
    (tmp_path / "o1.json").write_text(exported)
    assert check_history_compat(SnappyShop(), tmp_path) == {"o1.json": ShopState(items=7, lines=1)}
    assert main(["--app", "tests.apps:shop", "history", "export", "snappy-shop", "nope"]) == 1
    assert "has no instance 'nope'" in capsys.readouterr().err


def test_snapshots_verify_reports_the_stale_snapshots_and_drop_replaces_them(
    cli: PostgresStore, capsys: pytest.CaptureFixture[str]
) -> None:
    old = WorkflowService(cli, workflows=[BuggyCounter])
    for wid in ("c1", "c2"):
        for _ in range(3):
            old.execute(Add(wid, 1))
    new = WorkflowService(cli, workflows=[FixedCounter], state_cache_size=0)
    assert new.state("snappy", "c1") == CounterState(total=3, adds=6)  # what the next decision starts from
    assert new.execute(Add("c1", 0)).state == new.state("snappy", "c1") == CounterState(total=3, adds=7)
    fixed = ["--app", "tests.apps:fixed_counter", "snapshots", "verify", "snappy"]
    assert main(fixed) == 3
    out = capsys.readouterr().out
    assert "c1 @3: mismatch (fields differ: adds)" in out and "snappy: 2 snapshots: 2 mismatch" in out
    assert main(["--app", "tests.apps:buggy_counter", "snapshots", "verify", "snappy"]) == 0  # its own snapshots
    assert "2 snapshots: 2 ok" in capsys.readouterr().out
    assert main([*fixed, "--drop"]) == 0
    assert "c2 @3: mismatch (fields differ: adds) dropped" in capsys.readouterr().out
    assert main(["--json", *fixed]) == 0
    checks = json.loads(capsys.readouterr().out)["checks"]
    assert [(c["workflow_id"], c["seq"], c["status"]) for c in checks] == [("c1", 4, "ok"), ("c2", 3, "ok")]
    assert new.state("snappy", "c1") == CounterState(total=3, adds=4)
    assert new.execute(Add("c1", 0)).state == new.state("snappy", "c1") == CounterState(total=3, adds=5)


#: Sessions queued on one instance's advisory lock (a bigint key shows as classid = high, objid = low 32 bits);
#: `{}` is the schema, whose instance_lock_key (migration 018) computes the key.
WAITING_ON_INSTANCE_LOCK = """
SELECT count(*) FROM pg_locks
WHERE locktype = 'advisory' AND NOT granted AND objsubid = 1 AND database = (
    SELECT oid FROM pg_database WHERE datname = current_database()
) AND ((classid::bigint << 32) | objid::bigint) = {}.instance_lock_key(%s, %s)
"""


def test_events_upgrade_waits_for_the_instance_lock(
    pg_store: PostgresStore, admin: psycopg.Connection[tuple[Any, ...]]
) -> None:
    """A decision holding the instance lock (here: an explicit connection taking the same advisory lock)
    makes the rewrite wait; the rows change only after that transaction ends."""
    service = old_shop(pg_store, "o1")
    done = threading.Event()
    failure: list[BaseException] = []

    def upgrade() -> None:
        try:
            upgrade_events(service, "snappy-shop")
        except BaseException as exc:
            failure.append(exc)
        finally:
            done.set()

    with admin.transaction():
        admin.execute(pg_store.q["lock_instance"], {"workflow_type": "snappy-shop", "workflow_id": "o1"})
        thread = threading.Thread(target=upgrade)
        thread.start()
        deadline = time.monotonic() + 30
        # The overlap, proven: the upgrade's connection is queued on an advisory lock we hold.
        waiting = sql.SQL(WAITING_ON_INSTANCE_LOCK).format(sql.Identifier(pg_store.schema))
        while admin.execute(waiting, ("snappy-shop", "o1")).fetchone() != (1,):
            assert time.monotonic() < deadline and not done.is_set(), "the upgrade never waited for the lock"
            time.sleep(0.01)
        assert [e.type_name for e in pg_store.events("snappy-shop", "o1")] == ["shop.placed/1"]
    thread.join(30)
    assert done.is_set() and not failure
    assert [e.type_name for e in pg_store.events("snappy-shop", "o1")] == ["shop.placed/3"]
