"""The command handler: one input, one locked transaction: lock, load, decide (pure), write, commit.

Read `execute` top to bottom: the store gives the transaction and the SQL, `Decider` (ironflow_py/decider.py)
gives every rule between load and write, so both stores and the test harness share one decide step. User
code runs inside the pure step and its exceptions become DecideFailed; any exception rolls everything back.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ironflow_py._cache import StateCache
from ironflow_py.decider import Decider
from ironflow_py.records import Outcome
from ironflow_py.store.base import Settle, Store, Written


class CommandHandler:
    """Executes inputs for one registered workflow against a store (the imperative shell of `Decider`)."""

    def __init__(self, decider: Decider, store: Store, *, cache: StateCache | None = None, logger: Any = None) -> None:
        self.decider = decider
        self.store = store
        self.type = decider.type
        self.cache = cache
        self._log = logger

    def execute(
        self,
        input: object,
        workflow_id: str,
        input_key: str | None,
        now: datetime,
        settle: Settle | None = None,
    ) -> Outcome[Any, Any]:
        """Run `input` on one instance; all its writes commit together or not at all.

        Args:
            input: an instance of one of the workflow's input classes.
            workflow_id: the instance.
            input_key: the input's idempotency key, or None.
            now: the decision time (the service's clock, timezone-aware).
            settle: a fenced outbox/timer change that joins the same transaction (the effect runtime's seam).

        Returns:
            What the input did (accepted, rejected, already completed, duplicate).

        Raises:
            LeaseLost: `settle`'s claim was lost; nothing was written and no user code ran.
            DecideFailed, CodecError, StoreError: see `Decider.decide`, `Decider.fold` and `Store.locked`.
        """
        decider = self.decider
        cached = self.cache.get(workflow_id) if self.cache is not None else None
        # 1. Lock the instance (and settle the claim, if any): nothing is read or written before the lock.
        with self.store.locked(self.type, workflow_id, input_key, settle=settle) as tx:
            # 2. Load what is newer than the cached state (from its own sequence, to prove it still matches).
            after = cached.seq - 1 if cached is not None else 0
            loaded = tx.load(after_seq=after, with_snapshot=decider.snapshots)
            origin = decider.origin(workflow_id, loaded, cached)
            if origin.cache_stale and self.cache is not None:
                self.cache.discard(workflow_id)
            if origin.snapshot_problem is not None and self._log is not None:
                self._log.warning(
                    "snapshot_ignored",
                    workflow_type=self.type,
                    workflow_id=workflow_id,
                    seq=loaded.snapshot.seq if loaded.snapshot else None,
                    why=origin.snapshot_problem,
                )
            events = origin.events if origin.events is not None else tx.events_after(origin.start.seq)
            rebuilt = decider.rebuild(workflow_id, origin, events)
            # 3. Decide: the one pure step, shared with WorkflowSpec.
            step = decider.decide(
                rebuilt, input, now, workflow_id=workflow_id, input_key=input_key, key_status=loaded.key_status
            )
            # 4. Write the decision in one statement.
            written = tx.write(step.writes) if step.writes is not None else Written()
        # 5. Committed: remember the state, report the outcome.
        if self.cache is not None:
            self.cache.put(workflow_id, step.rebuilt)
        return step.result(written)
