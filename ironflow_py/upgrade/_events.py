"""`events upgrade`: rewrite events stored under old names into the shape the code declares now."""

from __future__ import annotations

import attrs

from ironflow_py.errors import ConfigurationError, VersionNotLoaded
from ironflow_py.service import WorkflowService


@attrs.frozen
class UpgradeReport:
    """What `upgrade_events` rewrote.

    Attributes:
        instances: Instances that had at least one event rewritten.
        events: Event rows rewritten.
        transactions: Locked transactions that wrote (each at most `batch` rows).
        skipped: Instances left as stored because the version they record is not registered in this
            process (their own code, run elsewhere, may not read the newer names).
        skipped_versions: Those versions, sorted.
    """

    instances: int
    events: int
    transactions: int
    skipped: int = 0
    skipped_versions: tuple[str, ...] = ()


def upgrade_events(service: WorkflowService, workflow_type: str, *, batch: int = 500) -> UpgradeReport:
    """Rewrite every event of one type stored under an upcast name, under each instance's lock, in batches.

    Opt-in: reading never needs it, since upcasters apply on every decode. Each row is upcast, structured
    and encoded again by the code of the version the instance records (read under its lock, as a decision
    reads it: design/versioning.md, "Versions side by side"), so what is stored is exactly what that code
    would write, and an instance of an older version keeps the names its own code reads. An instance whose
    version is not registered here is left as stored and counted in `skipped`. A row that does not decode
    raises before its batch writes anything. Sequence, position and time stay, so no projection cursor
    moves, and the decoded history (hence every state, cached or snapshotted) is unchanged. Safe to run
    while workers run, and to run again (it then finds nothing).

    Args:
        service: A service with the workflow registered (its versions' code and upcasters).
        workflow_type: The workflow type.
        batch: Instances looked up per page, and rows rewritten per locked transaction (at least 1).

    Returns:
        How many instances, rows and transactions were rewritten, and which instances were skipped.

    Raises:
        ConfigurationError: `batch` is below 1.
        NotFound: The workflow type is not registered.
        DecodeError: A stored row does not upcast or structure (that instance's batch writes nothing).
        StoreError: The database failed.
    """
    if batch < 1:
        raise ConfigurationError("events upgrade needs --batch of at least 1")
    reg = service.registration(workflow_type)
    store = service.store
    # Any version's upcast names find the candidates; each instance then rewrites only its own version's.
    names = sorted({name for decider in reg.versions.values() for name in decider.codec.upcasters.names()})
    instances = events = transactions = skipped = 0
    skipped_versions: set[str] = set()
    after: str | None = None
    while names:
        ids = store.instances_with_events(workflow_type, names, after=after, limit=batch)
        if not ids:
            break
        for workflow_id in ids:
            rewritten_here = 0
            while True:
                # The instance's lock: no decision folds these rows while they are half rewritten, and its
                # version cannot move (migrate_version holds the same lock).
                with store.locked(workflow_type, workflow_id) as tx:
                    info = tx.instance()
                    try:
                        decider = reg.handler.decider_for(info.version if info else None, workflow_id)
                    except VersionNotLoaded as exc:
                        skipped_versions.add(exc.version)
                        skipped += 1
                        break
                    codec = decider.codec
                    own = codec.upcasters.names()
                    rows = tx.events_named(own, batch) if own else []
                    rewritten = []
                    for seq, name, data in rows:
                        event = codec.decode_event(name, data, workflow_id, seq)  # upcasts; raises first
                        new_name, text = codec.encode_event(event, workflow_id)
                        rewritten.append((seq, new_name, text))
                    if rewritten:
                        tx.rewrite_events(rewritten)
                if not rows:
                    break
                transactions += 1
                rewritten_here += len(rows)
                if len(rows) < batch:
                    break
            events += rewritten_here
            instances += rewritten_here > 0
        after = ids[-1]
    return UpgradeReport(instances, events, transactions, skipped, tuple(sorted(skipped_versions)))
