"""Versions side by side on PostgreSQL with a real worker: a new start gets version 2 while an open version 1
instance finishes on version 1; a worker without version 1's code refuses to start while one is open."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from ironflow_py import (
    EffectContext,
    EffectRegistry,
    EffectRuntime,
    PostgresStore,
    VersionsMissing,
    WorkflowService,
)
from ironflow_py.cli import main
from ironflow_py.lifecycle import Completed
from tests.version_workflows import Charge, Charged, OrderV1, OrderV2, Place


def registry() -> EffectRegistry:
    effects = EffectRegistry()

    @effects.handler(Charge)
    def charge(effect: Charge, ctx: EffectContext) -> Any:
        return Charged(effect.order_id)

    return effects


def test_v1_and_v2_side_by_side_under_one_worker(pg_store: PostgresStore) -> None:
    # o1 starts under the old deployment: its Charge effect waits in the outbox for a worker.
    WorkflowService(pg_store, workflows=[OrderV1]).execute(Place("o1", 10))
    service = WorkflowService(pg_store, workflows=[OrderV1, OrderV2], default_version={"vorder": "2"})
    service.execute(Place("o2", 10))
    rt = EffectRuntime(service, registry(), handle_signals=False, poll_interval=0.05)
    thread = threading.Thread(target=rt.run)
    thread.start()
    try:
        assert service.wait("vorder", "o1", timeout=30) == Completed(10)  # finished on version 1
        assert service.wait("vorder", "o2", timeout=30) == Completed(9)  # a new start got version 2
    finally:
        rt.stop()
        thread.join(10)
    versions = {i: pg_store.instance("vorder", i).version for i in ("o1", "o2")}  # type: ignore[union-attr]
    assert versions == {"o1": "1", "o2": "2"}


def test_a_worker_without_an_open_version_refuses_to_start_and_lists_it(pg_store: PostgresStore) -> None:
    WorkflowService(pg_store, workflows=[OrderV1]).execute(Place("o1", 10))
    only_v2 = WorkflowService(pg_store, workflows=[OrderV2])
    rt = EffectRuntime(only_v2, registry(), handle_signals=False, listen=False, poll_interval=0.05)
    with pytest.raises(VersionsMissing, match="'vorder' version '1' \\(1 open\\)"):
        rt.run()
    # Nothing was claimed: the Charge effect is still pending with no attempt counted.
    (effect,) = pg_store.effects("vorder", "o1")
    assert (effect.status, effect.attempts) == ("pending", 0)
    # Once o1 is moved to version 2, the same code starts and finishes it there.
    only_v2.migrate_version("vorder", "o1", to="2")
    thread = threading.Thread(target=rt.run)
    thread.start()
    try:
        assert only_v2.wait("vorder", "o1", timeout=30) == Completed(9)
    finally:
        rt.stop()
        thread.join(10)


def test_inspect_versions_lists_open_instances_per_version_and_what_the_code_lacks(
    pg_url: str, pg_store: PostgresStore, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    WorkflowService(pg_store, workflows=[OrderV1]).execute(Place("o1", 10))
    WorkflowService(pg_store, workflows=[OrderV2]).execute(Place("o2", 10))
    monkeypatch.setenv("IRONFLOW_DATABASE_URL", pg_url)
    base = ["--schema", pg_store.schema, "--app", "tests.apps:vorder_v2_only"]
    capsys.readouterr()
    assert main([*base, "--json", "inspect", "versions", "vorder"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows == [
        {"version": "1", "open": 1, "registered": False, "default": False},
        {"version": "2", "open": 1, "registered": True, "default": True},
    ]
    assert main([*base, "inspect", "versions", "vorder"]) == 0
    assert "NOT REGISTERED" in capsys.readouterr().out
