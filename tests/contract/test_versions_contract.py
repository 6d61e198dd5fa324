"""Versions side by side on both stores: an instance records its version at its first write and every later
decision uses that version's class; new instances get the default; moving is explicit."""

from __future__ import annotations

import pytest

from ironflow_py import (
    CodecError,
    ConfigurationError,
    InstanceClosed,
    OutcomeStatus,
    VersionNotLoaded,
    VersionsMissing,
    WorkflowService,
)
from ironflow_py.lifecycle import Completed, VersionMigrated
from ironflow_py.store.base import Store
from tests.version_workflows import Charged, Expedite, Expedited, OrderV1, OrderV2, Paid, Place, Placed


def test_a_new_instance_gets_the_default_and_an_open_one_finishes_on_its_own_version(store: Store) -> None:
    old = WorkflowService(store, workflows=[OrderV1])
    old.execute(Place("o1", 10))
    both = WorkflowService(store, workflows=[OrderV1, OrderV2], default_version={"vorder": "2"})
    both.execute(Place("o2", 10))
    assert [store.instance("vorder", i).version for i in ("o1", "o2")] == ["1", "2"]  # type: ignore[union-attr]
    assert both.execute(Charged("o1")).events[0].event == Paid(10)  # version 1 pays the full amount
    assert both.execute(Charged("o2")).events[0].event == Paid(9)  # version 2 gives its discount
    assert both.result("vorder", "o1") == Completed(10)
    assert both.result("vorder", "o2") == Completed(9)


def test_without_a_default_the_version_registered_last_is_the_default(store: Store) -> None:
    service = WorkflowService(store, workflows=[OrderV2, OrderV1])
    service.execute(Place("o1", 10))
    info = store.instance("vorder", "o1")
    assert info is not None and info.version == "1"


def test_an_instance_whose_version_is_not_registered_is_refused_before_any_write(store: Store) -> None:
    WorkflowService(store, workflows=[OrderV1]).execute(Place("o1", 10))
    only_v2 = WorkflowService(store, workflows=[OrderV2])
    with pytest.raises(VersionNotLoaded, match="'vorder' instance 'o1': it runs version '1'") as caught:
        only_v2.execute(Charged("o1"))
    assert (caught.value.version, caught.value.loaded) == ("1", ("2",))
    info = store.instance("vorder", "o1")
    assert info is not None and info.last_seq == 1
    with pytest.raises(VersionsMissing, match="'vorder' version '1' \\(1 open\\)") as missing:
        only_v2.check_versions()
    assert missing.value.missing == [("vorder", "1", 1)]
    assert only_v2.open_versions("vorder") == {"1": 1}
    WorkflowService(store, workflows=[OrderV1, OrderV2]).check_versions()  # both present: no complaint


def test_an_input_the_instance_version_does_not_declare_is_a_codec_error(store: Store) -> None:
    service = WorkflowService(store, workflows=[OrderV1, OrderV2], default_version={"vorder": "1"})
    service.execute(Place("o1", 10))
    with pytest.raises(CodecError, match="Expedite is not an input of version '1'"):
        service.execute(Expedite("o1"))


def test_migrate_version_moves_one_instance_under_its_lock_with_a_recorded_event(store: Store) -> None:
    WorkflowService(store, workflows=[OrderV1]).execute(Place("o1", 10))
    warm = WorkflowService(store, workflows=[OrderV1, OrderV2], default_version={"vorder": "1"})
    assert warm.state("vorder", "o1").amount == 10  # cached by version 1's code in this process
    mover = WorkflowService(store, workflows=[OrderV1, OrderV2])
    moved = mover.migrate_version("vorder", "o1", to="2", input=Expedite("o1"))
    assert moved.status is OutcomeStatus.ACCEPTED
    assert [e.event for e in moved.events] == [VersionMigrated("1", "2"), Expedited()]
    info = store.instance("vorder", "o1")
    assert info is not None and (info.version, info.last_seq) == ("2", 3)
    assert mover.migrate_version("vorder", "o1", to="2").status is OutcomeStatus.DUPLICATE
    # The other process's cached state was folded by version 1: it is dropped, and version 2 decides.
    assert warm.execute(Charged("o1")).events[0].event == Paid(9)
    with pytest.raises(InstanceClosed):
        mover.migrate_version("vorder", "o1", to="1")
    assert [e.event for e in mover.history("vorder", "o1")][:2] == [Placed(10), VersionMigrated("1", "2")]


def test_migrate_version_to_an_unregistered_version_writes_nothing(store: Store) -> None:
    service = WorkflowService(store, workflows=[OrderV1])
    service.execute(Place("o1", 10))
    with pytest.raises(VersionNotLoaded, match="version '3'"):
        service.migrate_version("vorder", "o1", to="3")
    info = store.instance("vorder", "o1")
    assert info is not None and (info.version, info.last_seq) == ("1", 1)


def test_registration_refuses_a_version_twice_or_an_unknown_default(store: Store) -> None:
    with pytest.raises(ConfigurationError, match="version '1' is registered twice"):
        WorkflowService(store, workflows=[OrderV1, OrderV1])
    with pytest.raises(ConfigurationError, match="default_version names workflow 'vorder' version '3'"):
        WorkflowService(store, workflows=[OrderV1, OrderV2], default_version={"vorder": "3"})
