"""Dedicated LISTEN connections: the effect runtime's wake-up, projection workers and read-your-writes waits.

A LISTEN has to stay on one session for as long as notifications matter, so it never uses a pooled
connection (the pool would hand the session to someone else). These helpers open a fresh autocommit
connection to the pool's server and LISTEN on it.

Each LISTEN user checks its LISTEN with `self_test` (store/_listen_test.py) and polls when it fails.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql

from ironflow_py.store._conninfo import session_kwargs
from ironflow_py.store._listen_test import (
    LISTEN_HINT,
    LISTEN_UNAVAILABLE,
    SELF_TEST_PREFIX,
    SELF_TEST_TIMEOUT,
    is_self_test,
    self_test,
    unavailable_fields,
)
from ironflow_py.store.postgres import PostgresStore

__all__ = [
    "LISTEN_HINT",
    "LISTEN_UNAVAILABLE",
    "SELF_TEST_PREFIX",
    "SELF_TEST_TIMEOUT",
    "connect_listening",
    "connect_session",
    "is_self_test",
    "listen",
    "listening",
    "pool_conninfo",
    "self_test",
    "unavailable_fields",
]


def pool_conninfo(store: PostgresStore) -> str:
    """The connection string of a store's pool, for the dedicated LISTEN connections.

    Args:
        store: The store whose server to connect to.

    Returns:
        The conninfo string (or URL) the pool was opened with.
    """
    info = store.pool.conninfo
    return info() if callable(info) else info


def listen(conn: psycopg.Connection[Any], channel: str) -> None:
    """Subscribe `conn` to `channel` (quoted as an identifier: a channel name is one).

    Args:
        conn: An autocommit connection; the subscription lasts as long as its session.
        channel: The channel name, at most 63 bytes.

    Raises:
        psycopg.Error: The server refused or the connection broke; callers translate it.
    """
    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))


def connect_session(
    conninfo: str, *, connection_class: type[psycopg.Connection[Any]] = psycopg.Connection, **kwargs: Any
) -> psycopg.Connection[Any]:
    """Open a dedicated autocommit connection with the store's session bounds (no LISTEN).

    Args:
        conninfo: Connection string or URL.
        connection_class: The psycopg connection class (`GuardedConnection` for one the watchdog bounds).
        **kwargs: Passed to `psycopg.connect` (for example `application_name`, `prepare_threshold`).

    Returns:
        The open connection; the caller closes it.

    Raises:
        psycopg.Error: Connecting failed; callers translate it.
    """
    return connection_class.connect(conninfo, autocommit=True, **{**session_kwargs(conninfo), **kwargs})


def connect_listening(
    conninfo: str, channel: str, *, connection_class: type[psycopg.Connection[Any]] = psycopg.Connection, **kwargs: Any
) -> psycopg.Connection[Any]:
    """Open an autocommit connection that LISTENs on `channel`; closed again if the LISTEN fails.

    Args:
        conninfo: Connection string or URL.
        channel: The channel to LISTEN on.
        connection_class: The psycopg connection class (`GuardedConnection` for one the watchdog bounds).
        **kwargs: Passed to `psycopg.connect` (for example `application_name`).

    Returns:
        The open connection; the caller closes it (it is a context manager).

    Raises:
        psycopg.Error: Connecting or LISTEN failed; callers translate it.
    """
    conn = connect_session(conninfo, connection_class=connection_class, **kwargs)
    try:
        listen(conn, channel)
    except BaseException:
        conn.close()
        raise
    return conn


@contextmanager
def listening(conninfo: str, channel: str, **kwargs: Any) -> Iterator[psycopg.Connection[Any]]:
    """A connection that LISTENs on `channel` for the duration of the block, then is closed.

    Args:
        conninfo: Connection string or URL.
        channel: The channel to LISTEN on.
        **kwargs: Passed to `psycopg.connect` (for example `prepare_threshold`).

    Yields:
        The listening connection.

    Raises:
        psycopg.Error: Connecting or LISTEN failed; callers translate it.
    """
    with connect_listening(conninfo, channel, **kwargs) as conn:
        yield conn
