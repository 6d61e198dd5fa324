"""`ironflow-py`: migrate, demo, inspect, run the effect worker and projections, manage dead letters;
the one place logging is configured."""

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

from ironflow_py import _database, inspection
from ironflow_py.app import App
from ironflow_py.effects._dead_letters import DeadLetters
from ironflow_py.effects._runtime import EffectRuntime
from ironflow_py.errors import ConfigurationError, IronflowError, NotFound
from ironflow_py.projections._control import ProjectionControl
from ironflow_py.projections._projection import OnError
from ironflow_py.projections._worker import ProjectionRetry, ProjectionWorker
from ironflow_py.records import InstanceStatus
from ironflow_py.service import WorkflowService
from ironflow_py.store.memory import MemoryStore
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
    p.add_argument("--schema", default=_env("SCHEMA", DEFAULT_SCHEMA), help="schema of all tables (IRONFLOW_SCHEMA)")
    p.add_argument(
        "--data-dir",
        default=_env("DATA_DIR", str(_database.DEFAULT_DATA_DIR)),
        help="where the embedded server keeps its data (IRONFLOW_DATA_DIR)",
    )
    p.add_argument("--app", default=_env("APP"), help="module:attribute of your ironflow_py.App (IRONFLOW_APP)")
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
    show = inspect.add_parser("show", help="one instance: why it waits, its events, state, effects and timers")
    show.add_argument("workflow_type")
    show.add_argument("workflow_id")
    inspect.add_parser("outbox", help="effects pending, running, retrying and dead; timers; load per worker")
    worker = sub.add_parser("worker", help="run effect handlers and fire timers until SIGTERM/SIGINT")
    worker.add_argument("--concurrency", type=int, default=int(_env("CONCURRENCY", "8") or 8))
    worker.add_argument("--batch-size", type=int, default=int(_env("BATCH_SIZE", "100") or 100))
    worker.add_argument("--lease", type=float, default=float(_env("LEASE", "60") or 60), help="seconds")
    worker.add_argument("--poll-interval", type=float, default=float(_env("POLL_INTERVAL", "1") or 1))
    worker.add_argument("--grace", type=float, default=float(_env("GRACE", "30") or 30), help="seconds")
    dead = sub.add_parser("dead-letters", help="dead-lettered effects").add_subparsers(dest="action", required=True)
    dead_list = dead.add_parser("list", help="list dead letters, oldest first")
    dead_list.add_argument("--limit", type=int, default=50)
    dead.add_parser("count", help="how many effects are dead")
    for action, what in (("retry", "run it again with a fresh attempt count"), ("discard", "delete it")):
        one = dead.add_parser(action, help=what)
        one.add_argument("effect_id", type=int)
    diagram = sub.add_parser("diagram", help="a workflow's state machine, or one instance's path, as text")
    diagram.add_argument("workflow_type")
    diagram.add_argument("--format", choices=["mermaid", "dot"], default="mermaid")
    diagram.add_argument("--instance", help="draw the path this instance took (reads its history)")
    diagram.add_argument("--output", help="write to this file instead of standard output")
    proj = sub.add_parser("projections", help="run and look after projections")
    proj_sub = proj.add_subparsers(dest="what", required=True)
    run = proj_sub.add_parser("run", help="run projection workers until SIGTERM")
    run.add_argument("names", nargs="*", metavar="NAME", help="default: every projection of the app")
    run.add_argument(
        "--batch-size",
        dest="projection_batch_size",
        type=int,
        default=1000,
        help="events per transaction (IRONFLOW_PROJECTION_BATCH_SIZE)",
    )
    run.add_argument(
        "--poll-interval",
        dest="projection_poll_interval",
        type=float,
        default=5.0,
        help="seconds between polls when no NOTIFY arrives (IRONFLOW_PROJECTION_POLL_INTERVAL)",
    )
    run.add_argument(
        "--max-attempts",
        dest="projection_max_attempts",
        type=int,
        default=5,
        help="failures on one event before --on-error applies (IRONFLOW_PROJECTION_MAX_ATTEMPTS)",
    )
    run.add_argument(
        "--on-error",
        dest="projection_on_error",
        choices=[o.value for o in OnError],
        default=OnError.STOP.value,
        help="stop the worker, or record the event as a dead letter and go on (IRONFLOW_PROJECTION_ON_ERROR)",
    )
    status = proj_sub.add_parser("status", help="checkpoint, lag and horizon of projections")
    status.add_argument("names", nargs="*", metavar="NAME")
    rebuild = proj_sub.add_parser("rebuild", help="reset a projection's checkpoint and read model")
    rebuild.add_argument("name", metavar="NAME")
    _env_defaults(p)
    return p


