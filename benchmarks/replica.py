"""Read replicas: `python -m benchmarks replica`.

Builds its own primary and hot standby (`pg_basebackup -R`, streaming over loopback TCP; the system
PostgreSQL binaries, as tests/reliability/replica_pg.py does) and measures, for the counter workload:

- replica lag: from `execute` returning (the commit acknowledged) to the new row being visible on the
  standby, polled in a tight loop on its own connection; alone, and while 4 writer threads keep the primary
  busy on other instances;
- a read-your-writes read: `state(min_lsn=outcome.wal_position)` right after `execute`, against the same
  read on the primary (`state()` of a service without a replica);
- the price of `wal_position` on `execute` (one more round trip after COMMIT).

BENCH_REPLICA_N (default 500) is the number of commits measured per row. The ignored `url` argument keeps
the signature of the other sections: the primary here is always the benchmark's own cluster.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable

import psycopg
from psycopg import sql

from benchmarks._common import env_int, load_average, print_table, quiet_logging


def _ms(values: list[float], q: float) -> str:
    ordered = sorted(values)
    return f"{ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000:.2f}"


def _row(name: str, values: list[float]) -> list[str]:
    return [name, str(len(values)), _ms(values, 0.5), _ms(values, 0.99), f"{max(values) * 1000:.2f}"]


def main(url: str) -> None:
    from ironflow_py import PostgresStore, WorkflowService
    from tests.reliability import replica_pg
    from tests.workflows import Add, Counter

    quiet_logging()
    if not replica_pg.available():
        print("# replica: skipped, the PostgreSQL server binaries (initdb, pg_basebackup) are not installed")
        return
    n = env_int("BENCH_REPLICA_N", 500)
    pair = replica_pg.ReplicaPair()
    try:
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        with (
            PostgresStore.connect(pair.primary_url, schema=schema, max_size=8) as primary,
            PostgresStore.connect(pair.replica_url, schema=schema, max_size=4) as replica,
            psycopg.connect(pair.replica_url, autocommit=True) as probe,
        ):
            primary.migrate()
            replica.wait_for_replay(primary.wal_position(), 60)
            with_replica = WorkflowService(primary, workflows=[Counter], read_store=replica, replica_timeout=30)
            plain = WorkflowService(primary, workflows=[Counter])
            visible = sql.SQL("SELECT last_seq FROM {}.instances WHERE workflow_type = 'counter' AND workflow_id = %s")
            query = visible.format(sql.Identifier(schema))

            def lag(wid: str, count: int) -> list[float]:
                out = []
                for _ in range(count):
                    seq = with_replica.execute(Add(wid)).events[-1].seq
                    t0 = time.perf_counter()
                    while True:
                        row = probe.execute(query, (wid,), prepare=True).fetchone()
                        if row is not None and row[0] >= seq:
                            break
                    out.append(time.perf_counter() - t0)
                return out

            lag("warm", 20)
            alone = lag("alone", n)

            stop = threading.Event()

            def writer(t: int) -> None:
                i = 0
                while not stop.is_set():
                    plain.execute(Add(f"load-{t}-{i % 100}"))
                    i += 1

            writers = [threading.Thread(target=writer, args=(t,)) for t in range(4)]
            for w in writers:
                w.start()
            try:
                loaded = lag("loaded", n)
            finally:
                stop.set()
                for w in writers:
                    w.join()

            def paired(a: Callable[[], object], b: Callable[[], object], count: int) -> tuple[list[float], list[float]]:
                """Alternate the two calls so both see the same load on the shared machine."""
                out_a: list[float] = []
                out_b: list[float] = []
                for _ in range(count):
                    for call, out in ((a, out_a), (b, out_b)):
                        t0 = time.perf_counter()
                        call()
                        out.append(time.perf_counter() - t0)
                return out_a, out_b

            def ryw_replica() -> None:
                outcome = with_replica.execute(Add("ryw"))
                with_replica.state("counter", "ryw", min_lsn=outcome.wal_position)

            def ryw_primary() -> None:
                plain.execute(Add("ryw-p"))
                plain.state("counter", "ryw-p")

            ryw_r, ryw_p = paired(ryw_replica, ryw_primary, n)
            exec_r, exec_p = paired(
                lambda: with_replica.execute(Add("cost-r")), lambda: plain.execute(Add("cost-p")), n
            )
            read_r, read_p = paired(
                lambda: with_replica.state("counter", "ryw"), lambda: plain.state("counter", "ryw-p"), n
            )
            cold = WorkflowService(primary, workflows=[Counter], read_store=replica, state_cache_size=0)
            read_cold, _ = paired(lambda: cold.state("counter", "ryw"), lambda: None, n // 5)
        print_table(
            f"replica lag and read-your-writes ({n} commits per row; PostgreSQL "
            f"{_server_version(pair.primary_url)}, loopback TCP, fsync off)",
            ["measure", "n", "p50 ms", "p99 ms", "max ms"],
            [
                _row("lag: commit acknowledged -> visible on standby (alone)", alone),
                _row("lag: same, 4 writer threads busy on the primary", loaded),
                _row("execute + state(min_lsn) on the replica", ryw_r),
                _row("execute + state() on the primary (locked read)", ryw_p),
                _row("execute, with read_store (wal_position asked)", exec_r),
                _row("execute, without read_store", exec_p),
                _row("state() on the replica (lock-free, state cache)", read_r),
                _row("state() on the primary (locked, state cache)", read_p),
                _row(f"state() on the replica, no cache ({n} events folded)", read_cold),
            ],
        )
        print(f"# {load_average()}")
    finally:
        pair.close()


def _server_version(url: str) -> str:
    with psycopg.connect(url) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return str(row[0]) if row else "?"
