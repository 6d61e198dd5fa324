"""`asl validate FILE`, `asl start TYPE ID --input JSON`, `asl history TYPE ID`: Amazon States Language
executions from the command line (needs the `asl` extra)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from ironflow_py.cli._base import Group, Settings, option, pass_settings
from ironflow_py.errors import ConfigurationError


@click.group("asl", cls=Group)
def asl() -> None:
    """Amazon States Language state machines."""


@asl.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_settings
def validate(settings: Settings, file: Path) -> None:
    """Check an ASL definition; an error names the JSON pointer of the offending field."""
    from ironflow_py.asl import StateMachine

    machine = StateMachine.parse(file.read_text())
    nested = len(machine.machines) - 1
    settings.emit(
        {"valid": True, "states": len(machine.states), "nested_machines": nested},
        f"{file}: valid ({len(machine.states)} states, {nested} nested machines)",
    )


def _machine_workflow(settings: Settings, workflow_type: str) -> Any:
    from ironflow_py.asl import AslWorkflow

    for wf in settings.app().workflows:
        cls = wf if isinstance(wf, type) else type(wf)
        if getattr(cls, "type", None) == workflow_type:
            if not issubclass(cls, AslWorkflow):
                raise ConfigurationError(f"workflow {workflow_type!r} is not an ASL state machine")
            return cls
    raise ConfigurationError(f"the app has no workflow {workflow_type!r}")


@asl.command()
@click.argument("workflow_type")
@click.argument("execution_id")
@option("--input", "input_json", default="{}", show_default=True, help="The execution input, as JSON.")
@pass_settings
def start(settings: Settings, workflow_type: str, execution_id: str, input_json: str) -> None:
    """Start execution EXECUTION_ID of the app's state machine WORKFLOW_TYPE (a worker runs its tasks)."""
    try:
        payload = json.loads(input_json)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="--input") from None
    wf = _machine_workflow(settings, workflow_type)
    with settings.store() as store:
        service = settings.app().service(store)
        outcome = service.execute(wf.StartExecution(execution_id, payload))
    status = outcome.status.value
    settings.emit(
        {"workflow_type": workflow_type, "execution_id": execution_id, "status": status},
        f"{workflow_type}/{execution_id}: {status}",
    )


@asl.command()
@click.argument("workflow_type")
@click.argument("execution_id")
@pass_settings
def history(settings: Settings, workflow_type: str, execution_id: str) -> None:
    """The execution history in the shape of Step Functions' GetExecutionHistory (JSON)."""
    from ironflow_py.asl import history_events

    wf = _machine_workflow(settings, workflow_type)
    with settings.store() as store:
        recorded = settings.app().service(store).history(workflow_type, execution_id)
    events = history_events(wf.machine, [(e.recorded_at, e.event) for e in recorded])
    click.echo(json.dumps({"events": events}, indent=2))
