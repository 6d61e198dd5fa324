"""One parent starts 10,000 children in one decision (design/composition.md).

Three tables:
- `fan-out and drain`: the one decision that queues N start rows (its commit time), then `EffectRuntime`
  threads deliver the starts (N child decisions; each child completes on its first input, so its closing
  transaction queues a notice) and the notices (N parent decisions), until the parent closes. Decisions/s
  is 2N over the drain time.
- `notice cost`: the parent's decision on a child's notice, run N times in a row on one instance whose
  `Join` grows to N keys (the same call the delivery makes, without the worker around it), reported per
  bucket of notices: p50 and p99 in ms. With snapshots every 100 events the cost at the last bucket should
  match the first; without snapshots and without the state cache each decision refolds the whole history.
  `SizedSnapshotParent` spaces its snapshots by the join's size (amortised); without the state cache each
  decision decodes a snapshot as large as the join, so that column grows with n whatever the rule.
`BENCH_CHILDREN` (default 10000) sizes it; `BENCH_CHILD_WORKERS` (default 4) is the handler threads;
`BENCH_CHILDREN_SAMPLE` (default 200) notices per bucket are measured with the state cache off.
"""

from __future__ import annotations

import random
import statistics
import threading
import time
from datetime import datetime
from typing import Any

import attrs

from benchmarks._common import env_int, fresh_schema, print_table, quiet_logging
from ironflow_py import Completed, Decision, EffectRegistry, EffectRuntime, PostgresStore, Workflow, WorkflowService
from ironflow_py.composition import ChildRef, Join
from ironflow_py.lifecycle import RunOutcome


@attrs.frozen
class Spawn:
    parent_id: str
    count: int


@attrs.frozen
class Notice:
    parent_id: str
    key: str
    value: int


@attrs.frozen
class Spawned:
    count: int


@attrs.frozen
class Noted:
    key: str
    value: int


@attrs.frozen
class ParentState:
    join: Join[int] = attrs.field(factory=Join)


def child_key(parent_id: str, i: int) -> str:
    return f"{parent_id}/c{i}"


class Parent(Workflow[ParentState, Any, Any, Any]):
    type = "bench_parent"
    inputs = {"bench_parent.spawn/1": Spawn, "bench_parent.notice/1": Notice}
    events = {"bench_parent.spawned/1": Spawned, "bench_parent.noted/1": Noted}
    state_type = ParentState

    def initial_state(self) -> ParentState:
        return ParentState()

    def workflow_id(self, input: Any) -> str:
        return str(input.parent_id)

    def evolve(self, state: ParentState, event: Any) -> ParentState:
        if isinstance(event, Spawned):
            return ParentState(Join.of(child_key("p", i) for i in range(event.count)))
        return ParentState(state.join.resolve(event.key, event.value))

    def outcome(self, state: ParentState) -> RunOutcome | None:
        return Completed(len(state.join.keys)) if state.join.done else None

    def child_closed_input(self, child: ChildRef, outcome: RunOutcome) -> Any:
        assert isinstance(outcome, Completed)
        return Notice(child.workflow_id.split("/")[0], child.workflow_id, outcome.result)

    def decide(self, now: datetime, state: ParentState, input: Any) -> Decision[Any, Any]:
        if isinstance(input, Spawn):
            decision: Decision[Any, Any] = Decision.accept(Spawned(input.count))
            for i in range(input.count):
                key = child_key(input.parent_id, i)
                decision = decision.start_child(Echo(key, i), id=key)
            return decision
        return Decision.accept(Noted(input.key, input.value))


class SnapshottingParent(Parent):
    snapshot_every = 100


class SizedSnapshotParent(Parent):
    """Snapshots amortised by size: at least 100 events apart, and never before as many events as the join
    holds resolutions (design/composition.md). Each snapshot encodes O(n), so spacing them O(n) apart keeps
    the cost per notice constant; they land at about 100, 200, 400, ... 6400 resolutions."""

    def should_snapshot(self, state: ParentState, seq: int, events_since_snapshot: int) -> bool:
        return events_since_snapshot >= max(100, len(state.join.resolved))


@attrs.frozen
class Echo:
    child_id: str
    value: int


@attrs.frozen
class Echoed:
    value: int


class Child(Workflow[int | None, Echo, Echoed, Any]):
    """Completes on its first input: its closing transaction queues the notice to the parent."""

    type = "bench_child"
    inputs = {"bench_child.echo/1": Echo}
    events = {"bench_child.echoed/1": Echoed}
    result_type = int

    def initial_state(self) -> int | None:
        return None

    def workflow_id(self, input: Echo) -> str:
        return input.child_id

    def evolve(self, state: int | None, event: Echoed) -> int | None:
        return event.value

    def outcome(self, state: int | None) -> RunOutcome | None:
        return None if state is None else Completed(state)

    def decide(self, now: datetime, state: int | None, input: Echo) -> Decision[Echoed, Any]:
        return Decision.accept(Echoed(input.value))


