"""A thin asyncio facade over the sync engine: each call runs in a worker thread, not a second engine.

`wait` is the exception: it waits on the store's waiter hub in the event loop (cancelling it only
unsubscribes) and reads the instance row in a thread.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Literal, overload

from ironflow_py.errors import NotFound
from ironflow_py.lifecycle import ContinuedAsNew, RunOutcome
from ironflow_py.records import InstanceInfo, InstanceStatus, Outcome, OutcomeStatus, RecordedEvent
from ironflow_py.service import WorkflowService


class AsyncWorkflowService:
    """Awaitable versions of `WorkflowService`'s calls (see design/decider.md for why the engine is sync).

    Each call runs the sync call in a worker thread (`asyncio.to_thread`); it is not a second engine.

    Args:
        service: The service whose calls to run.
    """

    def __init__(self, service: WorkflowService) -> None:
        self.service = service

    async def execute(
        self,
        input: object,
        *,
        input_key: str | None = None,
        not_before: datetime | None = None,
        delay: timedelta | None = None,
    ) -> Outcome[Any, Any]:
        """`WorkflowService.execute`, awaitable.

        Args:
            input: An input of a registered workflow.
            input_key: An idempotency key for this call (as `WorkflowService.execute`).
            not_before: A delayed start: run the input no earlier than this time (timezone-aware).
            delay: A delayed start: run the input no earlier than this long from now (the store's clock).

        Returns:
            The outcome, as `WorkflowService.execute` returns it (`scheduled` for a delayed start).

        Raises:
            IronflowError: What `WorkflowService.execute` raises (bad input: nothing is written).
        """
        return await asyncio.to_thread(
            functools.partial(self.service.execute, input, input_key=input_key, not_before=not_before, delay=delay)
        )

    async def state(self, workflow_type: str, workflow_id: str, *, min_lsn: str | None = None) -> Any:
        """`WorkflowService.state`, awaitable.

        Args:
            workflow_type: A registered workflow type.
            workflow_id: The instance.
            min_lsn: With a `read_store`: wait until the replica has replayed this WAL position first
                (`Outcome.wal_position`); as `WorkflowService`.

        Returns:
            The instance's current state.

        Raises:
            NotFound: The type is not registered, or the instance has no events.
            ReplicaBehind: The replica had not replayed `min_lsn` within the service's `replica_timeout`.
        """
        return await asyncio.to_thread(
            functools.partial(self.service.state, workflow_type, workflow_id, min_lsn=min_lsn)
        )

    async def history(
        self, workflow_type: str, workflow_id: str, *, min_lsn: str | None = None
    ) -> list[RecordedEvent[Any]]:
        """`WorkflowService.history`, awaitable.

        Args:
            workflow_type: A registered workflow type.
            workflow_id: The instance.
            min_lsn: With a `read_store`: wait until the replica has replayed this WAL position first
                (`Outcome.wal_position`); as `WorkflowService`.

        Returns:
            Its events, decoded, in sequence order.

        Raises:
            NotFound: The type is not registered.
            ReplicaBehind: The replica had not replayed `min_lsn` within the service's `replica_timeout`.
        """
        return await asyncio.to_thread(
            functools.partial(self.service.history, workflow_type, workflow_id, min_lsn=min_lsn)
        )

    async def list_instances(
        self,
        workflow_type: str | None = None,
        status: InstanceStatus | None = None,
        *,
        limit: int = 100,
        min_lsn: str | None = None,
    ) -> Sequence[InstanceInfo]:
        """`WorkflowService.list_instances`, awaitable.

        Args:
            workflow_type: Only this workflow type (None: all).
            status: Only instances in this status (None: all).
            limit: At most this many rows.
            min_lsn: With a `read_store`: wait until the replica has replayed this WAL position first
                (`Outcome.wal_position`); as `WorkflowService`.

        Returns:
            Instance rows ordered by (workflow type, id).

        Raises:
            ReplicaBehind: The replica had not replayed `min_lsn` within the service's `replica_timeout`.
            StoreError: The database could not be reached.
        """
        return await asyncio.to_thread(
            functools.partial(self.service.list_instances, workflow_type, status, limit=limit, min_lsn=min_lsn)
        )

    async def result(self, workflow_type: str, workflow_id: str, *, min_lsn: str | None = None) -> RunOutcome | None:
        """`WorkflowService.result`, awaitable: the outcome, or None while the instance is open.

        Args:
            workflow_type: A registered workflow type.
            workflow_id: The instance.
            min_lsn: With a `read_store`: wait until the replica has replayed this WAL position first
                (`Outcome.wal_position`); as `WorkflowService`.

        Returns:
            The labelled outcome, or None while it is open or if it does not exist.

        Raises:
            NotFound: The workflow type is not registered.
            ReplicaBehind: The replica had not replayed `min_lsn` within the service's `replica_timeout`.
        """
        return await asyncio.to_thread(
            functools.partial(self.service.result, workflow_type, workflow_id, min_lsn=min_lsn)
        )

    @overload
    async def wait(
        self,
        workflow_type: str,
        workflow_id: str,
        *,
        timeout: float | None = ...,
        allow_missing: bool = ...,
        poll_interval: float = ...,
        follow_runs: Literal[True] = ...,
        run: None = ...,
    ) -> RunOutcome: ...

    @overload
    async def wait(
        self,
        workflow_type: str,
        workflow_id: str,
        *,
        timeout: float | None = ...,
        allow_missing: bool = ...,
        poll_interval: float = ...,
        follow_runs: bool,
        run: int | None = ...,
    ) -> RunOutcome | ContinuedAsNew: ...

    async def wait(
        self,
        workflow_type: str,
        workflow_id: str,
        *,
        timeout: float | None = None,
        allow_missing: bool = False,
        poll_interval: float = 2.0,
        follow_runs: bool = True,
        run: int | None = None,
    ) -> RunOutcome | ContinuedAsNew:
        """`WorkflowService.wait`, awaitable; cancelling the task only drops its subscription.

        Args:
            workflow_type: a registered workflow type.
            workflow_id: the instance.
            timeout: the longest wait in seconds (monotonic clock); None waits for ever.
            allow_missing: wait for an instance that does not exist yet instead of raising NotFound.
            poll_interval: seconds between re-reads when no notice comes.
            follow_runs: True (the default): the final run's outcome; False: `ContinuedAsNew` as soon as the
                run waited on continues as new.
            run: with `follow_runs=False`, the run to wait on (None: the current one).

        Returns:
            The outcome, labelled with the instance (a `RunOutcome`, or `ContinuedAsNew` when
            `follow_runs` is False and the run continued).

        Raises:
            WaitTimedOut: `timeout` passed while the instance was still open.
            NotFound: the type is not registered, or the instance does not exist and `allow_missing` is False.
        """
        service = self.service
        store = service.store
        reg = service.registration(workflow_type)
        deadline = None if timeout is None else time.monotonic() + timeout
        sub = store.closed_waiters().subscribe_async(workflow_type, workflow_id)
        try:
            if not store.listening(0):
                await asyncio.to_thread(store.listening, min(timeout, 2.0) if timeout is not None else 2.0)
            while True:
                info = await asyncio.to_thread(store.instance, workflow_type, workflow_id)
                if not follow_runs and run is None:
                    run = info.run if info is not None else 1
                step = service._wait_step(
                    reg, info, workflow_type, workflow_id, deadline, timeout, allow_missing, poll_interval, run
                )
                if not isinstance(step, float):
                    return step
                pause = step
                await sub.wait(pause)
        finally:
            sub.close()

    async def execute_and_wait(self, input: object, *, timeout: float | None = None) -> RunOutcome:
        """`WorkflowService.execute_and_wait`, awaitable.

        Args:
            input: An input of a registered workflow.
            timeout: The longest wait in seconds (monotonic clock) after the input was executed; None
                waits for ever.

        Returns:
            The instance's outcome.

        Raises:
            WaitTimedOut: The instance was still open when `timeout` passed.
            NotFound: The input was rejected and the instance does not exist.
        """
        outcome = await self.execute(input)
        try:
            return await self.wait(outcome.workflow_type, outcome.workflow_id, timeout=timeout)
        except NotFound as exc:
            if outcome.status is OutcomeStatus.REJECTED:
                raise NotFound(
                    f"workflow {outcome.workflow_type!r}: the input was rejected ({outcome.reason!r}) and "
                    f"instance {outcome.workflow_id!r} does not exist",
                    workflow_type=outcome.workflow_type,
                    workflow_id=outcome.workflow_id,
                ) from exc
            raise
