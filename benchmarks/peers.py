"""Peers on the same counter workload (optional): reports honestly which ones were not run here."""

from __future__ import annotations

import importlib.util

from benchmarks._common import print_table

PEERS = {
    "eventsourcing": "eventsourcing (PostgreSQL application recorder)",
    "dbos": "DBOS (durable workflows on PostgreSQL)",
}


def main(url: str) -> None:
    rows = []
    for module, label in PEERS.items():
        if importlib.util.find_spec(module) is None:
            rows.append([label, "not run: not installed (not part of the dev install)"])
        else:
            rows.append([label, "not run: installed, but no workload is written for it yet"])
    print_table("peers, counter workload", ["peer", "decisions/s"], rows)
