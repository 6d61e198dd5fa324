"""Shared benchmark plumbing: which database, a fresh schema, timing across threads, table printing."""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql

from ironflow_py import _database


def database_url() -> str:
    """IRONFLOW_DATABASE_URL / DATABASE_URL, else an embedded server in .ironflow/bench-postgres."""
    db = _database.resolve(None, data_dir=Path(".ironflow") / "bench-postgres")
    print(f"# {db.description}")
    return db.url


def quiet_logging() -> None:
    """Production-like logging: info and above to stderr, so per-decision debug lines cost nothing."""
    logging.basicConfig(level=logging.INFO)


@contextmanager
def fresh_schema(url: str, prefix: str = "bench") -> Iterator[str]:
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    try:
        yield name
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


def run_threads(threads: int, per_thread: int, work: Callable[[int, int], None]) -> float:
    """Run `work(thread, i)` per_thread times in each of `threads` threads; returns operations per second."""
    barrier = threading.Barrier(threads + 1)
    errors: list[BaseException] = []

    def body(t: int) -> None:
        barrier.wait()
        try:
            for i in range(per_thread):
                work(t, i)
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=body, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    barrier.wait()
    started = time.perf_counter()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    return threads * per_thread / elapsed


def print_table(title: str, header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    print(f"\n## {title}")
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) + " |")


def load_average() -> str:
    """The 1/5/15-minute load averages (as `uptime` prints them), to print beside each table."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} on {os.cpu_count()} CPUs"


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))
