"""An app for worker processes in the composition crash tests: the job's notice handling can be made to stall.

`IRONFLOW_TEST_DIR/stall-<where>` present: the worker writes `stalled-<where>-<pid>` and stalls there, so the
test can SIGKILL it at that point; `where` is `hook` (in `child_closed_input`, the notice claimed and not
yet delivered) or `decide` (in the parent's decision on the notice, inside the delivering transaction).
"""

from __future__ import annotations

import os
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from ironflow_py import App, Decision, EffectRegistry
from ironflow_py.composition import ChildRef
from ironflow_py.lifecycle import RunOutcome
from tests.composition_workflows import ChildDone, Job, JobState, Task


def _stall(where: str) -> None:
    folder = Path(os.environ.get("IRONFLOW_TEST_DIR", "/nonexistent"))
    if (folder / f"stall-{where}").exists():
        (folder / f"stalled-{where}-{os.getpid()}").write_text("")
        threading.Event().wait(600)  # until the test kills this process


class StallingJob(Job):
    def child_closed_input(self, child: ChildRef, outcome: RunOutcome) -> Any:
        _stall("hook")
        return super().child_closed_input(child, outcome)

    def decide(self, now: datetime, state: JobState, input: Any) -> Decision[Any, Any]:
        if isinstance(input, ChildDone):
            _stall("decide")
        return super().decide(now, state, input)


app = App(workflows=[StallingJob, Task], effects=EffectRegistry())
