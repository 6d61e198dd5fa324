"""ironflow_py inside a FastAPI service: the greeting workflow behind three endpoints.

Run it (needs `pip install fastapi uvicorn`, a migrated schema, and DATABASE_URL):

    ironflow-py migrate
    DATABASE_URL="$(ironflow-py db url)" uvicorn ironflow_py.examples.fastapi_app:app

    curl -X POST localhost:8000/greetings -H 'content-type: application/json' -d '{"id": "g1", "name": "Ada"}'
    curl -X POST localhost:8000/greetings/g1/approval -H 'content-type: application/json' -d '{"approved": true}'
    curl 'localhost:8000/greetings/g1?wait=5'

What it shows: the store and service are created once, in the lifespan, and closed at shutdown; endpoints
use the async facade (`AsyncWorkflowService`), so `execute` runs on a worker thread and `wait` awaits a
notice without holding a thread; outcomes map to HTTP (rejected: 409, unknown instance: 404, still
running after `wait` seconds: 202). For a self-contained demo the lifespan also runs the effect worker on a
thread (`run_worker=True`); in production run `ironflow-py --app ironflow_py.examples.greeting:app worker`
as its own process and create the app with `run_worker=False`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pydantic
from fastapi import FastAPI, HTTPException, Request, Response

from ironflow_py import EffectRuntime, NotFound, OutcomeStatus, PostgresStore
from ironflow_py.aio import AsyncWorkflowService
from ironflow_py.errors import WaitTimedOut
from ironflow_py.examples import greeting


class StartBody(pydantic.BaseModel):
    id: str
    name: str


class ApprovalBody(pydantic.BaseModel):
    approved: bool


def _service(request: Request) -> AsyncWorkflowService:
    service: AsyncWorkflowService = request.app.state.service
    return service


def create_app(database_url: str | None = None, *, schema: str | None = None, run_worker: bool = True) -> FastAPI:
    """Build the FastAPI application; it connects when it starts, not when it is built.

    Args:
        database_url: the PostgreSQL URL; default `IRONFLOW_DATABASE_URL`, else `DATABASE_URL`.
        schema: the ironflow_py schema; default `IRONFLOW_SCHEMA`, else `ironflow`.
        run_worker: also run the effect worker (handlers and timers) on a thread of this process.

    Returns:
        The application, for uvicorn or FastAPI's TestClient.
    """

    @asynccontextmanager
    async def lifespan(api: FastAPI) -> AsyncIterator[None]:
        url = database_url or os.environ.get("IRONFLOW_DATABASE_URL") or os.environ["DATABASE_URL"]
        store = PostgresStore.connect(url, schema=schema or os.environ.get("IRONFLOW_SCHEMA", "ironflow"))
        worker: EffectRuntime | None = None
        thread: threading.Thread | None = None
        try:
            store.require_migrated()  # fail at startup, not on the first request
            service = greeting.app.service(store)
            api.state.service = AsyncWorkflowService(service)
            if run_worker:
                worker = EffectRuntime(service, greeting.app.effects, handle_signals=False)
                thread = threading.Thread(target=worker.run, name="ironflow-worker", daemon=True)
                thread.start()
            yield
        finally:
            if worker is not None and thread is not None:
                worker.stop()
                thread.join()
            store.close()

    api = FastAPI(title="greetings", lifespan=lifespan)

    @api.post("/greetings", status_code=201)
    async def start(body: StartBody, request: Request) -> dict[str, Any]:
        service = _service(request)
        outcome = await service.execute(greeting.StartGreeting(body.id, body.name))
        if outcome.status is OutcomeStatus.REJECTED:
            raise HTTPException(409, outcome.reason)
        return {"id": body.id, "status": outcome.status.value}

    @api.post("/greetings/{greeting_id}/approval")
    async def approve(greeting_id: str, body: ApprovalBody, request: Request) -> dict[str, Any]:
        service = _service(request)
        outcome = await service.execute(greeting.Approval(greeting_id, body.approved))
        if outcome.status is OutcomeStatus.REJECTED:
            raise HTTPException(409, outcome.reason)
        return {"id": greeting_id, "status": outcome.status.value}

    @api.get("/greetings/{greeting_id}")
    async def show(greeting_id: str, request: Request, response: Response, wait: float = 0.0) -> dict[str, Any]:
        """The greeting's result; with `wait` (seconds), first wait that long for it to finish."""
        service = _service(request)
        try:
            if wait > 0:
                await service.wait("greeting", greeting_id, timeout=wait)
            state = await service.state("greeting", greeting_id)
        except WaitTimedOut:
            response.status_code = 202
            state = await service.state("greeting", greeting_id)
        except NotFound:
            raise HTTPException(404, f"no greeting {greeting_id!r}") from None
        result = greeting.greeting_result(state)
        return {"id": greeting_id, "status": result.status, "greeting": result.greeting, "error": result.error}

    return api


app = create_app()
