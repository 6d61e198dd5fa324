"""Decision rate as histories grow: 1 to 10,000 prior events per instance, with and without snapshots.

Cold: every decision goes to an instance no decision has touched (seeded with SQL), so nothing is cached:
this is the path a process pays after a restart. With snapshots the seed also holds the snapshot the
engine would have written (every 100 events), so the tail after it is what the engine would see.
Warm: the state cache on (the default), decisions round-robin over 50 seeded instances, each decided once
before the clock starts: the steady state of a running process, where a decision folds only its own
events and a snapshot is written every 100 of them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql

from benchmarks._common import env_int, fresh_schema, load_average, print_table, quiet_logging, run_threads
from benchmarks.decisions import Rate, connect, seed, timed
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
        "INSERT INTO {s}.snapshots (workflow_type, workflow_id, seq, state_version, payload, created_at, bucket) "
        "SELECT 'counter', 'i' || i, %s, 1, jsonb_build_object('total', %s, 'finished', false, 'adds', %s), now(), "
        "{s}.instance_bucket('counter', 'i' || i) FROM generate_series(0, %s - 1) i"
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


@contextmanager
def warm_service(
    url: str, instances: int, prior: int, snapshots: bool
) -> Iterator[tuple[PostgresStore, WorkflowService]]:
    """A fresh schema with `instances` seeded counters (and their snapshots), each decided once before the
    clock starts, so the state cache holds them all: the steady state of a running process."""
    workflow = SnapshottingCounter if snapshots else Counter
    with fresh_schema(url) as schema, connect(url, schema, 1) as store:
        store.migrate()
        seed(url, schema, instances, prior)
        if snapshots:
            seed_snapshots(url, schema, instances, prior)
        service = WorkflowService(store, workflows=[workflow])
        for i in range(instances):
            service.execute(Add(f"i{i}"))  # the one cold decision per instance, before the clock
        yield store, service


def warm_rate(url: str, prior: int, snapshots: bool, decisions: int) -> float:
    n = WARM_INSTANCES
    with warm_service(url, n, prior, snapshots) as (_, service):
        return run_threads(1, decisions, lambda t, i: _accepted(service.execute(Add(f"i{i % n}"))))


WARM_TARGET_INSTANCES = 20


def warm_target_rate(url: str, prior: int, snapshots: bool, per_instance: int) -> Rate:
    """Issue 18's warm comparison: `per_instance` decisions on each of 20 seeded instances, round robin, with
    the state cache on; with snapshots every 100 events and 100 decisions per instance, each instance writes
    exactly one snapshot while the clock runs (the steady state's share). Client and server CPU per decision."""
    n = WARM_TARGET_INSTANCES
    with warm_service(url, n, prior, snapshots) as (store, service):
        return timed(store, 1, n * per_instance, lambda t, i: _accepted(service.execute(Add(f"i{i % n}"))))


def warm_targets(url: str) -> None:
    """The two warm targets of issue 18, best of BENCH_REPEATS interleaved runs of each side."""
    reps = env_int("BENCH_REPEATS", 3)
    per_instance = env_int("BENCH_WARM_PER_INSTANCE", 100)
    sides = {
        "snapshots, 1 prior": (1, True),
        "snapshots, 10,000 prior": (10_000, True),
        "no snapshots, 1 prior": (1, False),
    }
    best: dict[str, Rate] = {}
    for _ in range(reps):
        for name, (prior, snapshots) in sides.items():
            r = warm_target_rate(url, prior, snapshots, per_instance)
            if name not in best or r.per_second > best[name].per_second:
                best[name] = r
    base, long, plain = best["snapshots, 1 prior"], best["snapshots, 10,000 prior"], best["no snapshots, 1 prior"]
    rows = [
        [
            name,
            f"{r.per_second:,.0f}",
            f"{r.cpu_us:.0f}",
            "-" if r.server_us is None else f"{r.server_us:.0f}",
        ]
        for name, r in best.items()
    ]
    print_table(
        f"warm cache (state cache on), 1 thread, {WARM_TARGET_INSTANCES} instances x {per_instance} decisions, "
        f"best of {reps} interleaved; {load_average()}",
        ["side", "decisions/s", "client CPU µs", "server CPU µs"],
        rows,
    )
    print(
        f"# 10,000 prior / 1 prior (target >= 0.9): {long.per_second / base.per_second:.2f}; "
        f"10,000 prior with snapshots / no snapshots at 1 prior (target >= 1.0): "
        f"{long.per_second / plain.per_second:.2f}"
    )


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
    warm_targets(url)
