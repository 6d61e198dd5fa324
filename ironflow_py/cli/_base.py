"""What every `ironflow-py` command shares: the settings, the global options (accepted before or after the
subcommand), their `IRONFLOW_*` environment twins, loading `--app`, opening the store, printing results."""

from __future__ import annotations

import importlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs
import click
from click.core import ParameterSource

from ironflow_py import _database
from ironflow_py.app import App
from ironflow_py.cli._logging import LOG_FORMATS, LOG_LEVELS, configure_logging
from ironflow_py.errors import ConfigurationError
from ironflow_py.store.postgres import DEFAULT_SCHEMA, PREPARE_THRESHOLD, STALL_TIMEOUT, PostgresStore

ENV_PREFIX = "IRONFLOW"


@attrs.define
class Settings:
    """The global options of one invocation; a subcommand's own copy of an option overrides the group's."""

    database_url: str | None = None
    read_url: str | None = None
    schema: str = DEFAULT_SCHEMA
    data_dir: Path | None = None
    app_spec: str | None = None
    json: bool = False
    log_level: str = "info"
    log_format: str | None = None
    prepare_threshold: int | None = PREPARE_THRESHOLD
    stall_timeout: float | None = STALL_TIMEOUT
    _app: App | None = None
    _logging_done: bool = False

    def start(self) -> None:
        """Configure logging once every option is known (the subcommand's come last)."""
        if not self._logging_done:
            configure_logging(self.log_level, self.log_format)
            self._logging_done = True

    def app(self) -> App:
        """The App named by `--app`, imported once.

        Raises:
            ConfigurationError: `--app` is missing, cannot be imported, or does not name an App.
        """
        if self._app is None:
            if self.app_spec is None:
                raise ConfigurationError("this command needs --app module:attribute (or IRONFLOW_APP)")
            self._app = load_app(self.app_spec)
        return self._app

    def database(self, *, keep_running: bool = False) -> _database.Database:
        """The server to use: `--database-url`, else an embedded server in `--data-dir`."""
        return _database.resolve(self.database_url, data_dir=self.data_dir, keep_running=keep_running)

    @contextmanager
    def store(self, *, pool_size: int = 4, migrated: bool = True) -> Iterator[PostgresStore]:
        """Connect to the database; with `migrated`, first check the schema has every migration.

        Raises:
            SchemaNotMigrated: the schema needs `ironflow-py migrate`.
            StoreError: the database cannot be reached.
        """
        db = self.database()
        if not self.json:
            click.echo(f"using {db.description}", err=True)
        with PostgresStore.connect(
            db.url,
            schema=self.schema,
            max_size=pool_size,
            prepare_threshold=self.prepare_threshold,
            stall_timeout=self.stall_timeout,
        ) as store:
            if migrated:
                store.require_migrated()
            yield store

    @contextmanager
    def read_store(self, store: PostgresStore, *, pool_size: int = 4) -> Iterator[PostgresStore]:
        """The store reads go to: one on `--read-url` (a streaming replica, same schema), else `store`.

        Raises:
            StoreError: the replica cannot be reached.
        """
        if self.read_url is None:
            yield store
            return
        with PostgresStore.connect(
            self.read_url, schema=self.schema, max_size=pool_size, prepare_threshold=self.prepare_threshold
        ) as reads:
            yield reads

    def emit(self, data: Any, text: str) -> None:
        """Print a result: `data` as JSON with `--json`, else `text` for people."""
        click.echo(json.dumps(data, default=str, indent=2) if self.json else text)


pass_settings = click.make_pass_decorator(Settings, ensure=True)


def indented(text: str, prefix: str) -> list[str]:
    """`text`'s lines, each behind `prefix` (tracebacks under the row they belong to)."""
    return [prefix + line for line in text.rstrip("\n").splitlines()]


def load_app(spec: str) -> App:
    """Import `module:attribute` (the current directory first on the path, as uvicorn does); the attribute
    is an App or a callable returning one.

    Args:
        spec: `module:attribute`, e.g. `myflows:app`.

    Returns:
        The App.

    Raises:
        ConfigurationError: a one-line reason: bad spec, module not importable, no such attribute, not an App.
    """
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ConfigurationError(f"--app expects module:attribute, got {spec!r}")
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise ConfigurationError(
                f"--app {spec}: no module named {exc.name!r} (looked in {cwd} and the installed packages)"
            ) from exc
        raise ConfigurationError(f"--app {spec}: importing {module_name!r} failed: {exc}") from exc
    except Exception as exc:
        raise ConfigurationError(
            f"--app {spec}: importing {module_name!r} failed: {type(exc).__name__}: {exc}"
        ) from exc
    try:
        obj: Any = getattr(module, attr)
    except AttributeError:
        raise ConfigurationError(f"--app {spec}: module {module_name!r} has no attribute {attr!r}") from None
    if callable(obj) and not isinstance(obj, App):
        obj = obj()
    if not isinstance(obj, App):
        raise ConfigurationError(f"--app {spec}: {spec} is {type(obj).__name__}, not an ironflow_py.App")
    return obj


class EnvOption(click.Option):
    """An option whose environment twin is also the flat `IRONFLOW_<NAME>`, besides click's automatic
    `IRONFLOW_<COMMAND>_<NAME>`: the names the CLI has always read keep working."""

    def resolve_envvar_value(self, ctx: click.Context) -> str | None:
        value = super().resolve_envvar_value(ctx)
        if value is None and self.allow_from_autoenv and not self.envvar and self.name:
            value = os.environ.get(f"{ENV_PREFIX}_{self.name.upper()}") or None
        return value


