"""An in-process cache of the latest known state per instance, one per command handler.

Never trusted on its own: the command handler asks the store, inside the locked transaction, for the events from
the cached sequence on, checks that the cached sequence is still there, and folds what is newer. A write by
another process is therefore always seen; the cache only saves decoding and folding what it already has.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from ironflow_py.decider import Rebuilt

#: A cached state: `Rebuilt(state, seq, snapshot_seq)`, where `snapshot_seq` is the newest snapshot this
#: process knows of (to count events since it).
CachedState = Rebuilt


class StateCache:
    """A bounded least-recently-used map from instance id to its state at a sequence."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[str, CachedState] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, workflow_id: str) -> CachedState | None:
        with self._lock:
            entry = self._entries.get(workflow_id)
            if entry is not None:
                self._entries.move_to_end(workflow_id)
            return entry

    def put(self, workflow_id: str, entry: CachedState) -> None:
        with self._lock:
            old = self._entries.get(workflow_id)
            if old is not None and old.seq > entry.seq:
                return  # a concurrent, newer decision got here first
            self._entries[workflow_id] = entry
            self._entries.move_to_end(workflow_id)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def discard(self, workflow_id: str) -> None:
        with self._lock:
            self._entries.pop(workflow_id, None)

    def __len__(self) -> int:
        return len(self._entries)
