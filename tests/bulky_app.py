"""Effects with large payloads, for the byte-bounded prefetch test (`tests.bulky_app:app` for worker processes).

`Ship(id, count, size)` emits `count` `Blob` effects whose payload holds `size` characters. The handler
writes `started-<index>` into IRONFLOW_TEST_DIR and blocks until the file `go` appears there.
"""

from __future__ import annotations

import os
import time
from datetime import datetime
from pathlib import Path

import attrs

from ironflow_py import App, Decision, EffectContext, EffectRegistry, Workflow


@attrs.frozen
class Ship:
    ship_id: str
    count: int
    size: int


@attrs.frozen
class Shipped:
    count: int


@attrs.frozen
class Blob:
    ship_id: str
    index: int
    data: str


class Bulky(Workflow[int, Ship, Shipped, Blob]):
    type = "bulky"
    inputs = {"bulky.ship/1": Ship}
    events = {"bulky.shipped/1": Shipped}
    effects = {"bulky.blob/1": Blob}

    def initial_state(self) -> int:
        return 0

    def workflow_id(self, input: Ship) -> str:
        return input.ship_id

    def evolve(self, state: int, event: Shipped) -> int:
        return state + event.count

    def decide(self, now: datetime, state: int, input: Ship) -> Decision[Shipped, Blob]:
        blobs = [Blob(input.ship_id, i, (f"{i:04}" * (input.size // 4 + 1))[: input.size]) for i in range(input.count)]
        return Decision.accept(Shipped(input.count)).with_effect(*blobs)


registry = EffectRegistry()


@registry.handler(Blob)
def handle_blob(effect: Blob, ctx: EffectContext) -> None:
    folder = Path(os.environ["IRONFLOW_TEST_DIR"])
    (folder / f"started-{effect.index}").write_text(str(len(effect.data)))
    while not (folder / "go").exists():
        time.sleep(0.01)  # a handler waiting for the test's go-ahead


app = App(workflows=[Bulky], effects=registry)
