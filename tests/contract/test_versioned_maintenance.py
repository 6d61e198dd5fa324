"""The maintenance and inspection tools on a type in several versions, on both stores: `events upgrade`,
`snapshots verify` and the instance report decode and judge each instance with the code of the version it
records, as decisions do; the writing tools leave alone an instance whose version this process has not
registered (design/versioning.md)."""

from __future__ import annotations

from ironflow_py import WorkflowService
from ironflow_py.inspection import instance_report
from ironflow_py.store.base import Store
from ironflow_py.upgrade import SnapshotStatus, upgrade_events, verify_snapshots
from tests.upcast_workflows import plant_event
from tests.version_workflows import (
    Charged,
    NamedOrderV1,
    NamedOrderV2,
    OrderV1,
    OrderV3,
    Paid,
    Place,
    SnapshottingOrderV1,
    SnapshottingOrderV2,
)


def stored_names(store: Store, workflow_id: str) -> list[str]:
    return [e.type_name for e in store.events("vorder", workflow_id)]


def one_of_each(store: Store) -> None:
    """o1 on version 1 (its own name `vorder.placed/1`); o3 on version 3 with a row under that old name."""
    WorkflowService(store, workflows=[OrderV1]).execute(Place("o1", 10))
    WorkflowService(store, workflows=[OrderV1, OrderV3]).execute(Place("o3", 10))
    plant_event(store, "vorder", "o3", 1, "vorder.placed/1", {"amount": 10})
    assert stored_names(store, "o1") == stored_names(store, "o3") == ["vorder.placed/1"]


def test_events_upgrade_rewrites_each_instance_with_its_own_versions_code(store: Store) -> None:
    one_of_each(store)
    both = WorkflowService(store, workflows=[OrderV1, OrderV3], state_cache_size=0)
    report = upgrade_events(both, "vorder", batch=1)
    assert (report.instances, report.events, report.skipped) == (1, 1, 0)
    # Version 3 upcasts the old name; for version 1 it is its own name, left as its code writes it.
    assert stored_names(store, "o3") == ["vorder.placed/2"]
    assert stored_names(store, "o1") == ["vorder.placed/1"]
    assert both.execute(Charged("o1")).events[0].event == Paid(10)
    assert both.execute(Charged("o3")).events[0].event == Paid(10)
    assert upgrade_events(both, "vorder").events == 0


def test_events_upgrade_leaves_an_instance_of_a_version_this_process_has_not_registered(store: Store) -> None:
    one_of_each(store)
    only_v3 = WorkflowService(store, workflows=[OrderV3], state_cache_size=0)
    report = upgrade_events(only_v3, "vorder")
    assert (report.instances, report.events) == (1, 1)
    assert (report.skipped, report.skipped_versions) == (1, ("1",))
    assert stored_names(store, "o1") == ["vorder.placed/1"]
    # The process that runs version 1 still reads it.
    assert WorkflowService(store, workflows=[OrderV1]).execute(Charged("o1")).events[0].event == Paid(10)


def snapshots_of_two_versions(store: Store) -> None:
    """o1's snapshot folded by version 1, o2's by version 2: one `state_version`, different folds."""
    WorkflowService(store, workflows=[SnapshottingOrderV1]).execute(Place("o1", 10))
    WorkflowService(store, workflows=[SnapshottingOrderV1, SnapshottingOrderV2]).execute(Place("o2", 10))
    for wid, version in (("o1", "1"), ("o2", "2")):
        snap = store.latest_snapshot("vorder", wid)
        assert snap is not None and snap.data["folded_by"] == version


def test_snapshots_verify_folds_each_instance_with_its_own_versions_code(store: Store) -> None:
    snapshots_of_two_versions(store)
    both = WorkflowService(store, workflows=[SnapshottingOrderV1, SnapshottingOrderV2], state_cache_size=0)
    checks = {c.workflow_id: (c.status, c.dropped) for c in verify_snapshots(both, "vorder", drop=True)}
    assert checks == {"o1": (SnapshotStatus.OK, False), "o2": (SnapshotStatus.OK, False)}
    snap = store.latest_snapshot("vorder", "o1")
    assert snap is not None and snap.data["folded_by"] == "1"  # not replaced by version 2's fold


def test_snapshots_verify_reports_and_keeps_a_snapshot_of_a_version_not_registered(store: Store) -> None:
    snapshots_of_two_versions(store)
    only_v2 = WorkflowService(store, workflows=[SnapshottingOrderV2], state_cache_size=0)
    checks = {c.workflow_id: c for c in verify_snapshots(only_v2, "vorder", drop=True)}
    assert (checks["o1"].status, checks["o1"].dropped) == (SnapshotStatus.VERSION_NOT_LOADED, False)
    assert "version '1'" in checks["o1"].detail
    assert checks["o2"].status is SnapshotStatus.OK
    snap = store.latest_snapshot("vorder", "o1")
    assert snap is not None and (snap.seq, snap.data["folded_by"]) == (1, "1")


def test_the_instance_report_names_the_state_with_the_instances_own_version(store: Store) -> None:
    WorkflowService(store, workflows=[NamedOrderV1]).execute(Place("o1", 10))
    both = WorkflowService(store, workflows=[NamedOrderV1, NamedOrderV2])
    both.execute(Place("o2", 10))
    assert instance_report(both, "vorder", "o1").state_name == "v1-open"
    assert instance_report(both, "vorder", "o2").state_name == "v2-open"
    both.execute(Charged("o1"))
    report = instance_report(both, "vorder", "o1")
    assert (report.state_name, report.terminal) == ("v1-paid", True)
