"""`ironflow-py`: migrate, demo, inspect, run the effect worker and projections, manage dead letters and
the embedded server. Built on click; the one place logging is configured.

Adding a command group (see design/operations.md): write `ironflow_py/cli/_NAME.py` with a
`@click.group(cls=Group)` (or a `@click.command(cls=Command)`) whose commands take `settings: Settings`
through `@pass_settings` and use `settings.store()`, `settings.app()` and `settings.emit()`, then add it to
`COMMANDS` below. Its commands get the global options (also after the subcommand), env twins and one-line
errors for free.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import click

from ironflow_py.cli import (
    _admin,
    _asl,
    _dead_letters,
    _inspect,
    _lifecycle,
    _projections,
    _prune,
    _schedules,
    _versioning,
    _web,
    _worker,
)
from ironflow_py.cli._base import (
    ENV_PREFIX,
    Command,
    Group,
    Settings,
    load_app,
    option,
    pass_settings,
    root_options,
)
from ironflow_py.errors import IronflowError

__all__ = ["COMMANDS", "Command", "Group", "Settings", "cli", "load_app", "main", "option", "pass_settings"]


class _Root(click.Group):
    command_class = Command
    group_class = Group


@click.group(cls=_Root, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@root_options
@click.version_option(package_name="ironflow_py", prog_name="ironflow-py")
@click.pass_context
def cli(
    ctx: click.Context,
    database_url: str | None,
    read_url: str | None,
    schema: str,
    data_dir: Path | None,
    app_spec: str | None,
    json: bool,
    log_level: str,
    log_format: str | None,
    prepare_threshold: int | None,
    stall_timeout: float | None,
) -> None:
    """Durable workflows on PostgreSQL: migrate, inspect, run workers.

    Every option has an environment twin (IRONFLOW_<NAME>, e.g. IRONFLOW_SCHEMA, IRONFLOW_CONCURRENCY);
    the global options above are accepted after the subcommand too. The database is --database-url, else
    $IRONFLOW_DATABASE_URL, else $DATABASE_URL, else an embedded PostgreSQL in a per-user folder.
    """
    ctx.obj = Settings(
        database_url=database_url,
        read_url=read_url,
        schema=schema,
        data_dir=data_dir,
        app_spec=app_spec,
        json=json,
        log_level=log_level,
        log_format=log_format,
        prepare_threshold=prepare_threshold,
        stall_timeout=stall_timeout,
    )


COMMANDS: tuple[click.Command, ...] = (
    _admin.migrate,
    _admin.demo,
    _admin.db,
    _inspect.inspect,
    _inspect.diagram,
    _lifecycle.wait,
    _lifecycle.send,
    _lifecycle.instances,
    _worker.worker,
    _dead_letters.dead_letters,
    _prune.prune,
    _projections.projections,
    _schedules.schedules,
    _web.web,
    _asl.asl,
    _versioning.events,
    _versioning.history,
    _versioning.snapshots,
)
for _command in COMMANDS:
    cli.add_command(_command)


def main(argv: Sequence[str] | None = None) -> int:
    """Run `ironflow-py` with `argv` (default: the process arguments).

    Args:
        argv: the arguments after the program name.

    Returns:
        The exit status: 0 on success, 1 for an error (printed as one line on standard error), 2 for a
        usage mistake.
    """
    try:
        result = cli.main(
            args=list(argv) if argv is not None else sys.argv[1:],
            prog_name="ironflow-py",
            standalone_mode=False,
            auto_envvar_prefix=ENV_PREFIX,
        )
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.Abort:
        click.echo("aborted", err=True)
        return 1
    except IronflowError as exc:
        # One line for people; the traceback only for whoever asked for debug logs.
        logging.getLogger("ironflow_py.cli").debug("command failed", exc_info=exc)
        click.echo(f"error: {exc}", err=True)
        return 1
    return result if isinstance(result, int) else 0
