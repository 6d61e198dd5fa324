"""`python -m benchmarks [section ...]`: run the benchmark sections in one process, print one table each."""

from __future__ import annotations

import sys

from benchmarks import (
    children,
    decisions,
    decode,
    effects,
    history,
    peers,
    projections,
    replica,
    retention,
    runs,
    scaling,
    upcast,
    waiting,
)
from benchmarks._common import database_url

SECTIONS = {
    "decisions": decisions.main,
    "history": history.main,
    "warm": history.warm_targets,
    "decode": decode.main,
    "effects": effects.main,
    "projections": projections.main,
    "waiting": waiting.main,
    "children": children.main,
    "peers": peers.main,
    "upcast": upcast.main,
    "retention": retention.main,
    "scaling": scaling.main,
    "replica": replica.main,
    "runs": runs.main,
}


def main(argv: list[str]) -> None:
    url = database_url()
    for name in argv or list(SECTIONS):
        SECTIONS[name](url)


if __name__ == "__main__":
    main(sys.argv[1:])
