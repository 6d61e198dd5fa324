"""`wait`, `send` and `instances cancel|terminate|pause|resume`: results and operator control of instances."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import attrs
import click

from ironflow_py.cli._base import Command, Group, Settings, option, pass_settings
from ironflow_py.codec import loads
from ironflow_py.errors import ConfigurationError
from ironflow_py.lifecycle import Completed, RunOutcome
from ironflow_py.records import Outcome, OutcomeStatus
from ironflow_py.service import WorkflowService

#: `wait`'s exit status when the instance closed other than Completed (failed, cancelled, timed out, terminated).
NOT_COMPLETED_EXIT = 3


def _outcome_data(service: WorkflowService, workflow_type: str, outcome: RunOutcome) -> Any:
    # Encoded by the version the instance records: its own `result_type` and result name.
    reg = service.registration(workflow_type)
    codec = reg.instance_decider(service.store, outcome.workflow_id).codec if outcome.workflow_id else reg.codec
    return loads(codec.encode_outcome(outcome, outcome.workflow_id or ""))


def _outcome_text(data: dict[str, Any]) -> str:
    fields = ", ".join(f"{k}={json.dumps(v, default=str)}" for k, v in data.items() if k != "status")
    return f"{data['status']}" + (f": {fields}" if fields else "")


@click.command(cls=Command)
@click.argument("workflow_type")
@click.argument("workflow_id")
@option("--timeout", type=float, default=None, help="Give up after this many seconds (default: wait for ever).")
@option("--allow-missing", is_flag=True, default=False, help="Wait for an instance that does not exist yet.")
@pass_settings
def wait(settings: Settings, workflow_type: str, workflow_id: str, timeout: float | None, allow_missing: bool) -> int:
    """Wait until an instance closes; print its outcome.

    Exits 0 when it completed, 3 when it closed otherwise (failed, cancelled, timed out, terminated), and 1
    when --timeout passed first (the instance keeps running).
    """
    with settings.store() as store:
        service = settings.app().service(store)
        outcome = service.wait(workflow_type, workflow_id, timeout=timeout, allow_missing=allow_missing)
        data = _outcome_data(service, workflow_type, outcome)
    settings.emit(data, f"{workflow_type} {workflow_id}: {_outcome_text(data)}")
    return 0 if isinstance(outcome, Completed) else NOT_COMPLETED_EXIT


class _DataCommand(Command):
    """`send`: its own `--json DATA` replaces the global `--json` flag after the subcommand (use
    `ironflow-py --json send ...` for machine-readable output)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        own = [p for p in self.params if p.name == "data"]
        self.params = [p for p in self.params if "--json" not in getattr(p, "opts", ()) or p in own]


def _emit_outcome(settings: Settings, service: WorkflowService, outcome: Outcome[Any, Any]) -> None:
    codec = service.registration(outcome.workflow_type).codec
    events = [{"seq": e.seq, "type": e.type_name, "payload": codec.to_data(e.event)} for e in outcome.events]
    data: dict[str, Any] = {
        "status": outcome.status.value,
        "workflow_type": outcome.workflow_type,
        "workflow_id": outcome.workflow_id,
        "events": events,
        "reason": codec.to_data(outcome.reason) if outcome.reason is not None else None,
        "first_status": outcome.first_status.value if outcome.first_status else None,
    }
    detail = ", ".join(f"#{e['seq']} {e['type']}" for e in events)
    if outcome.reason is not None:
        detail = f"reason {data['reason']!r}"
    elif outcome.first_status is not None:
        detail = f"first outcome was {outcome.first_status.value}"
    settings.emit(data, f"{outcome.workflow_type} {outcome.workflow_id}: {outcome.status.value} {detail}".rstrip())


@click.command(cls=_DataCommand)
@click.argument("workflow_type")
@click.argument("workflow_id")
@option("--input-type", required=True, help="The input's stored type name, e.g. greeting.approval/1.")
@click.option("--json", "--data", "data", required=True, help="The input's fields as a JSON object.")
@option("--input-key", default=None, help="An idempotency key: a repeat with the same key is a duplicate.")
@option("--not-before", default=None, help="Run it no earlier than this time (ISO 8601 with an offset).")
@option("--delay", type=float, default=None, help="Run it no earlier than this many seconds from now.")
@pass_settings
def send(
    settings: Settings,
    workflow_type: str,
    workflow_id: str,
    input_type: str,
    data: str,
    input_key: str | None,
    not_before: str | None,
    delay: float | None,
) -> int:
    """Deliver an input, named by its stored type name, to an instance (for operators and other languages).

    With --not-before or --delay the input is a delayed start: it runs when a worker finds it due.
    Exits 0 when the input was accepted, scheduled or a duplicate, 3 when it was rejected or the instance
    had closed.
    """
    try:
        fields = json.loads(data)
    except json.JSONDecodeError as exc:
        raise ConfigurationError(f"--json is not valid JSON: {exc}") from exc
    at = None
    if not_before is not None:
        try:
            at = datetime.fromisoformat(not_before)
        except ValueError as exc:
            raise ConfigurationError(f"--not-before is not an ISO 8601 time: {exc}") from exc
    with settings.store() as store:
        service = settings.app().service(store)
        outcome = service.send(
            workflow_type,
            workflow_id,
            input_type,
            fields,
            input_key=input_key,
            not_before=at,
            delay=None if delay is None else timedelta(seconds=delay),
        )
        _emit_outcome(settings, service, outcome)
    ok = (OutcomeStatus.ACCEPTED, OutcomeStatus.DUPLICATE, OutcomeStatus.SCHEDULED)
    return 0 if outcome.status in ok else NOT_COMPLETED_EXIT


@click.group(cls=Group)
def instances() -> None:
    """Cancel, terminate, pause or resume one instance (design/lifecycle.md)."""


def _control(name: str, help: str) -> Any:
    @instances.command(name, help=help)
    @click.argument("workflow_type")
    @click.argument("workflow_id")
    @option("--reason", default=None, help="Why (kept with a cancel or terminate).")
    @option("--request-id", default=None, help="Makes the request idempotent: a repeat is a duplicate.")
    @pass_settings
    def command(
        settings: Settings, workflow_type: str, workflow_id: str, reason: str | None, request_id: str | None
    ) -> int:
        with settings.store() as store:
            service = settings.app().service(store)
            if name == "cancel":
                outcome = service.cancel(workflow_type, workflow_id, reason or "cancelled", request_id=request_id)
                _emit_outcome(settings, service, outcome)
                status = outcome.status
            elif name == "terminate":
                outcome = service.terminate(workflow_type, workflow_id, reason, request_id=request_id)
                _emit_outcome(settings, service, outcome)
                status = outcome.status
            else:
                call = service.pause if name == "pause" else service.resume
                status = call(workflow_type, workflow_id, request_id=request_id)
                info = service.instance(workflow_type, workflow_id)
                settings.emit(
                    {"status": status.value, "instance": attrs.asdict(info) if info else None},
                    f"{workflow_type} {workflow_id}: {name} {status.value}",
                )
        return 0 if status in (OutcomeStatus.ACCEPTED, OutcomeStatus.DUPLICATE) else NOT_COMPLETED_EXIT

    return command


cancel = _control("cancel", "Ask the instance to cancel (Workflow.cancel_input); compensations run as effects.")
terminate = _control("terminate", "Stop the instance now: no workflow code runs, its timers and pending effects go.")
pause = _control("pause", "Hold the instance's effects and timers (inputs are still accepted).")
resume = _control("resume", "Lift a pause: held effects run, timers that fell due fire once.")
