"""Reads on a real streaming replica (design/scale-out.md, "Read replicas"): a primary and a hot standby made
with `pg_basebackup -R`, on loopback ports. Pausing replay on the standby makes its lag explicit, so every
ordering below is proved with the replay switch, never with sleeps."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator

import pytest

from ironflow_py import PostgresStore, ReplicaBehind, WorkflowService, inspection
from ironflow_py.cli import main
from ironflow_py.lifecycle import Completed
from ironflow_py.records import InstanceStatus
from tests.contract.test_evolve_change import BuggyCounter, FixedCounter
from tests.reliability import replica_pg
from tests.workflows import Add, Counter, CounterState, Finish

pytestmark = pytest.mark.skipif(
    not replica_pg.available(),
    reason="needs the PostgreSQL server binaries (initdb, pg_ctl, pg_basebackup in /usr/lib/postgresql/*/bin)",
)


@pytest.fixture(scope="module")
def pair() -> Iterator[replica_pg.ReplicaPair]:
    pair = replica_pg.ReplicaPair()
    try:
        yield pair
    finally:
        pair.close()


@pytest.fixture
def stores(pair: replica_pg.ReplicaPair) -> Iterator[tuple[PostgresStore, PostgresStore]]:
    """A fresh schema migrated on the primary, and a store on the standby once it has replayed it."""
    pair.resume_replay()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with (
        PostgresStore.connect(pair.primary_url, schema=schema) as primary,
        PostgresStore.connect(pair.replica_url, schema=schema) as replica,
    ):
        primary.migrate()
        replica.wait_for_replay(primary.wal_position(), 60)
        yield primary, replica
    pair.resume_replay()


def test_reads_come_from_the_replica_and_min_lsn_waits_until_it_has_the_write(
    pair: replica_pg.ReplicaPair, stores: tuple[PostgresStore, PostgresStore]
) -> None:
    primary, replica = stores
    service = WorkflowService(primary, workflows=[Counter], read_store=replica, replica_timeout=0.3)
    first = service.execute(Add("c1", 1))
    assert first.wal_position is not None
    assert service.state("counter", "c1", min_lsn=first.wal_position) == CounterState(total=1, adds=1)

    pair.pause_replay()
    second = service.execute(Add("c1", 2))  # committed on the primary; the standby receives, does not apply
    assert second.wal_position is not None and second.wal_position != first.wal_position
    # Without min_lsn the replica answers as of what it has applied: the reads really go there.
    assert service.state("counter", "c1") == CounterState(total=1, adds=1)
    assert len(service.history("counter", "c1")) == 1
    reads: dict[str, Callable[[str], object]] = {
        "state": lambda lsn: service.state("counter", "c1", min_lsn=lsn),
        "history": lambda lsn: service.history("counter", "c1", min_lsn=lsn),
        "instance": lambda lsn: service.instance("counter", "c1", min_lsn=lsn),
        "result": lambda lsn: service.result("counter", "c1", min_lsn=lsn),
        "list_instances": lambda lsn: service.list_instances("counter", min_lsn=lsn),
    }
    for name, read in reads.items():
        with pytest.raises(ReplicaBehind) as caught:
            read(second.wal_position)
        assert caught.value.min_lsn == second.wal_position, name
        assert caught.value.replayed is not None, name
        read(first.wal_position)  # already replayed: answers at once

    pair.resume_replay()
    assert service.state("counter", "c1", min_lsn=second.wal_position) == second.state == CounterState(3, adds=2)
    assert [e.seq for e in service.history("counter", "c1", min_lsn=second.wal_position)] == [1, 2]


def test_decisions_waits_and_inspection_work_with_a_replica(stores: tuple[PostgresStore, PostgresStore]) -> None:
    """Decisions and waits stay on the primary (a standby refuses writes and LISTEN); result, list and the
    inspect report read the standby."""
    primary, replica = stores
    service = WorkflowService(primary, workflows=[Counter], read_store=replica)
    service.execute(Add("c1", 5))
    done = service.execute(Finish("c1"))
    assert done.wal_position is not None
    assert service.wait("counter", "c1", timeout=30) == Completed(None).at("counter", "c1")
    assert service.result("counter", "c1", min_lsn=done.wal_position) == Completed(None).at("counter", "c1")
    rows = service.list_instances("counter", InstanceStatus.COMPLETED, min_lsn=done.wal_position)
    assert [r.workflow_id for r in rows] == ["c1"]
    report = inspection.instance_report(service, "counter", "c1")
    assert [e.seq for e in report.events] == [1, 2] and report.terminal
    assert [e.effect_type for e in report.effects] == ["counter.notify/1"]


@pytest.mark.parametrize("cache", [0, 10], ids=["cold", "warm"])
def test_state_on_the_replica_is_the_fold_a_decision_starts_from(
    stores: tuple[PostgresStore, PostgresStore], cache: int
) -> None:
    """Lock-free on the standby, yet the same origin (snapshot written by an older evolve) and fold as the
    primary's locked read and the next decision (design/versioning.md)."""
    primary, replica = stores
    old = WorkflowService(primary, workflows=[BuggyCounter], state_cache_size=cache)
    for _ in range(4):
        old.execute(Add("c1", 1))  # snapshot at 3 by the buggy evolve
    on_primary = WorkflowService(primary, workflows=[FixedCounter], state_cache_size=cache)
    on_replica = WorkflowService(primary, workflows=[FixedCounter], state_cache_size=cache, read_store=replica)
    lsn = primary.wal_position()
    assert on_replica.state("snappy", "c1", min_lsn=lsn) == on_primary.state("snappy", "c1") == CounterState(4, adds=7)
    decided = on_replica.execute(Add("c1", 1))
    assert on_replica.state("snappy", "c1", min_lsn=decided.wal_position) == decided.state


