"""What upcasting costs on the fold, the decision hot path's client side: none for a declared name.

Folds 20,000 stored events (parsed JSON, as the store hands them over) through `Decider.fold`:
- a workflow without upcasters (the path every decision takes; run this file against an older checkout to
  compare with the code before upcasting existed: only this row is printed there);
- the same workflow with upcasters declared, every row under a declared name (must equal the first row);
- every row under an old name, one and two upcast steps.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from benchmarks._common import print_table
from ironflow_py.codec import codec_for
from ironflow_py.decider import Decider
from ironflow_py.store.base import LoadedEvent
from tests.workflows import Counter, CounterState

ROWS = 20_000


def best_us(fn: Callable[[], Any], items: int, repeat: int = 15) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()  # CPU time: less sensitive to other load than wall time
        fn()
        best = min(best, time.process_time() - started)
    return best / items * 1e6


def rows(name: str, amount_key: str = "amount") -> list[LoadedEvent]:
    return [LoadedEvent(i, name, {amount_key: 1, "total": i}) for i in range(1, ROWS + 1)]


def fold_cost(workflow: Counter, events: list[LoadedEvent]) -> float:
    decider = Decider(workflow, codec_for(workflow))
    assert decider.fold("b", CounterState(), 0, events)[0].total == ROWS
    return best_us(lambda: decider.fold("b", CounterState(), 0, events), ROWS)


def main(url: str) -> None:
    table = [["no upcasters declared", f"{fold_cost(Counter(), rows('counter.added/1')):.3f}"]]
    if not hasattr(Counter, "upcasters"):  # a checkout from before upcasting: the baseline only
        print_table(f"fold cost per event, {ROWS:,} events, best of 15, CPU time", ["stored rows", "µs/event"], table)
        return
    from ironflow_py.upcasting import Upcast

    def renamed(data: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        return "counter.added/1", {"amount": data["amt"], "total": data["total"]}

    def older(data: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        return "counter.added/0", {"amt": data["a"], "total": data["total"]}

    class Upcasting(Counter):
        upcasters = {
            "counter.added/0": Upcast(renamed, to="counter.added/1"),
            "counter.added/-1": Upcast(older, to="counter.added/0"),
        }

    table += [
        ["upcasters declared, rows under declared names", f"{fold_cost(Upcasting(), rows('counter.added/1')):.3f}"],
        ["every row one upcast step old", f"{fold_cost(Upcasting(), rows('counter.added/0', 'amt')):.3f}"],
        ["every row two upcast steps old", f"{fold_cost(Upcasting(), rows('counter.added/-1', 'a')):.3f}"],
    ]
    print_table(f"fold cost per event, {ROWS:,} events, best of 15, CPU time", ["stored rows", "µs/event"], table)
