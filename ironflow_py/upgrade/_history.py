"""`history export`: one instance's stored events as a JSON document, for golden-history tests."""

from __future__ import annotations

from typing import Any, Final

from ironflow_py.errors import NotFound
from ironflow_py.service import WorkflowService

#: The `format` field of an exported history; `check_history_compat` reads this version.
HISTORY_FORMAT: Final = "ironflow_py.history/1"


def export_history(service: WorkflowService, workflow_type: str, workflow_id: str) -> dict[str, Any]:
    """One instance's events exactly as stored (old names and shapes included), as JSON-ready data.

    Save it in your repository and let `ironflow_py.testing.check_history_compat` fold it with every later
    version of the code, so a change that can no longer read it fails in CI, not in production.

    Args:
        service: A service with the workflow registered.
        workflow_type: The workflow type.
        workflow_id: The instance.

    Returns:
        `{"format", "workflow_type", "workflow_id", "events": [{"seq", "type", "data", "recorded_at"}]}`,
        `recorded_at` as RFC 3339 text.

    Raises:
        NotFound: The type is not registered, or the instance has no events.
        StoreError: The database failed.
    """
    service.registration(workflow_type)
    stored = service.store.events(workflow_type, workflow_id)
    if not stored:
        raise NotFound(
            f"workflow {workflow_type!r} has no instance {workflow_id!r}",
            workflow_type=workflow_type,
            workflow_id=workflow_id,
        )
    return {
        "format": HISTORY_FORMAT,
        "workflow_type": workflow_type,
        "workflow_id": workflow_id,
        "events": [
            {"seq": e.seq, "type": e.type_name, "data": e.data, "recorded_at": e.recorded_at.isoformat()}
            for e in stored
        ],
    }
