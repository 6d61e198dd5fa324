"""The LISTEN self-test: does a LISTEN on this connection string really receive notifications?

Behind a connection pooler in transaction mode a LISTEN silently never fires: the session that ran it goes
back to the pooler's pool, and no notification reaches the client. So every LISTEN user (the effect
runtime's wake-up, the projection worker, the waiters' listener) runs `self_test` once it listens: a
NOTIFY on its own channel from another session, awaited briefly. When it never arrives the user warns once
(`LISTEN_UNAVAILABLE`, saying what to configure) and polls instead (design/operations.md, "Connection
poolers").
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import psycopg

from ironflow_py.store._conninfo import mask_password, session_kwargs

#: Seconds a LISTEN self-test waits for its own notification (on a direct connection it takes milliseconds).
SELF_TEST_TIMEOUT = 2.0
#: Payloads of self-test notifications start with this; every listener ignores them.
SELF_TEST_PREFIX = "ironflow-listen-self-test:"
#: The event logged (once per daemon) when the self-test fails.
LISTEN_UNAVAILABLE = "listen_unavailable"
#: What to configure, in the warning.
LISTEN_HINT = (
    "notifications do not reach this process (a connection pooler in transaction mode, such as PgBouncer with "
    "pool_mode = transaction, forwards none); it polls instead. For prompt wake-ups give the daemons a URL "
    "that reaches PostgreSQL directly or through a session-mode pool"
)


def pooled(conn: psycopg.Connection[Any]) -> bool:
    """True when `conn` reaches PostgreSQL through a connection pooler (PgBouncer, pgcat, Odyssey, ...).

    A pooler answers the client's startup with a cancel key of its own, so the backend pid the client was
    told differs from the pid of the server session that runs its statements; on a direct connection they
    are always equal. (A pooler in session mode is detected too, which is harmless: only session state is
    avoided on the strength of it.)

    Args:
        conn: An open connection outside a transaction.

    Returns:
        Whether a pooler sits between the client and the server.
    """
    row = conn.execute("SELECT pg_backend_pid()", prepare=False).fetchone()
    return row is not None and row[0] != conn.info.backend_pid


def is_self_test(payload: str) -> bool:
    """Whether a notification's payload is a LISTEN self-test (listeners ignore those).

    Args:
        payload: The notification's payload.

    Returns:
        True for a self-test notification.
    """
    return payload.startswith(SELF_TEST_PREFIX)


def self_test(
    conn: psycopg.Connection[Any], conninfo: str, channel: str, timeout: float = SELF_TEST_TIMEOUT, **kwargs: Any
) -> bool:
    """Whether `conn`'s LISTEN on `channel` really receives: NOTIFY from another session, wait for it.

    The NOTIFY goes through a second short-lived connection to the same `conninfo`, as a deciding
    transaction's would: behind a transaction-mode pooler it runs on some server session and never reaches
    `conn`. Other notifications read meanwhile are dropped; callers re-read everything after the test.

    Silence alone is not the verdict: a session that is the client's own (`pooled` is False) always
    receives what its LISTEN asked for, so a notification late there means a loaded machine, and the test
    passes. Only a pooled session that stays silent for `timeout` fails it.

    Args:
        conn: An autocommit connection that already LISTENs on `channel`.
        conninfo: The connection string `conn` was opened with.
        channel: The channel.
        timeout: Seconds to wait for the notification (monotonic clock).
        **kwargs: Passed to `psycopg.connect` for the notifying connection.

    Returns:
        True if the notification arrived within `timeout`, or `conn` is a direct session.

    Raises:
        psycopg.Error: A connection failed; callers translate it.
    """
    token = f"{SELF_TEST_PREFIX}{uuid.uuid4().hex}"
    notify_kwargs = {**session_kwargs(conninfo), **kwargs}
    with psycopg.connect(conninfo, autocommit=True, **notify_kwargs) as other:
        other.execute("SELECT pg_notify(%s, %s)", (channel, token), prepare=False)
    deadline = time.monotonic() + timeout
    while (remaining := deadline - time.monotonic()) > 0:
        for notice in conn.notifies(timeout=min(remaining, 0.2)):
            if notice.payload == token:
                return True
    return not pooled(conn)


def unavailable_fields(conninfo: str, channel: str) -> dict[str, Any]:
    """The fields of the `listen_unavailable` warning: where, which channel, the fallback and the hint.

    Args:
        conninfo: The connection string (its password is masked).
        channel: The channel that stayed silent.

    Returns:
        Keyword fields for `Log.warning`.
    """
    return {"database": mask_password(conninfo), "channel": channel, "hint": LISTEN_HINT}
