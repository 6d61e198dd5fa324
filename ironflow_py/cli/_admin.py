"""`migrate`, `demo` and `db url|stop`: the schema, the end-to-end demo, and the server in use."""

from __future__ import annotations

import click

from ironflow_py import _database
from ironflow_py.cli._base import Command, Group, Settings, pass_settings


@click.command(cls=Command)
@pass_settings
def migrate(settings: Settings) -> None:
    """Create or upgrade the schema (safe to run again, and from several processes at once)."""
    with settings.store(migrated=False) as store:
        applied = store.migrate()
    settings.emit({"applied": applied}, f"applied migrations {applied}" if applied else "schema is up to date")


@click.command(cls=Command)
@pass_settings
def demo(settings: Settings) -> None:
    """Run an order end to end, then two greetings through the real effect runtime (migrates first)."""
    from ironflow_py.demo import run_demo, run_loop_demo

    with settings.store(migrated=False) as store:
        store.migrate()
        run_demo(store)
        run_loop_demo(store)


@click.group(cls=Group)
def db() -> None:
    """The PostgreSQL server in use."""


@db.command()
@pass_settings
def url(settings: Settings) -> None:
    """Print the URL of the server in use, starting the embedded one if needed (it then keeps running
    until `ironflow-py db stop`), so your own scripts can reach it: `psql "$(ironflow-py db url)"`."""
    database = settings.database(keep_running=True)
    settings.emit({"url": database.url, "description": database.description}, database.url)


@db.command()
@pass_settings
def stop(settings: Settings) -> None:
    """Stop the embedded server running on --data-dir, if one is."""
    data_dir = settings.data_dir or _database.default_data_dir()
    stopped = _database.stop_embedded(data_dir)
    settings.emit(
        {"stopped": stopped, "data_dir": str(data_dir)},
        f"stopped the embedded server in {data_dir}" if stopped else f"no embedded server runs in {data_dir}",
    )
