"""Operator tools for changing a running workflow: rewrite old event rows, verify snapshots, export histories.

Each works on one workflow type through a `WorkflowService` (the codec and the decide step of the code
deployed now) and takes each instance's lock for its writes, like a decision (design/versioning.md).
"""

from ironflow_py.upgrade._events import UpgradeReport, upgrade_events
from ironflow_py.upgrade._history import HISTORY_FORMAT, export_history
from ironflow_py.upgrade._snapshots import SnapshotCheck, SnapshotStatus, verify_snapshots

__all__ = [
    "HISTORY_FORMAT",
    "SnapshotCheck",
    "SnapshotStatus",
    "UpgradeReport",
    "export_history",
    "upgrade_events",
    "verify_snapshots",
]
