"""A state machine with a Task, a Retry, a Wait and a Map, and a worker process that can stop at a boundary.

`python -m tests.asl.recovery_app` runs an EffectRuntime for it on the schema in IRONFLOW_SCHEMA. With
IRONFLOW_KILL_AT=<kind>:<n> it stops at the n-th boundary of that kind, writes the boundary's name to
$IRONFLOW_TEST_DIR/reached and blocks until the test kills it:
- ``handler:n``: inside the n-th task handler call, before it returns;
- ``written:n``: inside the n-th deciding transaction, after its write and before its commit;
- ``committed:n``: right after the n-th deciding transaction committed.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ironflow_py.asl import AslWorkflow, StateMachine, TaskContext, TaskFailed, TaskRegistry

DEFINITION = {
    "StartAt": "Charge",
    "States": {
        "Charge": {
            "Type": "Task",
            "Resource": "arn:charge",
            "Retry": [{"ErrorEquals": ["Flaky"], "IntervalSeconds": 1, "MaxAttempts": 2}],
            "ResultPath": "$.charge",
            "Next": "Pause",
        },
        "Pause": {"Type": "Wait", "Seconds": 1, "Next": "Ship"},
        "Ship": {
            "Type": "Map",
            "ItemsPath": "$.items",
            "MaxConcurrency": 1,
            "Iterator": {"StartAt": "Pack", "States": {"Pack": {"Type": "Task", "Resource": "arn:pack", "End": True}}},
            "ResultPath": "$.packed",
            "End": True,
        },
    },
}
Checkout = AslWorkflow.define("recovery", StateMachine.parse(DEFINITION))
INPUT = {"order": "o-1", "items": ["a", "b"]}


class Boundaries:
    """Counts boundaries by kind and blocks forever at the one named by IRONFLOW_KILL_AT."""

    def __init__(self, kill_at: str | None, folder: Path | None) -> None:
        self.kill_at = kill_at
        self.folder = folder
        self.seen: Counter[str] = Counter()
        self._lock = threading.Lock()

    def reach(self, kind: str) -> None:
        with self._lock:
            self.seen[kind] += 1
            name = f"{kind}:{self.seen[kind]}"
        if name == self.kill_at and self.folder is not None:
            # Written aside and renamed, so the test never reads a half-written file.
            (self.folder / "reached.tmp").write_text(name)
            os.replace(self.folder / "reached.tmp", self.folder / "reached")
            threading.Event().wait()  # until SIGKILL


def tasks(boundaries: Boundaries) -> TaskRegistry:
    registry = TaskRegistry()

    @registry.resource("arn:charge")
    def charge(payload: Any, ctx: TaskContext) -> Any:
        boundaries.reach("handler")
        if ctx.attempt == 0:
            raise TaskFailed("Flaky", "the first try always fails")
        return {"id": f"ch-{payload['order']}"}

    @registry.resource("arn:pack")
    def pack(payload: Any, ctx: TaskContext) -> Any:
        boundaries.reach("handler")
        return {"packed": payload}

    return registry


def main() -> None:
    from ironflow_py import PostgresStore, WorkflowService
    from ironflow_py.effects import EffectRuntime

    folder = Path(os.environ["IRONFLOW_TEST_DIR"])
    boundaries = Boundaries(os.environ.get("IRONFLOW_KILL_AT") or None, folder)
    store = PostgresStore.connect(os.environ["IRONFLOW_DATABASE_URL"], schema=os.environ["IRONFLOW_SCHEMA"])
    real_locked = store.locked

    @contextmanager
    def locked(*args: Any, **kwargs: Any) -> Iterator[Any]:
        wrote = False
        with real_locked(*args, **kwargs) as tx:
            real_write = tx.write

            def write(writes: Any) -> Any:
                nonlocal wrote
                written = real_write(writes)
                wrote = True
                boundaries.reach("written")
                return written

            setattr(tx, "write", write)  # noqa: B010 - the test's probe between write and commit
            yield tx
        if wrote:
            boundaries.reach("committed")

    setattr(store, "locked", locked)  # noqa: B010 - the test's probe into the transaction boundary
    service = WorkflowService(store, workflows=[Checkout])
    runtime = EffectRuntime(service, tasks(boundaries).effects(), concurrency=1, lease=2.0, poll_interval=0.2)
    (folder / "started").write_text("yes")
    runtime.run()


if __name__ == "__main__":
    main()


def cli_app() -> Any:
    """The same machine as an App with its task handlers, for `ironflow-py --app ... asl start`."""
    from ironflow_py import App

    return App(workflows=[Checkout], effects=tasks(Boundaries(None, None)).effects())