def option(*decls: str, **attrs_: Any) -> Callable[[Any], Any]:
    """`click.option` with the flat environment twin (`EnvOption`) and the twin's name shown in --help."""
    attrs_.setdefault("show_envvar", True)
    return click.option(*decls, cls=EnvOption, **attrs_)


class PrepareThreshold(click.ParamType[int | None, Any]):
    """psycopg's `prepare_threshold`: an integer >= 0, or `none` (never prepare: transaction-mode poolers)."""

    name = "N|none"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int | None:
        if value is None or isinstance(value, int):
            return value
        text = str(value).strip().lower()
        if text in ("none", "off"):
            return None
        if text.isdigit():
            return int(text)
        self.fail(f"expected an integer >= 0 or 'none', got {value!r}", param, ctx)


class StallTimeout(click.ParamType[float | None, Any]):
    """`PostgresStore.connect`'s `stall_timeout`: seconds > 0, or `none` (never cut a stalled connection)."""

    name = "SECONDS|none"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float | None:
        if value is None or (isinstance(value, float | int) and not isinstance(value, bool) and value > 0):
            return value
        text = str(value).strip().lower()
        if text in ("none", "off"):
            return None
        try:
            seconds = float(text)
        except ValueError:
            seconds = 0.0
        if not seconds > 0 or seconds == float("inf"):
            self.fail(f"expected seconds > 0 or 'none', got {value!r}", param, ctx)
        return seconds


@attrs.frozen
class _Global:
    decls: tuple[str, ...]
    field: str
    help: str
    kwargs: dict[str, Any] = attrs.field(factory=dict)


GLOBALS = (
    _Global(
        ("--database-url",),
        "database_url",
        "PostgreSQL URL. Default: $IRONFLOW_DATABASE_URL, else $DATABASE_URL, else the embedded server "
        "in --data-dir (needs the `embedded` extra).",
        {"envvar": ["IRONFLOW_DATABASE_URL", "DATABASE_URL"]},
    ),
    _Global(
        ("--read-url",),
        "read_url",
        "PostgreSQL URL of a streaming replica of --database-url: inspect and web read from it; writes, "
        "claims and projections stay on the primary.",
        {"envvar": "IRONFLOW_READ_DATABASE_URL"},
    ),
    _Global(("--schema",), "schema", "Schema of all tables.", {"default": DEFAULT_SCHEMA}),
    _Global(
        ("--data-dir",),
        "data_dir",
        "Where the embedded server keeps its data. Default: a per-user folder "
        "(`ironflow-py db url` shows which server is in use).",
        {"type": click.Path(file_okay=False, path_type=Path)},
    ),
    _Global(("--app", "app_spec"), "app_spec", "module:attribute of your ironflow_py.App.", {"envvar": "IRONFLOW_APP"}),
    _Global(("--json",), "json", "Machine-readable output.", {"is_flag": True, "default": False}),
    _Global(
        ("--log-level",),
        "log_level",
        "Lowest level logged.",
        {"type": click.Choice(LOG_LEVELS, case_sensitive=False), "default": "info"},
    ),
    _Global(
        ("--prepare-threshold",),
        "prepare_threshold",
        "Run a statement this many times on a connection before preparing it on the server; `none` never "
        "prepares. Behind PgBouncer in transaction mode use `none` (unless PgBouncer >= 1.21 has "
        "max_prepared_statements > 0).",
        {"type": PrepareThreshold(), "default": str(PREPARE_THRESHOLD)},
    ),
    _Global(
        ("--stall-timeout",),
        "stall_timeout",
        "Seconds a statement may wait for the server's answer before the connection is cut (a frozen "
        "network, proxy or pooler); a worker's claims and settles are bounded by half its lease too. "
        "`none` never cuts.",
        {"type": StallTimeout(), "default": f"{STALL_TIMEOUT:g}"},
    ),
    _Global(
        ("--log-format",),
        "log_format",
        "Log lines for people or JSON lines. Default: human on a terminal, json otherwise.",
        {"type": click.Choice(LOG_FORMATS)},
    ),
)


def root_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """The global options on the top-level group, where their environment twins are read."""
    for g in reversed(GLOBALS):
        f = option(*g.decls, help=g.help, **g.kwargs)(f)
    return f


def _override(field: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        # Only a value typed after the subcommand overrides: the group already read the environment.
        if param.name is not None and ctx.get_parameter_source(param.name) is ParameterSource.COMMANDLINE:
            setattr(ctx.ensure_object(Settings), field, value)

    return callback


def override_params() -> list[click.Parameter]:
    """Copies of the global options for a subcommand: no environment, no default, no variable of their own."""
    params: list[click.Parameter] = []
    for g in GLOBALS:
        kwargs = {k: v for k, v in g.kwargs.items() if k in ("type", "is_flag")}
        params.append(
            click.Option(
                list(g.decls),
                help=g.help,
                expose_value=False,
                allow_from_autoenv=False,
                callback=_override(g.field),
                **kwargs,
            )
        )
    return params


class Command(click.Command):
    """An `ironflow-py` command: takes the global options too, and configures logging before it runs."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.params.extend(override_params())

    def invoke(self, ctx: click.Context) -> Any:
        ctx.ensure_object(Settings).start()
        return super().invoke(ctx)


class Group(click.Group):
    """A group of `ironflow-py` commands: its commands and subgroups are `Command` and `Group` too."""

    command_class = Command
    group_class = type  # subgroups of a Group are Groups

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.params.extend(override_params())