def test_the_cli_reads_from_read_url(
    pair: replica_pg.ReplicaPair, stores: tuple[PostgresStore, PostgresStore], capsys: pytest.CaptureFixture[str]
) -> None:
    """`--read-url`: `inspect show` answers from the standby (behind while replay is paused)."""
    primary, _ = stores
    service = WorkflowService(primary, workflows=[FixedCounter])
    service.execute(Add("c1", 1))
    app = "tests.apps:fixed_counter"
    base = ["--database-url", pair.primary_url, "--schema", primary.schema, "--json", "--app", app]
    primary.wait_for_replay(primary.wal_position(), 1)  # a primary: at once
    with PostgresStore.connect(pair.replica_url, schema=primary.schema) as replica:
        replica.wait_for_replay(primary.wal_position(), 60)
    pair.pause_replay()
    service.execute(Add("c1", 1))
    capsys.readouterr()
    assert main([*base, "--read-url", pair.replica_url, "inspect", "show", "snappy", "c1"]) == 0
    assert json.loads(capsys.readouterr().out)["state"]["total"] == 1
    assert main([*base, "inspect", "show", "snappy", "c1"]) == 0
    assert json.loads(capsys.readouterr().out)["state"]["total"] == 2


def test_the_web_view_reads_its_pages_from_the_replica(
    pair: replica_pg.ReplicaPair, stores: tuple[PostgresStore, PostgresStore]
) -> None:
    """Overview, instance list and instance page render on the standby; the instance page shows what the
    standby has replayed (one event while replay is paused), the primary's view shows both."""
    from starlette.testclient import TestClient

    from ironflow_py.web import create_app

    primary, replica = stores
    on_replica = WorkflowService(primary, workflows=[Counter], read_store=replica)
    on_primary = WorkflowService(primary, workflows=[Counter])
    first = on_replica.execute(Add("c1", 1))
    replica.wait_for_replay(first.wal_position or "0/0", 60)
    pair.pause_replay()
    on_replica.execute(Add("c1", 1))
    with TestClient(create_app(on_replica)) as web, TestClient(create_app(on_primary)) as direct:
        for path in ("/", "/instances"):
            assert web.get(path).status_code == 200, path
        page = web.get("/instances/counter/c1")
        assert page.status_code == 200
        assert page.text.count("counter.added/1") < direct.get("/instances/counter/c1").text.count("counter.added/1")
