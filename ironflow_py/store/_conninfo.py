"""Connection strings: passwords masked for output, and the session bounds every store connection gets.

Parsing is `psycopg.conninfo`'s (libpq's own parser), so every form libpq accepts is handled the same way:
a URL with `user:password@`, a URL with `?password=`, and a `key=value` string, each also with a host list
(`host=a,b port=p1,p2`, `postgresql://a:p1,b:p2/db`, what `pg_autoctl show uri` prints: design/failover.md).
See design/operations.md ("Outages and stalls", "Secrets").
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

MASK = "***"

#: Seconds libpq waits for a connection (TCP and authentication) before it gives up with the cause.
CONNECT_TIMEOUT = 5
#: Milliseconds sent data may stay unacknowledged before the kernel drops the connection (a dead peer).
TCP_USER_TIMEOUT_MS = 15_000
#: TCP keepalives on idle connections: first probe after 10 s, then every 5 s, dead after 3 misses.
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5, "keepalives_count": 3}
#: Milliseconds a session may sit idle inside a transaction before the server ends it (a frozen client).
IDLE_IN_TRANSACTION_MS = 30_000
#: Milliseconds between the server's checks that the client of a running statement is still connected
#: (`client_connection_check_interval`, PostgreSQL 14+): a statement whose client was cut stops soon.
CLIENT_CHECK_INTERVAL_MS = 5_000


def _password(conninfo: str) -> str | None:
    try:
        value = conninfo_to_dict(conninfo).get("password")
    except psycopg.ProgrammingError:
        return None
    return None if value is None else str(value)


def mask_password(conninfo: str) -> str:
    """The connection string with its password replaced by `***`, in any libpq form.

    Args:
        conninfo: A URL (`postgresql://u:pw@host/db`, `...?password=pw`) or `key=value` string.

    Returns:
        The same connection as a `key=value` string with `password=***` if it had a password, else the
        input unchanged. A string libpq cannot parse is replaced by a placeholder (it might hold a password).
    """
    try:
        params = conninfo_to_dict(conninfo)
    except psycopg.ProgrammingError:
        return "<unparsable connection string>"
    if "password" not in params:
        return conninfo
    params["password"] = MASK
    return make_conninfo("", **params)


def scrub(text: str, conninfo: str) -> str:
    """`text` (an error message) with the password of `conninfo` replaced by `***` wherever it appears.

    libpq quotes fragments of a malformed connection string in its errors; this keeps a password out.

    Args:
        text: The message.
        conninfo: The connection string the message is about.

    Returns:
        The message without the password.
    """
    password = _password(conninfo)
    return text.replace(password, MASK) if password else text


def session_kwargs(conninfo: str) -> dict[str, Any]:
    """Connection parameters that bound how long a connection can hang, unless `conninfo` sets them itself.

    `connect_timeout` (a wrong host fails in seconds, with libpq's cause), TCP keepalives and
    `tcp_user_timeout` (a dead peer or a cut network breaks the connection instead of hanging forever).

    Args:
        conninfo: The user's connection string; a parameter it sets wins.

    Returns:
        Keyword arguments for `psycopg.connect` (or a pool's `kwargs`).
    """
    try:
        given = conninfo_to_dict(conninfo)
    except psycopg.ProgrammingError:
        given = {}
    defaults: dict[str, Any] = {
        "connect_timeout": CONNECT_TIMEOUT,
        "tcp_user_timeout": TCP_USER_TIMEOUT_MS,
        **KEEPALIVES,
    }
    return {key: value for key, value in defaults.items() if key not in given}
