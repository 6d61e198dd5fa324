"""The web admin view: a Starlette app of server-rendered Jinja2 pages over one service's store.

Read-only unless built with `allow_actions=True` AND an `authorize(request, action)` hook that returns
True for the request; every other action request gets 403. Actions call the same code as the CLI
(`DeadLetters.retry` / `discard`) and are logged. Pages load nothing from outside (no CDN, no script).
"""

from __future__ import annotations

import contextlib
import json
import signal
import threading
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import parse_qs, quote, urlencode

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from ironflow_py import diagram, inspection
from ironflow_py._log import get_log
from ironflow_py.effects._dead_letters import DeadLetters
from ironflow_py.errors import ConfigurationError, IronflowError, NotFound
from ironflow_py.projections._control import ProjectionControl
from ironflow_py.projections._projection import Projection
from ironflow_py.records import InstanceStatus
from ironflow_py.service import WorkflowService
from ironflow_py.store.postgres import PostgresStore
from ironflow_py.store.postgres_ops import STUCK_KINDS, StoreOps
from ironflow_py.web._path_svg import path_svg

_log = get_log("web")


class Authorize(Protocol):
    """The hook asked before every action: `authorize(request, action) -> bool`; True lets it run."""

    def __call__(self, request: Request, action: str) -> bool:
        """Decide whether `request` may perform `action`.

        Args:
            request: the HTTP request (its headers, cookies, client address).
            action: `dead_letter.retry`, `dead_letter.discard`, `instance.pause`, `instance.resume`,
                `instance.cancel` or `instance.terminate`.

        Returns:
            True to let the action run; False answers 403.
        """
        ...


#: The actions the view knows: (name, what the button says).
DEAD_LETTER_ACTIONS = {"retry": "Retry", "discard": "Discard"}
#: Lifecycle actions on one open instance (design/lifecycle.md), the same service calls as the CLI's.
INSTANCE_ACTIONS = {"pause": "Pause", "resume": "Resume", "cancel": "Cancel", "terminate": "Terminate"}
_PAGE_SIZE = 50


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, default=str, ensure_ascii=False)


def _json_line(value: Any) -> str:
    return json.dumps(value, default=str, ensure_ascii=False, separators=(", ", ": "))


def _ago(now: datetime, then: datetime | None) -> str:
    if then is None:
        return "-"
    seconds = (now - then).total_seconds()
    future = seconds < 0
    seconds = abs(seconds)
    if seconds < 90:
        text = f"{seconds:.0f}s"
    elif seconds < 5400:
        text = f"{seconds / 60:.0f}m"
    elif seconds < 129600:
        text = f"{seconds / 3600:.1f}h"
    else:
        text = f"{seconds / 86400:.1f}d"
    return f"in {text}" if future else f"{text} ago"


