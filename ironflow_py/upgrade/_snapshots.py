"""`snapshots verify`: fold each instance from scratch and compare the state with its stored snapshot."""

from __future__ import annotations

import enum
from collections.abc import Iterator

import attrs

from ironflow_py.codec import loads
from ironflow_py.decider import Decider
from ironflow_py.errors import IronflowError, VersionNotLoaded
from ironflow_py.service import WorkflowService
from ironflow_py.store.base import NewSnapshot, StoredSnapshot, Transaction, Writes


class SnapshotStatus(enum.Enum):
    """What verifying one snapshot found."""

    #: The fold from scratch gives the stored state.
    OK = "ok"
    #: It differs: an older `evolve` (or a bug) wrote it, and decisions would start from it.
    MISMATCH = "mismatch"
    #: Written under another `state_version`: the engine already ignores and replaces it.
    OTHER_VERSION = "other_version"
    #: The history could not be folded by the current code (the detail says why).
    UNREADABLE = "unreadable"
    #: The instance records a version not registered in this process: not folded, never dropped (the
    #: detail names the version).
    VERSION_NOT_LOADED = "version_not_loaded"


@attrs.frozen
class SnapshotCheck:
    """One instance's snapshot, verified.

    Attributes:
        workflow_id: The instance.
        seq: The sequence the snapshot covers.
        status: What the comparison found.
        detail: For a mismatch, the top-level fields that differ (names only, never values); for an
            unreadable history, the typed error.
        dropped: True if the snapshot was replaced by one folded from scratch (`drop=True` and a mismatch).
    """

    workflow_id: str
    seq: int
    status: SnapshotStatus
    detail: str = ""
    dropped: bool = False


def _differing_fields(fresh: object, stored: object) -> str:
    if isinstance(fresh, dict) and isinstance(stored, dict):
        keys = sorted(k for k in fresh.keys() | stored.keys() if fresh.get(k) != stored.get(k))
        return "fields differ: " + ", ".join(keys)
    return "the state differs"


def verify_snapshots(service: WorkflowService, workflow_type: str, *, drop: bool = False) -> Iterator[SnapshotCheck]:
    """Fold every instance of one type that has a snapshot from its first event, and compare.

    Each instance is folded by the code of the version it records (read under its lock: design/versioning.md,
    "Versions side by side"), since versions that share a `state_version` share snapshots but may fold
    differently; an instance whose version is not registered here is reported `VERSION_NOT_LOADED` and left.

    A snapshot stores what `evolve` computed when it was written. If `evolve` changed since without a
    `state_version` bump, decisions (and `WorkflowService.state`, which rebuilds the same way) start from
    that old result. This finds such snapshots. With `drop`, each mismatching one is replaced, under the
    instance's lock, by the state folded from scratch at the instance's last event. A snapshot at the last
    event is newer than any state a worker has cached for the instance, so every worker's next rebuild of it
    starts from the replacement: no worker keeps a state derived from the stale snapshot, and none needs a
    restart (design/versioning.md).

    Args:
        service: A service with the workflow registered (the code deployed now).
        workflow_type: The workflow type.
        drop: Replace the snapshots that do not match.

    Yields:
        One check per instance with a snapshot, in (type, id) order.

    Raises:
        NotFound: The workflow type is not registered.
        StoreError: The database failed.
    """
    reg = service.registration(workflow_type)
    store = service.store
    after: tuple[str, str] | None = None
    while True:
        page = store.list_instances(workflow_type, limit=100, after=after)
        if not page:
            return
        after = (page[-1].workflow_type, page[-1].workflow_id)
        for info in page:
            workflow_id = info.workflow_id
            if store.latest_snapshot(workflow_type, workflow_id) is None:
                continue
            # Under the lock, so the snapshot and the events it covers are read as one consistent history.
            with store.locked(workflow_type, workflow_id) as tx:
                snap = tx.load(with_snapshot=True).snapshot
                if snap is None:
                    continue
                recorded = tx.instance()
                try:
                    decider = reg.handler.decider_for(recorded.version if recorded else None, workflow_id)
                except VersionNotLoaded as exc:
                    check = SnapshotCheck(
                        workflow_id,
                        snap.seq,
                        SnapshotStatus.VERSION_NOT_LOADED,
                        f"it runs version {exc.version!r}, which this process has not registered",
                    )
                else:
                    check = _verify(service, tx, workflow_id, snap, decider, drop)
            yield check


def _verify(
    service: WorkflowService, tx: Transaction, workflow_id: str, snap: StoredSnapshot, decider: Decider, drop: bool
) -> SnapshotCheck:
    """One instance's snapshot against `decider`'s fold from scratch, in its locked transaction."""
    codec, version = decider.codec, decider.workflow.state_version
    if snap.state_version != version:
        return SnapshotCheck(workflow_id, snap.seq, SnapshotStatus.OTHER_VERSION)
    events = tx.events_after(0)
    covered = [e for e in events if e.seq <= snap.seq]
    try:
        state, _ = decider.fold(workflow_id, decider.initial(workflow_id), 0, covered)
        fresh = loads(codec.encode_state(state, workflow_id))
    except IronflowError as exc:
        return SnapshotCheck(workflow_id, snap.seq, SnapshotStatus.UNREADABLE, str(exc))
    if fresh == snap.data:
        return SnapshotCheck(workflow_id, snap.seq, SnapshotStatus.OK)
    if drop:
        tail = [e for e in events if e.seq > snap.seq]
        state, last = decider.fold(workflow_id, state, snap.seq, tail)
        snapshot = NewSnapshot(version, codec.encode_state(state, workflow_id))
        # The same upsert a decision makes: the snapshot row at `last` (design/snapshots.md).
        tx.write(Writes(service.clock.now(), last, snapshot=snapshot))
    return SnapshotCheck(workflow_id, snap.seq, SnapshotStatus.MISMATCH, _differing_fields(fresh, snap.data), drop)