def fan_out_and_drain(url: str, n: int, workers: int, parent: type[Parent]) -> list[str]:
    with fresh_schema(url, "bench_children") as schema:
        store = PostgresStore.connect(url, schema=schema, max_size=workers + 4)
        store.migrate()
        try:
            service = WorkflowService(store, workflows=[parent, Child])
            rt = EffectRuntime(
                service,
                EffectRegistry(),
                concurrency=workers,
                batch_size=200,
                handle_signals=False,
                rng=random.Random(0),
                poll_interval=0.2,
            )
            started = time.perf_counter()
            service.execute(Spawn("p", n))
            committed = time.perf_counter()
            thread = threading.Thread(target=rt.run, daemon=True)
            thread.start()
            service.wait("bench_parent", "p", timeout=3600)
            drained = time.perf_counter()
            rt.stop()
            thread.join(60)
            drain = drained - committed
            return [
                parent.__name__,
                str(n),
                f"{(committed - started) * 1000:.0f}",
                f"{drain:.1f}",
                f"{2 * n / drain:.0f}",
            ]
        finally:
            store.close()


def notice_costs(
    url: str, n: int, parent: type[Parent], cache: bool, buckets: int = 5, sample: int | None = None
) -> list[list[str]]:
    """The parent's decision on each of `n` notices, by bucket: wall p50/p99 and client CPU p50 (ms).

    With `sample`, only the last `sample` notices of each bucket are measured (through a service with the
    given cache setting); the others are delivered by a second service with the state cache on, only to
    grow the join quickly. The two share the store, so the measured decision is the real one for a join of
    that size (a cache entry is proven by the stored events and refolds the other service's writes).
    """
    with fresh_schema(url, "bench_notices") as schema:
        store = PostgresStore.connect(url, schema=schema, max_size=4)
        store.migrate()
        try:
            service = WorkflowService(store, workflows=[parent, Child], state_cache_size=10_000 if cache else 0)
            filler = service if sample is None else WorkflowService(store, workflows=[parent, Child])
            # The fan-out decision itself is not measured here; its start rows are left undelivered.
            service.execute(Spawn("p", n))
            size = n // buckets
            walls: list[list[float]] = [[] for _ in range(buckets)]
            cpus: list[list[float]] = [[] for _ in range(buckets)]
            for i in range(n):
                b = min(i // size, buckets - 1)
                measured = sample is None or i % size >= size - sample
                key = child_key("p", i)
                target = service if measured else filler
                c0, t0 = time.process_time(), time.perf_counter()
                target.execute_on("bench_parent", "p", Notice("p", key, i), input_key=f"n{i}")
                if measured:
                    walls[b].append((time.perf_counter() - t0) * 1000)
                    cpus[b].append((time.process_time() - c0) * 1000)
            rows = []
            for b in range(buckets):
                part = sorted(walls[b])
                rows.append(
                    [
                        parent.__name__,
                        "on" if cache else "off",
                        f"{b * size + 1}-{(b + 1) * size}" + ("" if sample is None else f" (last {sample})"),
                        f"{statistics.median(part):.2f}",
                        f"{part[min(len(part) - 1, int(0.99 * len(part)))]:.2f}",
                        f"{statistics.median(cpus[b]):.2f}",
                    ]
                )
            return rows
        finally:
            store.close()


def main(url: str) -> None:
    quiet_logging()
    n = env_int("BENCH_CHILDREN", 10_000)
    workers = env_int("BENCH_CHILD_WORKERS", 4)
    rows = [fan_out_and_drain(url, n, workers, SnapshottingParent)]
    print_table(
        f"children: one parent starts {n} children in one decision ({workers} handler threads)",
        ["parent", "children", "fan-out decision ms", "drain s", "decisions/s"],
        rows,
    )
    cost_rows = []
    sample = env_int("BENCH_CHILDREN_SAMPLE", 200)
    for parent in (SnapshottingParent, SizedSnapshotParent):
        for cache in (True, False):
            cost_rows += notice_costs(url, n, parent, cache, sample=None if cache else sample)
    small = min(n, env_int("BENCH_CHILDREN_UNSNAPSHOTTED", 2_000))
    cost_rows += notice_costs(url, small, Parent, cache=False, sample=sample)
    print_table(
        "children: the parent's decision on each notice, by bucket of notices (snapshots every 100, by size, none)",
        ["parent", "state cache", "notices", "p50 ms", "p99 ms", "client CPU p50 ms"],
        cost_rows,
    )


if __name__ == "__main__":
    from benchmarks._common import database_url

    main(database_url())
