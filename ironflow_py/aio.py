"""A thin asyncio facade over the sync engine: each call runs in a worker thread, not a second engine."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from ironflow_py.records import InstanceInfo, InstanceStatus, Outcome, RecordedEvent
from ironflow_py.service import WorkflowService


class AsyncWorkflowService:
    """Awaitable versions of `WorkflowService`'s calls (see design/decider.md for why the engine is sync)."""

    def __init__(self, service: WorkflowService) -> None:
        self.service = service

    async def execute(self, input: object) -> Outcome[Any, Any]:
        return await asyncio.to_thread(self.service.execute, input)

    async def state(self, workflow_type: str, workflow_id: str) -> Any:
        return await asyncio.to_thread(self.service.state, workflow_type, workflow_id)

    async def history(self, workflow_type: str, workflow_id: str) -> list[RecordedEvent[Any]]:
        return await asyncio.to_thread(self.service.history, workflow_type, workflow_id)

    async def list_instances(
        self, workflow_type: str | None = None, status: InstanceStatus | None = None, *, limit: int = 100
    ) -> Sequence[InstanceInfo]:
        return await asyncio.to_thread(self.service.list_instances, workflow_type, status, limit=limit)
