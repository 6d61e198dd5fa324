"""Decision rate as histories grow: 1 to 10,000 prior events per instance, with and without snapshots.

Cold: every decision goes to an instance no decision has touched (seeded with SQL), so nothing is cached:
this is the path a process pays after a restart. With snapshots the seed also holds the snapshot the
engine would have written (every 100 events), so the tail after it is what the engine would see.
Warm: the state cache on (the default), decisions round-robin over 50 seeded instances, each decided once
before the clock starts: the steady state of a running process, where a decision folds only its own
events and a snapshot is written every 100 of them.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from benchmarks._common import env_int, fresh_schema, load_average, print_table, quiet_logging, run_threads
from benchmarks.decisions import seed
from ironflow_py import PostgresStore, WorkflowService
from tests.workflows import Add, Counter

EVERY = 100


class SnapshottingCounter(Counter):
    snapshot_every = EVERY


def seed_snapshots(url: str, schema: str, instances: int, prior: int) -> None:
    at = prior - prior % EVERY
    if at == 0:
        return
    q = sql.SQL(
        "INSERT INTO {s}.snapshots SELECT 'counter', 'i' || i, %s, 1, "
        "jsonb_build_object('total', %s, 'finished', false, 'adds', %s), now() FROM generate_series(0, %s - 1) i"
    ).format(s=sql.Identifier(schema))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(q, (at, at, at, instances))


def rate(url: str, prior: int, snapshots: bool, decisions: int) -> float:
    workflow = SnapshottingCounter if snapshots else Counter
    with fresh_schema(url) as schema, PostgresStore.connect(url, schema=schema, max_size=1) as store:
        store.migrate()
        seed(url, schema, decisions, prior)
        if snapshots:
            seed_snapshots(url, schema, decisions, prior)
        service = WorkflowService(store, workflows=[workflow], state_cache_size=0)
        service.execute(Add("warmup"))
        return run_threads(1, decisions, lambda t, i: _check(service.execute(Add(f"i{i}")).events[0].seq, prior))


WARM_INSTANCES = 50


def warm_rate(url: str, prior: int, snapshots: bool, decisions: int) -> float:
    workflow = SnapshottingCounter if snapshots else Counter
    with fresh_schema(url) as schema, PostgresStore.connect(url, schema=schema, max_size=1) as store:
        store.migrate()
        seed(url, schema, WARM_INSTANCES, prior)
        if snapshots:
            seed_snapshots(url, schema, WARM_INSTANCES, prior)
        service = WorkflowService(store, workflows=[workflow])
        for i in range(WARM_INSTANCES):
            service.execute(Add(f"i{i}"))  # the one cold decision per instance, before the clock
        return run_threads(1, decisions, lambda t, i: _accepted(service.execute(Add(f"i{i % WARM_INSTANCES}"))))


def _accepted(outcome: object) -> None:
    assert getattr(outcome, "accepted", False)


def _check(seq: int, prior: int) -> None:
    assert seq == prior + 1


def main(url: str) -> None:
    quiet_logging()
    budget = env_int("BENCH_HISTORY_EVENTS", 600_000)
    rows = []
    base: dict[bool | str, float] = {}
    snapshot_decisions = env_int("BENCH_HISTORY_SNAPSHOT_DECISIONS", 400)
    for prior in (1, 100, 1_000, 10_000):
        # Without snapshots a decision costs O(prior): fewer of them keep the run short.
        counts = {False: max(30, min(800, budget // prior)), True: snapshot_decisions}
        cells = [f"{prior:,}"]
        for snapshots in (False, True):
            r = rate(url, prior, snapshots, counts[snapshots])
            base.setdefault(snapshots, r)
            cells += [f"{r:,.0f} ({counts[snapshots]})", f"{r / base[snapshots]:.2f}"]
        warm = warm_rate(url, prior, True, snapshot_decisions)
        base.setdefault("warm", warm)
        cells += [f"{warm:,.0f} ({snapshot_decisions})", f"{warm / base['warm']:.2f}"]
        rows.append(cells)
    warm_plain = warm_rate(url, 1, False, snapshot_decisions)
    print_table(
        "decisions/s by history length, 1 thread, (decisions timed); ratio = rate / rate at 1 prior event; "
        f"{load_average()}",
        [
            "prior events",
            "cold, no snapshots/s",
            "ratio",
            f"cold, snapshots every {EVERY}/s",
            "ratio",
            "warm cache + snapshots/s",
            "ratio",
        ],
        rows,
    )
    print(f"# warm cache, no snapshots, 1 prior event: {warm_plain:,.0f}/s ({snapshot_decisions} decisions)")
