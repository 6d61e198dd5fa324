"""`ironflow-py`: migrate the schema, run the demo, inspect instances, run projections; the one place
logging is configured."""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import structlog

from ironflow_py import _database
from ironflow_py.app import App
from ironflow_py.errors import ConfigurationError, IronflowError
from ironflow_py.projection import OnError
from ironflow_py.projection_control import ProjectionControl
from ironflow_py.projection_worker import ProjectionWorker, RetryPolicy
from ironflow_py.records import InstanceStatus
from ironflow_py.service import WorkflowService
from ironflow_py.store.postgres import DEFAULT_SCHEMA, PostgresStore


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(f"IRONFLOW_{name}", default)


def configure_logging(level: str) -> None:
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.dev.ConsoleRenderer(colors=False),
        ],
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )


def load_app(spec: str) -> App:
    """Import `module:attribute`; the attribute is an App or a callable returning one."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ConfigurationError(f"--app expects module:attribute, got {spec!r}")
    obj: Any = getattr(importlib.import_module(module_name), attr)
    if callable(obj) and not isinstance(obj, App):
        obj = obj()
    if not isinstance(obj, App):
        raise ConfigurationError(f"{spec} is {type(obj).__name__}, not an ironflow_py.App")
    return obj


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ironflow-py", description=__doc__)
    p.add_argument(
        "--database-url",
        default=_env("DATABASE_URL") or os.environ.get("DATABASE_URL"),
        help="PostgreSQL URL (IRONFLOW_DATABASE_URL); default: an embedded server in --data-dir",
    )
    p.add_argument(
        "--schema", default=_env("SCHEMA", DEFAULT_SCHEMA), help="schema of all tables (IRONFLOW_SCHEMA)"
    )
    p.add_argument(
        "--data-dir",
        default=_env("DATA_DIR", str(_database.DEFAULT_DATA_DIR)),
        help="where the embedded server keeps its data (IRONFLOW_DATA_DIR)",
    )
    p.add_argument(
        "--app", default=_env("APP"), help="module:attribute of your ironflow_py.App (IRONFLOW_APP)"
    )
    p.add_argument("--log-level", default=_env("LOG_LEVEL", "info"), help="(IRONFLOW_LOG_LEVEL)")
    p.add_argument("--json", action="store_true", default=_env("JSON") == "1", help="machine-readable output")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="create or upgrade the schema")
    sub.add_parser("demo", help="run an order workflow end to end and print its history")
    inspect = sub.add_parser("inspect", help="look at instances").add_subparsers(dest="what", required=True)
    lst = inspect.add_parser("instances", help="list instances")
    lst.add_argument("--type", dest="workflow_type")
    lst.add_argument("--status", choices=[s.value for s in InstanceStatus])
    lst.add_argument("--limit", type=int, default=50)
    show = inspect.add_parser("show", help="one instance: history and state")
    show.add_argument("workflow_type")
    show.add_argument("workflow_id")
    proj = sub.add_parser("projections", help="run and look after projections")
    proj_sub = proj.add_subparsers(dest="what", required=True)
    run = proj_sub.add_parser("run", help="run projection workers until SIGTERM")
    run.add_argument("names", nargs="*", metavar="NAME", help="default: every projection of the app")
    run.add_argument(
        "--batch-size",
        type=int,
        default=int(_env("PROJECTION_BATCH_SIZE") or 1000),
        help="events per transaction (IRONFLOW_PROJECTION_BATCH_SIZE)",
    )
    run.add_argument(
        "--poll-interval",
        type=float,
        default=float(_env("PROJECTION_POLL_INTERVAL") or 5.0),
        help="seconds between polls when no NOTIFY arrives (IRONFLOW_PROJECTION_POLL_INTERVAL)",
    )
    run.add_argument(
        "--max-attempts",
        type=int,
        default=int(_env("PROJECTION_MAX_ATTEMPTS") or 5),
        help="failures on one event before --on-error applies (IRONFLOW_PROJECTION_MAX_ATTEMPTS)",
    )
    run.add_argument(
        "--on-error",
        choices=[o.value for o in OnError],
        default=_env("PROJECTION_ON_ERROR", OnError.STOP.value),
        help="stop the worker, or record the event as a dead letter and go on (IRONFLOW_PROJECTION_ON_ERROR)",
    )
    status = proj_sub.add_parser("status", help="checkpoint, lag and horizon of projections")
    status.add_argument("names", nargs="*", metavar="NAME")
    rebuild = proj_sub.add_parser("rebuild", help="reset a projection's checkpoint and read model")
    rebuild.add_argument("name", metavar="NAME")
    return p


def _print(args: argparse.Namespace, data: Any, text: str) -> None:
    print(json.dumps(data, default=str, indent=2) if args.json else text)


def _run(args: argparse.Namespace) -> int:
    db = _database.resolve(args.database_url, data_dir=Path(args.data_dir))
    if not args.json:
        print(f"using {db.description}", file=sys.stderr)
    with PostgresStore.connect(db.url, schema=args.schema, max_size=4) as store:
        if args.command == "migrate":
            applied = store.migrate()
            _print(
                args,
                {"applied": applied},
                f"applied migrations {applied}" if applied else "schema is up to date",
            )
            return 0
        if args.command == "demo":
            from ironflow_py.demo import run_demo

            store.migrate()
            run_demo(store)
            return 0
        if args.app is None:
            raise ConfigurationError("this command needs --app module:attribute (or IRONFLOW_APP)")
        app = load_app(args.app)
        service = app.service(store)
        if args.command == "projections":
            return _projections(args, app, service)
        if args.what == "instances":
            status = InstanceStatus(args.status) if args.status else None
            rows = service.list_instances(args.workflow_type, status, limit=args.limit)
            text = (
                "\n".join(
                    f"{r.workflow_type:<20} {r.workflow_id:<36} {r.status.value:<10} seq {r.last_seq}"
                    for r in rows
                )
                or "no instances"
            )
            _print(args, [attrs.asdict(r) for r in rows], text)
            return 0
        if args.what == "show":
            reg = service.registration(args.workflow_type)
            history = service.history(args.workflow_type, args.workflow_id)
            state = service.state(args.workflow_type, args.workflow_id)
            lines = [
                f"#{e.seq} {e.recorded_at.isoformat()} {e.type_name} {reg.codec.to_data(e.event)}"
                for e in history
            ]
            lines.append(f"state: {state!r}")
            data = {
                "events": [
                    {
                        "seq": e.seq,
                        "position": e.position,
                        "type": e.type_name,
                        "recorded_at": e.recorded_at,
                        "payload": reg.codec.to_data(e.event),
                    }
                    for e in history
                ],
                "state": reg.codec.to_data(state),
            }
            _print(args, data, "\n".join(lines))
            return 0
    return 2


def _projections(args: argparse.Namespace, app: App, service: WorkflowService) -> int:
    if not isinstance(service.store, PostgresStore):
        raise ConfigurationError("projections need a PostgresStore")
    control = ProjectionControl(service.store)
    if args.what == "run":
        if not app.projections:
            raise ConfigurationError(f"{args.app} declares no projections")
        worker = ProjectionWorker(
            service,
            app.select_projections(args.names),
            batch_size=args.batch_size,
            poll_interval=args.poll_interval,
            retry=RetryPolicy(max_attempts=args.max_attempts, on_error=OnError(args.on_error)),
        )
        worker.run(handle_signals=True)
        return 0
    if args.what == "rebuild":
        projection = app.select_projections([args.name])[0]
        control.rebuild(projection)
        _print(args, {"rebuilt": projection.name}, f"projection {projection.name} will replay from the start")
        return 0
    names = [p.name for p in app.select_projections(args.names)]
    rows = control.status(names)
    horizon = control.horizon()
    lines = [
        f"{r.name:<24} position {r.position:<12} applied {r.applied:<10} lag {r.lag_events} events"
        + (f", {r.lag_seconds:.1f}s" if r.lag_seconds is not None else "")
        for r in rows
    ]
    started = {r.name for r in rows}
    lines += [f"{name:<24} not started" for name in names if name not in started]
    if horizon.held_back:
        age = horizon.blocker_age_seconds or 0.0
        lines.append(
            f"horizon held back: {horizon.held_back_events} committed events wait for the transaction of pid "
            f"{horizon.blocker_pid} ({horizon.blocker_application}, open {age:.1f}s)"
        )
    _print(
        args,
        {"projections": [attrs.asdict(r) for r in rows], "horizon": attrs.asdict(horizon)},
        "\n".join(lines) or "the app declares no projections",
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    configure_logging(args.log_level)
    try:
        return _run(args)
    except IronflowError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
