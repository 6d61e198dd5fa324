"""`web`: the admin view (extra `ironflow_py[web]`), read-only unless `--allow-actions` and `--authorize`."""

from __future__ import annotations

import importlib
from typing import Any

import click

from ironflow_py.cli._base import Command, Settings, option, pass_settings
from ironflow_py.errors import ConfigurationError


def load_authorize(spec: str) -> Any:
    """Import the `module:function` named by `--authorize`; it must be callable.

    Raises:
        ConfigurationError: a one-line reason (bad spec, import failure, missing or not callable).
    """
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ConfigurationError(f"--authorize expects module:function, got {spec!r}")
    try:
        obj = getattr(importlib.import_module(module_name), attr)
    except Exception as exc:
        raise ConfigurationError(f"--authorize {spec}: {type(exc).__name__}: {exc}") from exc
    if not callable(obj):
        raise ConfigurationError(f"--authorize {spec} is {type(obj).__name__}, not a function")
    return obj


@click.command(cls=Command)
@option("--host", default="127.0.0.1", show_default=True, help="Interface to bind (keep it on this machine).")
@option("--port", type=int, default=8000, show_default=True, help="TCP port.")
@option("--allow-actions", is_flag=True, default=False, help="Allow retrying and discarding dead letters.")
@option(
    "--authorize",
    "authorize_spec",
    default=None,
    help="module:function called as authorize(request, action) -> bool before every action.",
)
@pass_settings
def web(settings: Settings, host: str, port: int, allow_actions: bool, authorize_spec: str | None) -> None:
    """Serve the web admin view until SIGINT/SIGTERM (read-only by default)."""
    try:
        from ironflow_py.web import create_app, serve
    except ImportError as exc:
        raise ConfigurationError(f"the web view needs `pip install 'ironflow_py[web]'`: {exc}") from exc
    app = settings.app()
    authorize = load_authorize(authorize_spec) if authorize_spec else None
    if allow_actions and authorize is None:
        click.echo("--allow-actions without --authorize: every action will be refused (403)", err=True)
    with settings.store(pool_size=8) as store, settings.read_store(store, pool_size=8) as reads:
        asgi = create_app(
            app.service(store, read_store=reads),
            projections=app.projections,
            allow_actions=allow_actions,
            authorize=authorize,
        )
        click.echo(f"serving the admin view on http://{host}:{port}/", err=True)
        serve(asgi, host=host, port=port)
