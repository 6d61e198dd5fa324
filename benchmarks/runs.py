"""Continue-as-new: the decision rate of a long-lived id stays the same from its first run to its tenth.

Three ids of one ledger workflow that continues as new every BENCH_RUN_LENGTH deposits (default 1,000):
`early` is new (its run 1 is timed), `late` has already had 9 runs (seeded in bulk as the engine writes
them: each run's events, its marker, the run-start snapshot; its run 10 is timed), and `flat` has the same
9 x length events in one run that never continues (a history that is not bounded). The three are
timed interleaved, BENCH_RUN_CHUNK decisions (default 50) of each in turn, so they share whatever else the
machine is doing, and each id is at the same position of its run in every round. Cold: no state cache, so
every decision loads its run's events so far from the store (after the run-start snapshot); warm: the state
cache on. "max rows loaded" counts the events one decision's load returned.
"""

from __future__ import annotations

import time
from typing import Any

import psycopg
from psycopg import sql

from benchmarks._common import env_int, fresh_schema, load_average, print_table, quiet_logging
from ironflow_py import Decision, PostgresStore, WorkflowService
from tests.version_workflows import CountingStore, Deposit, Deposited, Ledger, LedgerState


def make_ledger(length: int) -> type[Ledger]:
    class BenchLedger(Ledger):
        run_length = length

        def decide(self, now: Any, state: LedgerState, input: Any) -> Decision[Any, Any]:
            if input.ledger_id.endswith("flat"):  # the same code, never continued: its history keeps growing
                return Decision.accept(Deposited(input.amount))
            return super().decide(now, state, input)

    return BenchLedger


def seed(url: str, schema: str, prefix: str, length: int) -> None:
    """`{prefix}late`: 9 runs of `length` deposits, each ended by its marker, and the run-start snapshot,
    as the engine writes them; `{prefix}flat`: 9 x length deposits in one run. Written in bulk."""
    s = sql.Identifier(schema)
    late, flat, span = f"{prefix}late", f"{prefix}flat", length + 1
    events = sql.SQL(
        "INSERT INTO {s}.events (workflow_type, workflow_id, seq, event_type, payload, recorded_at, bucket) "
        "SELECT 'ledger', %(late)s, n, CASE WHEN n %% %(span)s = 0 THEN 'ironflow.run_continued/1' "
        "ELSE 'ledger.deposited/1' END, CASE WHEN n %% %(span)s = 0 THEN jsonb_build_object('run', n / %(span)s) "
        "ELSE '{{\"amount\": 1}}'::jsonb END, now(), {s}.instance_bucket('ledger', %(late)s) "
        "FROM generate_series(1, 9 * %(span)s) n "
        "UNION ALL SELECT 'ledger', %(flat)s, n, 'ledger.deposited/1', '{{\"amount\": 1}}'::jsonb, now(), "
        "{s}.instance_bucket('ledger', %(flat)s) FROM generate_series(1, 9 * %(length)s) n"
    ).format(s=s)
    instances = sql.SQL(
        "INSERT INTO {s}.instances (workflow_type, workflow_id, status, last_seq, created_at, updated_at, run, "
        "run_start, bucket) VALUES ('ledger', %(late)s, 'running', 9 * %(span)s, now(), now(), 10, "
        "9 * %(span)s + 1, {s}.instance_bucket('ledger', %(late)s)), "
        "('ledger', %(flat)s, 'running', 9 * %(length)s, now(), now(), 1, 1, {s}.instance_bucket('ledger', %(flat)s))"
    ).format(s=s)
    snapshot = sql.SQL(
        "INSERT INTO {s}.snapshots (workflow_type, workflow_id, seq, state_version, payload, created_at, bucket) "
        "VALUES ('ledger', %(late)s, 9 * %(span)s, 1, jsonb_build_object('balance', 9 * %(length)s, "
        "'deposits', 9 * %(length)s, 'closed', false), now(), {s}.instance_bucket('ledger', %(late)s))"
    ).format(s=s)
    params = {"late": late, "flat": flat, "span": span, "length": length}
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in (events, instances, snapshot):
            conn.execute(statement, params)
        conn.execute(sql.SQL("ANALYZE {s}.events").format(s=s))


def measure(url: str, length: int, chunk: int, cold: bool) -> list[str]:
    """Rates of `early` (run 1), `late` (run 10) and `flat`, timed interleaved, and rows loaded."""
    workflow = make_ledger(length)
    prefix = "cold-" if cold else "warm-"
    with fresh_schema(url) as schema, PostgresStore.connect(url, schema=schema, max_size=2) as store:
        store.migrate()
        seed(url, schema, prefix, length)
        counting = CountingStore(store)
        timed = WorkflowService(counting, workflows=[workflow], state_cache_size=0 if cold else 10_000)
        ids = tuple(prefix + name for name in ("early", "late", "flat"))
        for ledger_id in ids:  # warm: the one load from the store of each id happens before the clock
            timed.execute(Deposit(ledger_id))
        seconds = dict.fromkeys(ids, 0.0)
        rows = dict.fromkeys(ids, 0)
        for _ in range((length - 1) // chunk):
            for ledger_id in ids:
                counting.loads.clear()
                started = time.perf_counter()
                for _ in range(chunk):
                    timed.execute(Deposit(ledger_id))
                seconds[ledger_id] += time.perf_counter() - started
                rows[ledger_id] = max(rows[ledger_id], *(len(loaded.events) for loaded in counting.loads))
        early, late, flat = ids
        state = timed.state("ledger", late)
        assert state.balance == 9 * length + (length - 1) // chunk * chunk + 1, state
    done = (length - 1) // chunk * chunk
    rate = {i: done / seconds[i] for i in ids}
    return [
        "cold (no state cache)" if cold else "warm (state cache)",
        f"{rate[early]:,.0f}",
        f"{rate[late]:,.0f}",
        f"{rate[late] / rate[early]:.2f}",
        f"{rate[flat]:,.0f}",
        f"{rows[early]:,} / {rows[late]:,} / {rows[flat]:,}",
    ]


def main(url: str) -> None:
    quiet_logging()
    length = env_int("BENCH_RUN_LENGTH", 1_000)
    chunk = env_int("BENCH_RUN_CHUNK", 50)
    rows = [measure(url, length, chunk, cold=True), measure(url, length, chunk, cold=False)]
    print_table(
        f"continue-as-new: decisions/s of one id in run 1 and in run 10 ({length:,} deposits per run), and of an "
        f"id that never continued at the same history; 1 thread, interleaved by {chunk}; " + load_average(),
        ["service", "run 1/s", "run 10/s", "run 10 / run 1", "never continued/s", "max rows loaded (1 / 10 / never)"],
        rows,
    )


if __name__ == "__main__":
    from benchmarks._common import database_url

    main(database_url())