def _env_defaults(parser: argparse.ArgumentParser) -> None:
    """Give every flag, in every subcommand, an IRONFLOW_<NAME> environment twin as its default."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                _env_defaults(sub)
            continue
        if not action.option_strings or action.dest == "help":
            continue
        raw = os.environ.get(f"IRONFLOW_{action.dest.upper()}")
        if raw is None:
            continue
        if isinstance(action, argparse._StoreTrueAction):
            action.default = raw.strip().lower() in ("1", "true", "yes", "on")
        else:
            action.default = action.type(raw) if callable(action.type) else raw


def _diagram(args: argparse.Namespace, app: App, store: PostgresStore | None) -> int:
    from ironflow_py import diagram

    reg = app.service(store or MemoryStore()).registration(args.workflow_type)
    wf = reg.workflow
    if args.instance is None:
        machine = wf.describe()
        if machine is None:
            raise ConfigurationError(f"workflow {wf.type!r} does not describe its states (define describe())")
        text = diagram.to_mermaid(machine) if args.format == "mermaid" else diagram.to_dot(machine, wf.type)
    else:
        service = app.service(store) if store else None
        assert service is not None
        history = service.history(wf.type, args.instance)
        if not history:
            raise NotFound(f"workflow {wf.type!r} has no instance {args.instance!r}")
        steps = diagram.instance_path(wf, [(e.seq, e.type_name, e.event) for e in history])
        initial = wf.state_name(wf.initial_state())
        terminal = wf.is_terminal(service.state(wf.type, args.instance))
        if args.format == "mermaid":
            text = diagram.path_to_mermaid(steps, initial, terminal)
        else:
            text = diagram.path_to_dot(steps, initial, terminal, f"{wf.type} {args.instance}")
    if args.output:
        Path(args.output).write_text(text)
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        print(text, end="")
    return 0


def _require_app(args: argparse.Namespace) -> App:
    if args.app is None:
        raise ConfigurationError("this command needs --app module:attribute (or IRONFLOW_APP)")
    return load_app(args.app)


def _print(args: argparse.Namespace, data: Any, text: str) -> None:
    print(json.dumps(data, default=str, indent=2) if args.json else text)


def _run(args: argparse.Namespace) -> int:
    if args.command == "diagram" and args.instance is None:
        return _diagram(args, _require_app(args), None)
    db = _database.resolve(args.database_url, data_dir=Path(args.data_dir))
    if not args.json:
        print(f"using {db.description}", file=sys.stderr)
    pool_size = args.concurrency + 2 if args.command == "worker" else 4
    with PostgresStore.connect(db.url, schema=args.schema, max_size=pool_size) as store:
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
        if args.command == "dead-letters":
            return _dead_letters(args, DeadLetters(store))
        if args.command == "inspect" and args.what == "outbox":
            return _outbox(args, store)
        app = _require_app(args)
        if args.command == "diagram":
            return _diagram(args, app, store)
        service = app.service(store)
        if args.command == "worker":
            return _worker(args, app, service)
        if args.command == "projections":
            return _projections(args, app, service)
        return _inspect(args, service)
    return 2


def _inspect(args: argparse.Namespace, service: WorkflowService) -> int:
    if args.what == "instances":
        status = InstanceStatus(args.status) if args.status else None
        rows = service.list_instances(args.workflow_type, status, limit=args.limit)
        text = "\n".join(
            f"{r.workflow_type:<20} {r.workflow_id:<36} {r.status.value:<10} seq {r.last_seq:<6} "
            f"updated {r.updated_at:%Y-%m-%d %H:%M:%S}"
            for r in rows
        )
        _print(args, [attrs.asdict(r) for r in rows], text or "no instances")
        return 0
    report = inspection.instance_report(service, args.workflow_type, args.workflow_id)
    if report.info is None and not report.events:
        raise NotFound(f"workflow {args.workflow_type!r} has no instance {args.workflow_id!r}")
    codec = service.registration(args.workflow_type).codec
    now = service.clock.now()
    lines = [f"{args.workflow_type} {args.workflow_id}: {report.diagnosis(now)}", "", "events:"]
    lines += [
        f"  #{e.seq:<4} {e.recorded_at:%Y-%m-%d %H:%M:%S} {e.type_name:<28} {codec.to_data(e.event)}"
        for e in report.events
    ]
    lines += ["", f"state: {report.state!r}", "", "effects:"]
    lines += [
        f"  {e.id:<6} {e.effect_type:<28} {e.status:<8} attempts {e.attempts}"
        + (f" lease {e.locked_by} until {e.locked_until:%H:%M:%S}" if e.locked_until and e.locked_until > now else "")
        + (f" next {e.available_at:%Y-%m-%d %H:%M:%S}" if e.status == "pending" else "")
        + (f" error: {e.last_error}" if e.last_error else "")
        for e in report.effects
    ] or ["  none"]
    lines += ["", "timers:"]
    lines += [
        f"  {t.key:<20} due {t.due_at:%Y-%m-%d %H:%M:%S} {t.input_type} attempts {t.attempts}" for t in report.timers
    ] or ["  none"]
    data = {
        "diagnosis": report.diagnosis(now),
        "instance": attrs.asdict(report.info) if report.info else None,
        "events": [
            {
                "seq": e.seq,
                "position": e.position,
                "type": e.type_name,
                "recorded_at": e.recorded_at,
                "payload": codec.to_data(e.event),
            }
            for e in report.events
        ],
        "state": codec.to_data(report.state),
        "state_name": report.state_name,
        "effects": [attrs.asdict(e) for e in report.effects],
        "timers": [attrs.asdict(t) for t in report.timers],
    }
    _print(args, data, "\n".join(lines))
    return 0


def _outbox(args: argparse.Namespace, store: PostgresStore) -> int:
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    h = inspection.outbox_health(store, now)
    age = f"{(now - h.oldest_pending_at).total_seconds():.1f}s" if h.oldest_pending_at else "-"
    lines = [
        f"effects pending {h.pending} (due now {h.due_now}, running {h.in_flight}, waiting to retry {h.retrying}), "
        f"oldest pending {age}, dead {h.dead}",
        *(
            f"  worker {w.worker}: {w.in_flight} in flight, earliest lease end {w.earliest_lease_end:%H:%M:%S}"
            for w in h.workers
        ),
        f"timers {h.timers} (overdue {h.timers_overdue}), next due "
        + (f"{h.next_timer_at:%Y-%m-%d %H:%M:%S}" if h.next_timer_at else "-"),
    ]
    _print(args, attrs.asdict(h), "\n".join(lines))
    return 0


def _worker(args: argparse.Namespace, app: App, service: WorkflowService) -> int:
    runtime = EffectRuntime(
        service,
        app.effects,
        concurrency=args.concurrency,
        batch_size=args.batch_size,
        lease=args.lease,
        poll_interval=args.poll_interval,
        grace=args.grace,
    )
    runtime.run()
    if runtime.abandoned:
        # Handlers that outlived the grace period still run on pool threads; their claims are released,
        # so leave without joining them.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return 0


def _dead_letters(args: argparse.Namespace, dead: DeadLetters) -> int:
    if args.action == "list":
        rows = dead.list(limit=args.limit)
        text = (
            "\n".join(
                f"{r.id:<8} {r.workflow_type}/{r.workflow_id} {r.effect_type} attempts {r.attempts}: {r.last_error}"
                for r in rows
            )
            or "no dead letters"
        )
        _print(args, [attrs.asdict(r) for r in rows], text)
    elif args.action == "count":
        count = dead.count()
        _print(args, {"count": count}, str(count))
    elif args.action == "retry":
        dead.retry(args.effect_id)
        _print(args, {"retried": args.effect_id}, f"effect {args.effect_id} is pending again")
    else:
        dead.discard(args.effect_id)
        _print(args, {"discarded": args.effect_id}, f"effect {args.effect_id} discarded")
    return 0


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
            batch_size=args.projection_batch_size,
            poll_interval=args.projection_poll_interval,
            retry=ProjectionRetry(
                max_attempts=args.projection_max_attempts, on_error=OnError(args.projection_on_error)
            ),
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