class AdminView:
    """The pages and actions of the admin view for one service (see `create_app`).

    Args:
        service: the service whose store (a PostgresStore) and workflows the pages show; with a
            `read_store` (a replica), the overview, instance list and instance pages read from it.
        projections: the projections whose lag is shown.
        allow_actions: allow POST actions at all.
        authorize: asked before every action; None refuses them all.
        title: the name in the page header.

    Raises:
        ConfigurationError: the service's store is not a PostgresStore.
    """

    def __init__(
        self,
        service: WorkflowService,
        *,
        projections: Sequence[Projection] = (),
        allow_actions: bool = False,
        authorize: Authorize | None = None,
        title: str = "ironflow_py",
    ) -> None:
        if not isinstance(service.store, PostgresStore):
            raise ConfigurationError("the web view needs a PostgresStore")
        self.service = service
        self.store: PostgresStore = service.store
        # The pages' reads go to the service's read store (a replica when it has one); the actions, the
        # dead-letter list they act on, and projection status (the primary's transaction horizon) stay here.
        reads = service.read_store
        self.ops = StoreOps(reads if isinstance(reads, PostgresStore) else self.store)
        self.dead_letters = DeadLetters(self.store, clock=service.clock)
        self.control = ProjectionControl(self.store)
        self.projections = list(projections)
        self.allow_actions = allow_actions
        self.authorize = authorize
        self.title = title
        self.env = Environment(
            loader=PackageLoader("ironflow_py.web", "templates"),
            autoescape=select_autoescape(["html"]),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters["json"] = _json
        self.env.filters["json_line"] = _json_line
        self.env.filters["dt"] = lambda d: "-" if d is None else f"{d:%Y-%m-%d %H:%M:%S}"

    @property
    def actions_enabled(self) -> bool:
        """Whether action buttons are shown (they still ask `authorize` on every request)."""
        return self.allow_actions and self.authorize is not None

    def _page(self, request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        now = self.service.clock.now()
        html = self.env.get_template(template).render(
            title=self.title,
            now=now,
            ago=lambda then: _ago(now, then),
            path=request.url.path,
            actions_enabled=self.actions_enabled,
            schema=self.store.schema,
            **context,
        )
        return HTMLResponse(html, status_code=status_code)

    # -- pages --------------------------------------------------------------------------------------------

    def overview(self, request: Request) -> Response:
        """`GET /`: instances per type and status, outbox and timer health, stuck counts, projection lag.

        Args:
            request: the HTTP request.

        Returns:
            The page.
        """
        now = self.service.clock.now()
        counts = self.ops.instance_counts()
        known = [s.value for s in InstanceStatus]  # running first, then how instances close
        statuses = known + sorted({c.status for c in counts} - set(known))
        table: dict[str, dict[str, int]] = {}
        for c in counts:
            table.setdefault(c.workflow_type, {})[c.status] = c.count
        for wtype in self.service.workflow_types:
            table.setdefault(wtype, {})
        stuck = {kind: len(self.ops.instances(now, stuck=kind, limit=_PAGE_SIZE + 1)) for kind in STUCK_KINDS}
        return self._page(
            request,
            "overview.html",
            table=dict(sorted(table.items())),
            statuses=statuses,
            health=self.ops.outbox_health(now),
            stuck=stuck,
            page_size=_PAGE_SIZE,
            projections=self._projection_rows(),
        )

    def instances(self, request: Request) -> Response:
        """`GET /instances?type=&status=&stuck=`: instances with what is pending on them, 50 a page.

        Args:
            request: the HTTP request.

        Returns:
            The page (400 for an unknown stuck filter).
        """
        params = request.query_params
        stuck = params.get("stuck") or None
        if stuck is not None and stuck not in STUCK_KINDS:
            return self._page(request, "error.html", 400, message=f"unknown stuck filter {stuck!r}")
        after_type, after_id = params.get("after_type"), params.get("after_id")
        after = (after_type, after_id) if after_type is not None and after_id is not None else None
        filters = {
            "type": params.get("type") or None,
            "status": params.get("status") or None,
            "stuck": stuck,
        }
        rows = self.ops.instances(
            self.service.clock.now(),
            workflow_type=filters["type"],
            status=filters["status"],
            stuck=stuck,
            limit=_PAGE_SIZE + 1,
            after=after,
        )
        more = len(rows) > _PAGE_SIZE
        rows = rows[:_PAGE_SIZE]
        next_url = None
        if more:
            last = rows[-1].info
            query = {k: v for k, v in filters.items() if v} | {
                "after_type": last.workflow_type,
                "after_id": last.workflow_id,
            }
            next_url = "/instances?" + urlencode(query)
        return self._page(
            request,
            "instances.html",
            rows=rows,
            filters=filters,
            stuck_kinds=STUCK_KINDS,
            types=self.service.workflow_types,
            statuses=[s.value for s in InstanceStatus],
            next_url=next_url,
        )

    def instance(self, request: Request) -> Response:
        """`GET /instances/TYPE/ID`: diagnosis, timeline, path, effects, timers and state of one instance.

        Args:
            request: the HTTP request.

        Returns:
            The page (404 for an unknown type or instance).
        """
        wtype = request.path_params["workflow_type"]
        wid = request.path_params["workflow_id"]
        try:
            report = inspection.instance_report(self.service, wtype, wid)
        except NotFound as exc:
            return self._page(request, "error.html", 404, message=str(exc))
        if report.info is None and not report.events:
            return self._page(request, "error.html", 404, message=f"workflow {wtype!r} has no instance {wid!r}")
        wf, codec = report.decider.workflow, report.decider.codec  # the instance's own version
        steps = diagram.instance_path(wf, [(e.seq, e.type_name, e.event) for e in report.events])
        initial = wf.state_name(wf.initial_state())
        now = self.service.clock.now()
        return self._page(
            request,
            "instance.html",
            wtype=wtype,
            wid=wid,
            report=report,
            diagnosis=report.diagnosis(now),
            severity=_severity(report, now),
            events=[(e, codec.to_data(e.event)) for e in report.events],
            state=codec.to_data(report.state),
            svg=path_svg(steps, initial, report.terminal),
            mermaid=diagram.path_to_mermaid(steps, initial, report.terminal),
            actions=INSTANCE_ACTIONS,
            done=request.query_params.get("done"),
        )

    def dead_letter_list(self, request: Request) -> Response:
        """`GET /dead-letters`: dead effects oldest first, 50 a page, with buttons when actions are on.

        Args:
            request: the HTTP request.

        Returns:
            The page.
        """
        after = int(request.query_params.get("after", "0") or 0)
        rows = list(self.dead_letters.list(limit=_PAGE_SIZE + 1, after_id=after))
        more = len(rows) > _PAGE_SIZE
        rows = rows[:_PAGE_SIZE]
        return self._page(
            request,
            "dead_letters.html",
            rows=rows,
            total=self.dead_letters.count(),
            next_url=f"/dead-letters?after={rows[-1].id}" if more else None,
            actions=DEAD_LETTER_ACTIONS,
            done=request.query_params.get("done"),
        )

    def projection_list(self, request: Request) -> Response:
        """`GET /projections`: each projection's applied count and lag, and what holds the horizon back.

        Args:
            request: the HTTP request.

        Returns:
            The page.
        """
        return self._page(
            request, "projections.html", projections=self._projection_rows(), horizon=self.control.horizon()
        )

    def _projection_rows(self) -> list[dict[str, Any]]:
        names = [p.name for p in self.projections]
        if not names:
            return []
        found = {s.name: s for s in self.control.status(names)}
        return [{"name": n, "status": found.get(n)} for n in names]

    # -- actions ------------------------------------------------------------------------------------------

    def _forbidden(self, request: Request, action: str) -> Response | None:
        """403 unless actions are allowed, an authorize hook exists and it says yes; same-origin posts only."""
        if not self.allow_actions:
            why = "actions are disabled: start the web view with --allow-actions and an authorize hook"
        elif self.authorize is None:
            why = "actions need an authorize(request, action) hook"
        elif not self._same_origin(request):
            why = "cross-origin action refused"
        elif not self.authorize(request, action):
            why = f"not authorized to {action}"
        else:
            return None
        _log.warning("web_action_refused", action=action, client=_client(request), reason=why)
        return self._page(request, "error.html", 403, message=why)

    @staticmethod
    def _same_origin(request: Request) -> bool:
        origin = request.headers.get("origin")
        if origin is None or origin == "null":
            return origin is None
        return origin.split("://", 1)[-1] == request.headers.get("host")

    def dead_letter_action(self, request: Request) -> Response:
        """`POST /dead-letters/ID/retry|discard`: the CLI's `DeadLetters` call, if allowed and authorized.

        Args:
            request: the HTTP request.

        Returns:
            A redirect to the list, 403 when refused, 404 when the effect is not dead.
        """
        action = request.path_params["action"]
        if action not in DEAD_LETTER_ACTIONS:
            return self._page(request, "error.html", 404, message=f"unknown action {action!r}")
        name = f"dead_letter.{action}"
        refused = self._forbidden(request, name)
        if refused is not None:
            return refused
        effect_id = int(request.path_params["effect_id"])
        try:
            (self.dead_letters.retry if action == "retry" else self.dead_letters.discard)(effect_id)
        except NotFound as exc:
            return self._page(request, "error.html", 404, message=str(exc))
        _log.warning("web_action", action=name, effect_id=effect_id, client=_client(request))
        return RedirectResponse(f"/dead-letters?done={action}+{effect_id}", status_code=303)

    async def instance_action(self, request: Request) -> Response:
        """`POST /actions/ACTION/TYPE/ID`: pause, resume, cancel or terminate one instance, if allowed.

        The form may carry a `reason` (cancel, terminate). The call is the service's, as in the CLI.

        Args:
            request: the HTTP request.

        Returns:
            A redirect to the instance page, 403 when refused, 404 for an unknown instance, 409 when the
            instance cannot take the action (closed, or its workflow accepts no cancel requests).
        """
        action = request.path_params["action"]
        wtype, wid = request.path_params["workflow_type"], request.path_params["workflow_id"]
        if action not in INSTANCE_ACTIONS:
            return self._page(request, "error.html", 404, message=f"unknown action {action!r}")
        name = f"instance.{action}"
        refused = self._forbidden(request, name)
        if refused is not None:
            return refused
        # A urlencoded form, parsed here: Starlette's own form parser needs python-multipart.
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        reason = (form.get("reason") or [""])[0].strip() or None
        try:
            status = await run_in_threadpool(_run_instance_action, self.service, action, wtype, wid, reason)
        except NotFound as exc:
            return self._page(request, "error.html", 404, message=str(exc))
        except IronflowError as exc:
            return self._page(request, "error.html", 409, message=str(exc))
        _log.warning(
            "web_action", action=name, workflow_type=wtype, workflow_id=wid, result=status, client=_client(request)
        )
        return RedirectResponse(
            f"/instances/{quote(wtype, safe='')}/{quote(wid, safe='')}?done={action}+{status}", status_code=303
        )


def _run_instance_action(service: WorkflowService, action: str, wtype: str, wid: str, reason: str | None) -> str:
    """Run one lifecycle action through the service (as the CLI does); returns the resulting status."""
    if action == "cancel":
        return service.cancel(wtype, wid, reason or "cancelled from the web view").status.value
    if action == "terminate":
        return service.terminate(wtype, wid, reason or "terminated from the web view").status.value
    if action == "pause":
        return service.pause(wtype, wid).value
    return service.resume(wtype, wid).value


def _severity(report: inspection.InstanceReport, now: datetime) -> str:
    """The diagnosis box's colour: `done` (ended), `stuck` (a dead effect or an overdue timer), or ``."""
    if report.dead_effects or any(t.due_at <= now for t in report.timers):
        return "stuck"
    return "done" if report.terminal else ""


def _client(request: Request) -> str:
    return f"{request.client.host}:{request.client.port}" if request.client else "-"


def create_app(
    service: WorkflowService,
    *,
    projections: Sequence[Projection] = (),
    allow_actions: bool = False,
    authorize: Authorize | None = None,
    title: str = "ironflow_py",
) -> Starlette:
    """Build the admin view's ASGI app (serve it with uvicorn, or mount it in your own Starlette/FastAPI app).

    Args:
        service: the service whose store and workflows the pages show (a PostgresStore).
        projections: the projections whose lag the overview and projections page show.
        allow_actions: allow POST actions (retry or discard a dead letter; pause, resume, cancel or
            terminate an instance); False: every action is 403.
        authorize: `authorize(request, action) -> bool`, asked on every action; without it actions are
            403 even when allowed. `action` is `dead_letter.retry`, `dead_letter.discard` or
            `instance.<pause|resume|cancel|terminate>`.
        title: the name shown in the page header.

    Returns:
        A Starlette application; its `state.view` is the `AdminView`.

    Raises:
        ConfigurationError: the service's store is not a PostgresStore.
    """
    view = AdminView(service, projections=projections, allow_actions=allow_actions, authorize=authorize, title=title)
    routes = [
        Route("/", view.overview),
        Route("/instances", view.instances),
        Route("/instances/{workflow_type}/{workflow_id:path}", view.instance),
        Route("/dead-letters", view.dead_letter_list),
        Route("/dead-letters/{effect_id:int}/{action}", view.dead_letter_action, methods=["POST"]),
        Route("/projections", view.projection_list),
        Route("/actions/{action}/{workflow_type}/{workflow_id:path}", view.instance_action, methods=["POST"]),
    ]
    app = Starlette(routes=routes)
    app.state.view = view
    return app


def serve(app: Starlette, *, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve the admin view with uvicorn until SIGINT/SIGTERM, then return normally.

    The CLI then exits 0; logging stays as the caller configured it.

    Args:
        app: from `create_app`.
        host: the interface to bind; the default keeps the view on this machine.
        port: the TCP port.
    """
    import uvicorn

    class _Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            # uvicorn re-raises the stopping signal after its graceful shutdown, so the process would end
            # "killed by SIGTERM"; a SIGTERM is how a daemon is asked to stop, so stop and return instead.
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    _Server(uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False)).run()
