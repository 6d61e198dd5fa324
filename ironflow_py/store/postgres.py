"""The PostgreSQL store: psycopg 3 with a connection pool, every table in one configurable schema."""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import re
import struct
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime, timedelta
from typing import Any

import psycopg
import psycopg.errors
import psycopg_pool
from psycopg.adapt import Dumper
from psycopg.pq import Format
from psycopg.rows import args_row
from psycopg.types.json import set_json_loads

from ironflow_py.errors import (
    CommitUnknown,
    ConcurrencyConflict,
    ConfigurationError,
    LeaseLost,
    MigrationError,
    SchemaNotMigrated,
    StoreError,
    StoreStalled,
    ValueRefused,
)
from ironflow_py.records import EffectInfo, InstanceInfo, InstanceStatus, OutcomeStatus, TimerInfo
from ironflow_py.store import _conninfo, postgres_replica
from ironflow_py.store._listen_test import pooled
from ironflow_py.store._listener import ClosedListener
from ironflow_py.store._sql import Migration, load_migrations, load_queries
from ironflow_py.store._waiters import WaiterHub
from ironflow_py.store._watchdog import GuardedConnection, StalledStatement, Watchdog
from ironflow_py.store.base import (
    Loaded,
    LoadedEvent,
    Settle,
    SettleKind,
    StoredEvent,
    StoredSnapshot,
    Tombstone,
    Writes,
    Written,
)
from ironflow_py.store.postgres_outbox import PostgresOutbox
from ironflow_py.store.postgres_retention import PostgresPruner
from ironflow_py.values import MAX_IDENTIFIER_BYTES, identifier_problem

DEFAULT_SCHEMA = "ironflow"

#: SQLSTATE classes of a value the database refused: data exception, integrity constraint violation,
#: program limit exceeded (an index row too large). Permanent: the same value fails the same way.
_REFUSED_CLASSES = frozenset({"22", "23", "54"})


def refused(exc: BaseException) -> bool:
    """True when `exc` says the database (or the driver, before sending) refused a value.

    That is a permanent data error, not an outage.

    Args:
        exc: an exception raised by psycopg or while encoding a parameter.

    Returns:
        Whether retrying the same value can never succeed.
    """
    if isinstance(exc, UnicodeEncodeError):
        return True  # a lone surrogate: not UTF-8, refused by the driver before anything was sent
    if not isinstance(exc, psycopg.Error):
        return False
    state = exc.sqlstate
    if state is None:
        return isinstance(exc, psycopg.DataError)  # NUL in a text parameter, refused by the driver
    return state[:2] in _REFUSED_CLASSES


def connection_lost(conn: psycopg.Connection[Any], exc: BaseException) -> bool:
    """True when `exc` means the session is gone (network, server crash, pg_terminate_backend).

    Args:
        conn: the connection the statement ran on.
        exc: what it raised.

    Returns:
        Whether the server may have done more than the client heard about.
    """
    if conn.broken or conn.closed:
        return True
    state = getattr(exc, "sqlstate", None)
    return isinstance(exc, psycopg.OperationalError) and (
        state is None or state.startswith("08") or state in {"57P01", "57P02", "57P03"}
    )


#: SQLSTATE read_only_sql_transaction: the session is on a node that cannot write (a hot standby, a demoted
#: primary, a pooler still pointing at the old primary). An outage, not a data error: the same statement
#: succeeds once the session is on the primary.
READ_ONLY = "25006"


def read_only(exc: BaseException) -> bool:
    """True when `exc` says the session cannot write: it reached a standby or a demoted primary.

    After a failover that is where a session opened before it, or routed by something that has not yet
    followed the promotion, can land. It is an outage (retryable), never a refused value.

    Args:
        exc: an exception raised by psycopg, or one raised while handling it (a projection handler that
            wraps the driver's error): its causes are looked at too.

    Returns:
        Whether the error, or one it was raised from, is SQLSTATE 25006 (read_only_sql_transaction).
    """
    seen: BaseException | None = exc
    for _ in range(8):  # a bounded walk: a cause chain can loop
        if seen is None:
            return False
        if isinstance(seen, psycopg.Error) and seen.sqlstate == READ_ONLY:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def session_unusable(conn: psycopg.Connection[Any], exc: BaseException) -> bool:
    """True when `exc` says the session itself failed (lost, or on a node that cannot write), not the data.

    A daemon drops such a session and reconnects, and does not count the error as an attempt: on a
    multi-host URL with `target_session_attrs=read-write` the new session reaches the current primary.

    Args:
        conn: the connection the statement ran on.
        exc: what it raised.

    Returns:
        `connection_lost(conn, exc)` or `read_only(exc)`.
    """
    return connection_lost(conn, exc) or read_only(exc)


def check_schema_name(schema: str) -> None:
    """Refuse a schema name PostgreSQL would alter (over 63 bytes: silently truncated) or refuse (NUL).

    Args:
        schema: the schema name.

    Raises:
        ConfigurationError: naming what is wrong; two names that differ only past byte 63 would share one
            schema, so one tenant could read another's events.
    """
    problem = identifier_problem(schema) if isinstance(schema, str) else "it must be a string"
    if problem is not None:
        raise ConfigurationError(f"schema name cannot be used: {problem}")


def _check_stall_timeout(stall_timeout: float | None) -> None:
    if stall_timeout is None:
        return
    if isinstance(stall_timeout, bool) or not isinstance(stall_timeout, int | float) or not stall_timeout > 0:
        raise ConfigurationError(f"stall_timeout must be None or seconds > 0, got {stall_timeout!r}")


_SETTLE_QUERY = {
    SettleKind.EFFECT_DONE: "settle_effect_done",
    SettleKind.EFFECT_DEAD: "settle_effect_dead",
    SettleKind.TIMER_FIRED: "settle_timer_fired",
}


def notify_channel(schema: str) -> str:
    """The LISTEN/NOTIFY channel of one schema (channel names are identifiers: at most 63 bytes)."""
    channel = f"ironflow_{schema}"
    if len(channel.encode()) > MAX_IDENTIFIER_BYTES:
        channel = "ironflow_" + hashlib.sha1(schema.encode(), usedforsecurity=False).hexdigest()
    return channel


_orjson: Any
try:
    _orjson = importlib.import_module("orjson")
except ImportError:  # the optional `fast` extra
    _orjson = None


#: A run of 19 digits: an integer that may not fit 64 bits (or a long digit run inside a string).
_LONG_DIGITS = re.compile(r"\d{19}")
_LONG_DIGITS_BYTES = re.compile(rb"\d{19}")


def json_loads(data: str | bytes) -> Any:
    """Parse JSON with orjson when installed (about 1.5 µs less per event, design/codec.md), else the stdlib.

    orjson reads an integer beyond 64 bits as a float, silently losing digits (`2**64` comes back as
    `1.8446744073709552e+19`). A payload holding a run of 19 or more digits therefore goes to the stdlib
    parser, which keeps integers exact, so the result never depends on which parser ran. A module-level
    function, not a closure: psycopg caches loaders per function object.

    Args:
        data: JSON text as PostgreSQL sent it.

    Returns:
        The parsed value, exactly what `json.loads` gives.
    """
    if _orjson is not None:
        long_digits = _LONG_DIGITS_BYTES if isinstance(data, bytes) else _LONG_DIGITS
        if long_digits.search(data) is None:  # type: ignore[arg-type]  # bytes pattern for bytes, str for str
            try:
                return _orjson.loads(data)
            except _orjson.JSONDecodeError:
                pass
    return json.loads(data)


class _TextArray(list[str]):
    """A list of strings sent as a binary `text[]` by `_TextArrayDumper` (write_decision's arrays)."""

    __slots__ = ()


_ARRAY_HEADER = struct.Struct("!iiiii")  # dimensions, has-nulls flag, element oid, length, lower bound
_ELEMENT_LENGTH = struct.Struct("!i")
_TEXT_OID = 25
_TEXT_ARRAY_OID = 1009


class _TextArrayDumper(Dumper):
    """Dumps `_TextArray` in PostgreSQL's binary array format, in the connection's encoding.

    psycopg's own list dumper inspects the list for its element type and builds a dumper per call: 8 µs
    for a list of one string, 1.5 µs here; write_decision sends four or more lists per decision.
    """

    format = Format.BINARY
    oid = _TEXT_ARRAY_OID

    def __init__(self, cls: type, context: Any = None) -> None:
        super().__init__(cls, context)
        conn = self.connection
        self._encoding = conn.info.encoding if conn is not None else "utf-8"

    def dump(self, obj: Any) -> bytes:
        encoding = self._encoding
        parts = [_ARRAY_HEADER.pack(1, 0, _TEXT_OID, len(obj), 1)]
        for item in obj:
            data = item.encode(encoding)
            parts.append(_ELEMENT_LENGTH.pack(len(data)))
            parts.append(data)
        return b"".join(parts)


psycopg.adapters.register_dumper(_TextArray, _TextArrayDumper)


def _texts(items: list[str]) -> _TextArray | None:
    """`items` as a binary text[] parameter, or None (SQL NULL) when empty."""
    return _TextArray(items) if items else None


#: Seconds a lost pooled connection is retried (1 s, 2 s, then capped at this end) before the pool gives the
#: slot up and opens a fresh one on the next demand, whose backoff starts at 1 s again. psycopg_pool's own
#: backoff doubles without a cap up to its 5-minute default, which kept callers waiting 17-20 s after an
#: outage ended; this keeps every retry within a few seconds of the server coming back.
RECONNECT_TIMEOUT = 4.0


#: Seconds one request for a pooled connection waits before it is made again (see `PostgresStore._getconn`):
#: the longest a caller waits, after the server is back, for the pool to try a new connection.
POOL_WAIT_SLICE = 1.0


#: psycopg's default: a statement is prepared on the server after it ran this many times on a connection.
PREPARE_THRESHOLD = 5

#: Default seconds one wait for the server may last before the store cuts the connection (`StoreStalled`).
STALL_TIMEOUT = 30.0


def configure_session(conn: psycopg.Connection[Any]) -> None:
    """Bound what a frozen client or a vanished one can cost the server, on a session of the client's own.

    A client that freezes inside a transaction (a stalled network, a stopped process) would hold its row
    locks and the cluster's transaction horizon: the server ends such a session after 30 s, unless the
    server or the user already chose a bound of their own. A client that vanishes while its statement runs
    (its connection cut by the store's watchdog) is noticed by the server within
    `client_connection_check_interval` (PostgreSQL 14+; 5 s unless set) instead of when the statement ends.

    Session SETs are session state: behind a transaction-mode pooler they would land on whichever server
    connection ran them and stay there for other clients, so they are made only when the server session
    is the client's own (the pids agree, see `store/_listen_test.pooled`). Behind a pooler the bounds come
    from the pooler (PgBouncer's idle_transaction_timeout) or the role (ALTER ROLE ... SET ...);
    design/operations.md.

    Args:
        conn: A new autocommit connection, outside a transaction.
    """
    conn.execute(
        "SELECT CASE WHEN current_setting('idle_in_transaction_session_timeout') IN ('0', '0ms')"
        " THEN set_config('idle_in_transaction_session_timeout', %s, false) END,"
        " CASE WHEN current_setting('client_connection_check_interval', true) IN ('0', '0ms')"
        " THEN set_config('client_connection_check_interval', %s, false) END"
        " WHERE pg_backend_pid() = %s",
        (str(_conninfo.IDLE_IN_TRANSACTION_MS), str(_conninfo.CLIENT_CHECK_INTERVAL_MS), conn.info.backend_pid),
        prepare=False,
    )


class _Configure:
    """The pool's `configure`: the stall watchdog first (so the setup itself is bounded), then the rest.

    JSON loads, and the session bounds of `configure_session`.
    """

    def __init__(self, watchdog: Watchdog, stall_timeout: float | None) -> None:
        self.watchdog = watchdog
        self.stall_timeout = stall_timeout

    def __call__(self, conn: psycopg.Connection[Any]) -> None:
        if isinstance(conn, GuardedConnection):
            conn.watchdog, conn.bound = self.watchdog, self.stall_timeout
        set_json_loads(json_loads, conn)
        configure_session(conn)


def _instance_info(*row: Any) -> InstanceInfo:
    wtype, wid, status, last_seq, created_at, updated_at, closed_at, outcome, paused_at, *parent = row
    return InstanceInfo(
        wtype, wid, InstanceStatus(status), last_seq, created_at, updated_at, closed_at, outcome, paused_at, *parent
    )


class PostgresStore:
    """The durable store: every table in one schema of a PostgreSQL database, reached through a pool.

    Create it with `PostgresStore.connect(url)` and call `migrate()` once per schema (or run
    `ironflow-py migrate`). Every call opens its own transaction on a pooled autocommit connection; the
    SQL lives in `store/sql/` (design/schema.md). Use it as a context manager, or call `close()`.

    Args:
        pool: An open psycopg pool whose connections run in autocommit. Its connections are bounded by
            the stall watchdog when they are `GuardedConnection`s (as `connect()` makes them).
        schema: The schema holding every table.
        stall_timeout: Seconds one wait for the server may last before the connection is cut and the call
            raises `StoreStalled` (None: never cut).
        watchdog: The thread that cuts stalled connections (`connect()` passes the one its pool's
            connections were configured with); None starts a new one.
    """

    def __init__(
        self,
        pool: psycopg_pool.ConnectionPool[psycopg.Connection[Any]],
        schema: str,
        *,
        stall_timeout: float | None = STALL_TIMEOUT,
        watchdog: Watchdog | None = None,
    ) -> None:
        check_schema_name(schema)
        _check_stall_timeout(stall_timeout)
        self.pool = pool
        #: Seconds one wait for the server may last (None: unbounded); see `PostgresStore.connect`.
        self.stall_timeout = stall_timeout
        #: Cuts connections whose wait for the server outlived its bound (store/_watchdog.py).
        self.watchdog = watchdog or Watchdog()
        self.schema = schema
        self.q = load_queries(schema)
        self.channel = notify_channel(schema)
        self._waiters = WaiterHub()
        self._listener: ClosedListener | None = None
        self._listener_lock = threading.Lock()
        self._check_lock = threading.Lock()
        self._checking = False
        given = pool.kwargs if isinstance(pool.kwargs, dict) else {}
        threshold = given.get("prepare_threshold", PREPARE_THRESHOLD)
        #: The `prepare_threshold` of the pool's connections; the daemons' own connections use it too.
        self.prepare_threshold: int | None = threshold if threshold is None else int(threshold)
        #: Whether `connect()` found a connection pooler between it and the server (see `pooled`).
        self.behind_pooler = False

    @classmethod
    def connect(
        cls,
        url: str,
        *,
        schema: str = DEFAULT_SCHEMA,
        min_size: int = 1,
        max_size: int = 10,
        application_name: str = "ironflow_py",
        timeout: float = 30.0,
        prepare_threshold: int | None = PREPARE_THRESHOLD,
        stall_timeout: float | None = STALL_TIMEOUT,
    ) -> PostgresStore:
        """Open a connection pool on `url` and return the store; connections run in autocommit.

        Behind PgBouncer in transaction pooling mode pass `prepare_threshold=None` (design/operations.md,
        "Connection poolers"): a statement prepared on one server connection is unknown on the next one the
        pooler hands out, and PgBouncer before 1.21 (or with `max_prepared_statements = 0`) cannot map it.

        Args:
            url: A PostgreSQL URL or conninfo string (`postgresql://user@host:5432/db`).
            schema: The schema holding every table (default ``"ironflow"``).
            min_size: Connections the pool keeps open.
            max_size: Most connections the pool opens; size it to the threads that call the store.
            application_name: Shown in `pg_stat_activity`.
            timeout: Seconds to wait for the first connection, and for a free one later (monotonic clock).
            prepare_threshold: psycopg's `prepare_threshold`, for every connection the store opens (the
                pool's and the daemons' own): a statement is prepared on the server after it ran this many
                times on a connection (0: at once); None never prepares, the setting for a pooler that
                cannot track prepared statements. Default 5, psycopg's.
            stall_timeout: Seconds one wait for the server (a statement's answer, a fetch, a COMMIT) may
                last before the store cuts the connection and the call raises `StoreStalled` (default 30).
                This catches what TCP keepalives cannot: a peer that acknowledges every packet and never
                answers (a frozen proxy or pooler). A worker's claims, heartbeats and settles are bounded
                by half its lease if that is shorter; `migrate()` is never cut. A statement that may
                rightly run longer (a lock wait behind a long transaction) needs a larger value. None:
                never cut (design/reliability.md, "Stalls").

        Returns:
            The store, not yet migrated.

        Raises:
            ConfigurationError: The schema name is empty, holds NUL, or is over 63 bytes of UTF-8
                (PostgreSQL would truncate it, so two long names would share one schema);
                `prepare_threshold` is neither None nor an integer >= 0; or `stall_timeout` is neither
                None nor a number of seconds > 0.
            StoreError: The server cannot be reached within `timeout`.
        """
        check_schema_name(schema)
        if prepare_threshold is not None and (
            isinstance(prepare_threshold, bool) or not isinstance(prepare_threshold, int) or prepare_threshold < 0
        ):
            raise ConfigurationError(f"prepare_threshold must be None or an integer >= 0, got {prepare_threshold!r}")
        _check_stall_timeout(stall_timeout)
        kwargs = {
            "autocommit": True,
            "application_name": application_name,
            "prepare_threshold": prepare_threshold,
            **_conninfo.session_kwargs(url),
        }
        where = _conninfo.mask_password(url)
        watchdog = Watchdog()
        try:
            # One direct connection first: a wrong password or an unreachable host fails here within
            # connect_timeout, with libpq's cause; the pool would only retry and time out saying nothing.
            with GuardedConnection.connect(url, **kwargs) as first:
                first.watchdog, first.bound = watchdog, stall_timeout
                behind_pooler = pooled(first)
            pool: psycopg_pool.ConnectionPool[psycopg.Connection[Any]] = psycopg_pool.ConnectionPool(
                url,
                connection_class=GuardedConnection,
                min_size=min_size,
                max_size=max_size,
                kwargs=kwargs,
                configure=_Configure(watchdog, stall_timeout),
                timeout=timeout,
                reconnect_timeout=RECONNECT_TIMEOUT,
                open=False,
            )
            pool.open(wait=True, timeout=timeout)
        except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
            watchdog.close()
            cause = _conninfo.scrub(str(exc).strip(), url)
            # from None: the driver's exception may quote the connection string; the cause is in the message.
            raise StoreError(f"cannot connect to PostgreSQL ({where}): {cause}") from None
        store = cls(pool, schema, stall_timeout=stall_timeout, watchdog=watchdog)
        store.behind_pooler = behind_pooler
        return store

    def close(self) -> None:
        """Stop the close-notice listener and close the pool; the store cannot be used afterwards."""
        if self._listener is not None:
            self._listener.stop()
            self._listener.join(timeout=2.0)
        self.pool.close()
        self.watchdog.close()

    def bound(self, seconds: float | None) -> float | None:
        """The stall bound of a call that must end within `seconds`: the shorter of it and `stall_timeout`.

        Args:
            seconds: The call's own limit (half a worker's lease, say), or None.

        Returns:
            Seconds, or None when neither bounds the call.
        """
        if seconds is None:
            return self.stall_timeout
        return seconds if self.stall_timeout is None else min(seconds, self.stall_timeout)

    def guard(self, conn: psycopg.Connection[Any], bound: float | None, *, whole_call: bool = False) -> None:
        """Bound each wait of `conn` for the server by `bound` seconds (None: unbounded).

        Args:
            conn: A connection of this store (only a `GuardedConnection` can be bounded).
            bound: Seconds one wait may last.
            whole_call: Also end the whole call `bound` seconds from now (claims, heartbeats, settles; the
                wait for a pooled connection was bounded by the same number of seconds).
        """
        if isinstance(conn, GuardedConnection):
            conn.watchdog = self.watchdog
            conn.bound = bound
            conn.call_deadline = time.monotonic() + bound if whole_call and bound is not None else None

    # -- waiting for closes -----------------------------------------------------------------------------

    def closed_waiters(self) -> WaiterHub:
        """The store's one hub of waiters on instance closes; the first call starts its LISTEN connection.

        Returns:
            The hub. One LISTEN connection serves every waiter of this store, however many there are.
        """
        with self._listener_lock:
            listener = self._listener
            # A listener whose self-test failed stays: notifications never arrive here, waiters poll.
            if listener is None or not (listener.is_alive() or listener.unavailable.is_set()):
                conninfo = self.pool.conninfo
                assert isinstance(conninfo, str)  # connect() passes a URL, never a callable
                self._listener = ClosedListener(
                    conninfo, self.schema, self._waiters, prepare_threshold=self.prepare_threshold
                )
                self._listener.start()
        return self._waiters

    def listening(self, timeout: float) -> bool:
        """Block until close notices are being received, at most `timeout` seconds (monotonic clock).

        A waiter that subscribes, then sees this return True, then reads the instance cannot miss its close.

        Args:
            timeout: The longest wait in seconds.

        Returns:
            True when the LISTEN is in place; False if not yet (polling then covers the gap).
        """
        self.closed_waiters()
        listener = self._listener
        if listener is None or listener.unavailable.is_set():
            return False
        deadline = time.monotonic() + timeout
        while not listener.ready.wait(min(0.05, max(0.0, deadline - time.monotonic()))):
            if listener.unavailable.is_set() or time.monotonic() >= deadline:
                return False
        return True

    @property
    def listener_pid(self) -> int | None:
        """The backend pid of the LISTEN connection (None while it is not connected)."""
        return None if self._listener is None else self._listener.pid

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_pool_soon(self) -> None:
        """A session was lost: test the idle ones now, in the background (one check at a time).

        When the server died (or a failover moved the primary) every idle session in the pool is dead too;
        psycopg_pool would find each only when a caller gets it and fails. `pool.check()` discards them
        first and opens new ones, so about one call per outage fails instead of one per pooled session.
        """
        with self._check_lock:
            if self._checking:
                return
            self._checking = True

        def check() -> None:
            try:
                # Best effort: what the check misses (the pool closing under it) a caller meets, as before.
                with contextlib.suppress(Exception):
                    self.pool.check()
            finally:
                with self._check_lock:
                    self._checking = False

        threading.Thread(target=check, name="ironflow-pool-check", daemon=True).start()

    def _getconn(self, within: float | None = None) -> psycopg.Connection[Any] | None:
        """A pooled connection, waiting at most the pool's `timeout`, asked for again every POOL_WAIT_SLICE s.

        psycopg_pool gives a lost connection's slot up after `reconnect_timeout` and opens a new one only
        when a caller asks: a caller already waiting does not ask again. After an outage longer than
        that (a failover takes several seconds), every waiting caller would sit out the whole pool timeout
        with the server back. Asking again every slice makes the pool open a connection within a slice
        of the server (or the promoted standby) accepting sessions. None when the wait passed.

        Args:
            within: The longest wait in seconds (a call bounded as a whole); None: the pool's `timeout`.
        """
        deadline = time.monotonic() + (self.pool.timeout if within is None else within)
        while True:
            left = deadline - time.monotonic()
            try:
                return self.pool.getconn(timeout=max(0.001, min(POOL_WAIT_SLICE, left)))
            except psycopg_pool.PoolTimeout:
                if time.monotonic() >= deadline:
                    return None

    @contextmanager
    def connection(
        self,
        workflow_type: str | None = None,
        workflow_id: str | None = None,
        *,
        within: float | None = None,
        unbounded: bool = False,
    ) -> Iterator[psycopg.Connection[Any]]:
        """A pooled autocommit connection for store modules; driver errors leave as typed errors.

        Every wait for the server on it is bounded by `stall_timeout` (see `connect`).

        Args:
            workflow_type: Named in errors raised inside the block.
            workflow_id: Named likewise.
            within: The whole block must end within this many seconds (a worker's claim, heartbeat or
                settle: half its lease), or it is cut (`StoreStalled`). None: each wait gets `stall_timeout`.
            unbounded: Never cut (migrations, which may rightly run long).

        Yields:
            The connection, returned to the pool when the block ends.

        Raises:
            StoreStalled: A wait for the server outlived its bound; the connection was cut and discarded.
            ConcurrencyConflict: A second event with the same instance sequence was refused.
            ValueRefused: The database or the driver refused a value (SQLSTATE class 22, 23 or 54, NUL in
                a text parameter, a lone surrogate); permanent.
            StoreError: Any other driver or pool error (connection lost, server error, pool timeout, a
                session on a read-only node: SQLSTATE 25006, whose connection is discarded).
        """
        try:
            # A call bounded as a whole waits for a pooled connection no longer than its bound either.
            conn = self._getconn(within)
            if conn is None:
                wait = self.pool.timeout if within is None else within
                raise StoreError(
                    f"PoolTimeout: no connection within {wait:g} s",
                    workflow_type=workflow_type,
                    workflow_id=workflow_id,
                )
            try:
                with conn:  # psycopg's connection block: rolls back on error; pooled, so it is not closed
                    self.guard(conn, None if unbounded else self.bound(within), whole_call=within is not None)
                    try:
                        yield conn
                    except BaseException as exc:
                        if read_only(exc):  # the driver's error, or a store error raised from it
                            # The session is on a node that cannot write (a standby, the demoted primary after
                            # a failover). Closed before it goes back, so the pool discards it and opens a new
                            # one, which the URL's target_session_attrs=read-write sends to the primary.
                            conn.close()
                        elif conn.broken:
                            self._check_pool_soon()
                        raise
                    finally:
                        self.guard(conn, self.stall_timeout)  # back to the default before the pool gets it
            finally:
                self.pool.putconn(conn)
        except StalledStatement as exc:
            raise StoreStalled(str(exc), workflow_type=workflow_type, workflow_id=workflow_id) from exc
        except psycopg.errors.UniqueViolation as exc:
            if exc.diag.constraint_name == "events_instance_seq":
                raise ConcurrencyConflict(
                    "another writer appended the same sequence",
                    workflow_type=workflow_type,
                    workflow_id=workflow_id,
                ) from exc
            raise ValueRefused(
                str(exc), workflow_type=workflow_type, workflow_id=workflow_id, sqlstate=exc.sqlstate
            ) from exc
        except (psycopg.Error, UnicodeEncodeError) as exc:
            if not refused(exc):
                raise StoreError(
                    f"{type(exc).__name__}: {exc}".strip(), workflow_type=workflow_type, workflow_id=workflow_id
                ) from exc
            raise ValueRefused(
                f"{type(exc).__name__}: {exc}".strip(),
                workflow_type=workflow_type,
                workflow_id=workflow_id,
                sqlstate=getattr(exc, "sqlstate", None),
            ) from exc

    @contextmanager
    def transaction(
        self, conn: psycopg.Connection[Any], workflow_type: str | None = None, workflow_id: str | None = None
    ) -> Iterator[None]:
        """`conn.transaction()`, except that a connection lost during COMMIT raises CommitUnknown.

        The server may have committed before the client heard back, so this is neither a success nor a
        rollback.

        Args:
            conn: A connection from `connection()`.
            workflow_type: Named in the error.
            workflow_id: Named in the error.

        Yields:
            Nothing; the block runs inside the transaction.

        Raises:
            CommitUnknown: The body finished and the connection died during COMMIT.
        """
        committing = False
        try:
            with conn.transaction():
                yield
                committing = True
        except psycopg.Error as exc:
            if committing and connection_lost(conn, exc):
                raise CommitUnknown(
                    f"{type(exc).__name__}: {exc}".strip(), workflow_type=workflow_type, workflow_id=workflow_id
                ) from exc
            raise

    # -- schema -----------------------------------------------------------------------------------------

    def migrate(self) -> list[int]:
        """Apply the numbered migrations not yet applied, in order, in one transaction, under a lock.

        Concurrent callers queue on an advisory lock keyed on the schema, so each file runs once.

        Returns:
            The versions applied by this call (empty if the schema was up to date).

        Raises:
            MigrationError: The schema has migrations this code does not know (upgrade ironflow_py).
            StoreError: The database failed; nothing was applied.
        """
        migrations = load_migrations(self.schema)
        # Read first, outside the lock: an application role with no DDL rights (no CREATE on the database,
        # which even CREATE SCHEMA IF NOT EXISTS checks) migrates an up-to-date schema as a no-op. Only a
        # schema with something to apply takes the lock and needs the migrator's rights.
        applied_before = set(self.applied_migrations())
        self._check_known(applied_before, migrations)
        if applied_before >= {m.version for m in migrations}:
            return []
        q = self.q
        applied_now: list[int] = []
        with self.connection(unbounded=True) as conn, conn.transaction():
            conn.execute(q["migration_lock"], {"schema": self.schema})
            conn.execute(q["create_schema"])
            conn.execute(q["create_migrations_table"])
            applied = {row[0] for row in conn.execute(q["applied_migrations"]).fetchall()}
            self._check_known(applied, migrations)
            for migration in migrations:
                if migration.version in applied:
                    continue
                conn.execute(migration.sql)  # no parameters: psycopg sends it as one multi-statement query
                conn.execute(q["record_migration"], {"version": migration.version, "name": migration.name})
                applied_now.append(migration.version)
        return applied_now

    def _check_known(self, applied: set[int], migrations: list[Migration]) -> None:
        unknown = applied - {m.version for m in migrations}
        if unknown:
            raise MigrationError(
                f"schema {self.schema!r} has migrations {sorted(unknown)} that this code does not know; "
                "upgrade ironflow_py"
            )

    def applied_migrations(self) -> list[int]:
        """The migration versions recorded in the schema, in order.

        Returns:
            The versions (empty if the schema was never migrated).

        Raises:
            StoreError: The database could not be reached or refused the query.
        """
        with self.connection() as conn:
            row = conn.execute(self.q["migrations_table_exists"], {"schema": self.schema}).fetchone()
            if row is None or not row[0]:
                return []
            return [row[0] for row in conn.execute(self.q["applied_migrations"]).fetchall()]

    def pending_migrations(self) -> list[int]:
        """The migration versions this code has and the schema has not applied yet.

        Returns:
            The versions, in order.

        Raises:
            StoreError: The database could not be reached or refused the query.
        """
        applied = set(self.applied_migrations())
        return [m.version for m in load_migrations(self.schema) if m.version not in applied]

    def require_migrated(self) -> None:
        """Check that every migration this code knows is applied; a cheap read, no lock.

        Raises:
            SchemaNotMigrated: Some are missing; the message says to run `ironflow-py migrate`.
            StoreError: The database cannot be reached.
        """
        missing = self.pending_migrations()
        if missing:
            raise SchemaNotMigrated(self.schema, missing)

    # -- the decision transaction -----------------------------------------------------------------------

    @contextmanager
    def locked(
        self, workflow_type: str, workflow_id: str, input_key: str | None = None, *, settle: Settle | None = None
    ) -> Iterator[PostgresTransaction]:
        """One transaction holding the instance's advisory lock (see `Store.locked` and design/decider.md).

        Args:
            workflow_type: The instance's workflow type.
            workflow_id: The instance's id.
            input_key: The input's idempotency key, whose recorded status `load` reads (None: none).
            settle: A fenced change to a claimed outbox row or timer, applied first, under the lock. Its
                `deadline` (seconds) bounds the whole transaction on the client and, as a local
                `idle_in_transaction_session_timeout`, on the server: a worker frozen inside it holds the
                instance lock and the transaction horizon no longer than that.

        Yields:
            The transaction: `load`, `events_after`, `write`. It commits when the block ends and rolls
            back if the block raises.

        Raises:
            LeaseLost: `settle` was given and the claim no longer holds; nothing was written.
            ConcurrencyConflict: Another writer appended the same sequence (the lock was bypassed).
            ValueRefused: The database refused a value; the transaction was rolled back.
            StoreStalled: The database did not answer in time (see `connect`); rolled back.
            StoreError: The database failed; the transaction was rolled back.
            CommitUnknown: The connection was lost (or cut as stalled) while COMMIT was in flight.
        """
        ids = {"workflow_type": workflow_type, "workflow_id": workflow_id}
        within = None if settle is None else settle.deadline
        with (
            self.connection(workflow_type, workflow_id, within=within) as conn,
            self.transaction(conn, workflow_type, workflow_id),
        ):
            tx = PostgresTransaction(self, conn, ids, input_key)
            # The lock comes before any statement that assigns a transaction id (lock_instance in queries.sql).
            # Without a settle, the transaction's first call takes it: `load` in the same statement that reads
            # the instance (lock_and_load, migration 016), saving a round trip per decision.
            if settle is not None:
                if settle.deadline is not None:
                    # A worker frozen inside its feedback transaction (a stalled network) would hold the
                    # instance lock, the claimed row and the cluster's transaction horizon: the server ends
                    # the session once it sits idle for the deadline. SET LOCAL: right behind a pooler too.
                    idle_ms = max(1, int(settle.deadline * 1000))
                    conn.execute(self.q["local_idle_timeout"], {"ms": str(idle_ms)})
                tx.lock()
                self._settle(conn, settle)
            yield tx

    def reading(self, workflow_type: str, workflow_id: str) -> AbstractContextManager[postgres_replica.PostgresReader]:
        """One REPEATABLE READ READ ONLY transaction over an instance, without its lock (see `Store.reading`).

        Args:
            workflow_type: The instance's workflow type.
            workflow_id: The instance's id.

        Returns:
            A context manager yielding the reader (`load`, `events_after`); works on a hot standby.

        Raises:
            StoreError: The database could not be reached or refused the transaction.
        """
        return postgres_replica.reading(self, workflow_type, workflow_id)

    def wal_position(self) -> str:
        """The primary's WAL insert position, at or past every commit that returned before this call.

        Returns:
            `pg_lsn` text, e.g. ``"0/3000148"`` (see `Store.wal_position`).

        Raises:
            StoreError: The database could not be reached, or it is a standby.
        """
        return postgres_replica.wal_position(self)

    def wait_for_replay(
        self, min_lsn: str, timeout: float, *, workflow_type: str | None = None, workflow_id: str | None = None
    ) -> None:
        """Return once this server has replayed the WAL up to `min_lsn`; at once on a primary.

        Args:
            min_lsn: A position from `wal_position` (`Outcome.wal_position`).
            timeout: The longest wait in seconds (monotonic clock).
            workflow_type: Named in the error.
            workflow_id: Named in the error.

        Raises:
            ReplicaBehind: Replay had not reached `min_lsn` within `timeout`.
            ValueRefused: `min_lsn` is not a WAL position.
            StoreError: The database could not be reached.
        """
        postgres_replica.wait_for_replay(self, min_lsn, timeout, workflow_type=workflow_type, workflow_id=workflow_id)

    def outbox(self, worker: str, *, lease: timedelta | None = None) -> PostgresOutbox:
        """The outbox port for one worker on this store: its claims and fenced updates (`store.base.Outbox`).

        Args:
            worker: The worker id that names its claims; unique per process start (see `EffectRuntime`).
            lease: The worker's lease: its complete, retry, dead and release calls must end within half of
                it (claims and heartbeats take their own lease argument). None: `stall_timeout` only.

        Returns:
            The port, bound to this store and `worker`.
        """
        return PostgresOutbox(self, worker, lease)

    def pruner(self, projections: str | Iterable[str] = ()) -> PostgresPruner:
        """The pruning port of this schema (`store.base.Pruner`, design/retention.md).

        Args:
            projections: Projection names that bound pruning even before their checkpoint row exists (one
                name as a string, or several).

        Returns:
            The pruner.
        """
        return PostgresPruner(self, projections)

    def _settle(self, conn: psycopg.Connection[Any], settle: Settle) -> None:
        """Apply the fenced change first: a lost claim costs no decoding or deciding, and writes nothing."""
        params = {
            "id": settle.id,
            "worker": settle.worker,
            "token": settle.token,
            "now": settle.now,
            "error": settle.error,
            "traceback": settle.traceback,
        }
        if conn.execute(self.q[_SETTLE_QUERY[settle.kind]], params).rowcount != 1:
            what = "timer" if settle.kind is SettleKind.TIMER_FIRED else "effect"
            # Raised inside the transaction block, so everything this transaction did is rolled back.
            raise LeaseLost(what, settle.id, settle.worker)

    # -- reads ------------------------------------------------------------------------------------------

    def events(self, workflow_type: str, workflow_id: str) -> list[StoredEvent]:
        """Every stored event of one instance, in sequence order, not decoded.

        Args:
            workflow_type: The workflow type.
            workflow_id: The instance.

        Returns:
            The rows (empty if the instance does not exist).

        Raises:
            StoreError: The database could not be reached or refused the query.
        """
        with self.connection(workflow_type, workflow_id) as conn:
            cur = conn.cursor(row_factory=args_row(StoredEvent))
            return cur.execute(
                self.q["history"], {"workflow_type": workflow_type, "workflow_id": workflow_id}
            ).fetchall()

    def instances_with_events(
        self, workflow_type: str, type_names: Sequence[str], *, after: str | None = None, limit: int = 100
    ) -> list[str]:
        """Ids of instances with an event under one of `type_names`, `instances_with_events` (a scan).

        Args:
            workflow_type: The workflow type.
            type_names: Stored event names to look for.
            after: The last id of the previous page, or None.
            limit: At most this many ids.

        Returns:
            The ids, in ascending order.

        Raises:
            StoreError: The database could not be reached or refused the query.
        """
        params = {"workflow_type": workflow_type, "type_names": list(type_names), "after": after, "limit": limit}
        with self.connection(workflow_type) as conn:
            return [row[0] for row in conn.execute(self.q["instances_with_events"], params).fetchall()]

    def instance(self, workflow_type: str, workflow_id: str) -> InstanceInfo | None:
        """The summary row of one instance.

        Args:
            workflow_type: The workflow type.
            workflow_id: The instance.

        Returns:
            The row, or None if the instance does not exist.

        Raises:
            StoreError: The database could not be reached or refused the query.
        """
        with self.connection(workflow_type, workflow_id) as conn:
            cur = conn.cursor(row_factory=args_row(_instance_info))
            return cur.execute(
                self.q["instance"], {"workflow_type": workflow_type, "workflow_id": workflow_id}
            ).fetchone()

    def latest_snapshot(self, workflow_type: str, workflow_id: str) -> StoredSnapshot | None:
        """The newest snapshot of one instance, not decoded.

        Args:
            workflow_type: The workflow type.
            workflow_id: The instance.

        Returns:
            The snapshot, or None if it has none.

        Raises:
            StoreError: The database could not be reached or refused the query.
        """
        with self.connection(workflow_type, workflow_id) as conn:
            cur = conn.cursor(row_factory=args_row(StoredSnapshot))
            return cur.execute(
                self.q["instance_snapshot"], {"workflow_type": workflow_type, "workflow_id": workflow_id}
            ).fetchone()

    def effects(self, workflow_type: str, workflow_id: str) -> list[EffectInfo]:
        """The outbox rows of one instance (pending, done and dead), oldest first.

        Args:
            workflow_type: The workflow type.
            workflow_id: The instance.

        Returns:
            The rows.

        Raises:
            StoreError: The database could not be reached or refused the query.
        """
        with self.connection(workflow_type, workflow_id) as conn:
            cur = conn.cursor(row_factory=args_row(EffectInfo))
            return cur.execute(
                self.q["instance_effects"], {"workflow_type": workflow_type, "workflow_id": workflow_id}
            ).fetchall()

    def timers(self, workflow_type: str, workflow_id: str) -> list[TimerInfo]:
        """The scheduled timers of one instance, earliest due first.

        Args:
            workflow_type: The workflow type.
            workflow_id: The instance.

        Returns:
            The timers.

        Raises:
            StoreError: The database could not be reached or refused the query.
        """
        with self.connection(workflow_type, workflow_id) as conn:
            cur = conn.cursor(row_factory=args_row(TimerInfo))
            return cur.execute(
                self.q["instance_timers"], {"workflow_type": workflow_type, "workflow_id": workflow_id}
            ).fetchall()

    def list_instances(
        self,
        workflow_type: str | None = None,
        status: InstanceStatus | None = None,
        *,
        limit: int = 100,
        after: tuple[str, str] | None = None,
    ) -> list[InstanceInfo]:
        """Instances ordered by (workflow type, id), optionally filtered, a page at a time.

        Args:
            workflow_type: Only this workflow type (None: all).
            status: Only instances in this status (None: all).
            limit: At most this many rows.
            after: (workflow_type, workflow_id) of the last row of the previous page (keyset pagination).

        Returns:
            The page of instance rows.

        Raises:
            StoreError: The database could not be reached or refused the query.
        """
        params = {
            "workflow_type": workflow_type,
            "status": None if status is None else status.value,
            "after_type": after[0] if after else None,
            "after_id": after[1] if after else None,
            "limit": limit,
        }
        with self.connection(workflow_type) as conn:
            cur = conn.cursor(row_factory=args_row(_instance_info))
            return cur.execute(self.q["list_instances"], params).fetchall()

    def open_versions(self, workflow_type: str) -> dict[str, int]:
        """How many open instances of one type record each version (see `Store.open_versions`).

        Args:
            workflow_type: The workflow type.

        Returns:
            Version -> count of open instances.

        Raises:
            StoreError: The database could not be reached or refused the query.
        """
        with self.connection(workflow_type) as conn:
            rows = conn.execute(self.q["open_versions"], {"workflow_type": workflow_type}).fetchall()
        return {version: count for version, count in rows}

    def children(self, workflow_type: str, workflow_id: str, *, open_only: bool = True) -> list[InstanceInfo]:
        """The instances started as children of one parent (see `Store.children`).

        Args:
            workflow_type: The parent's workflow type.
            workflow_id: The parent's id.
            open_only: Only children still running.

        Returns:
            Their instance rows, ordered by (workflow type, id).

        Raises:
            StoreError: The database could not be reached or refused the query.
        """
        params = {"workflow_type": workflow_type, "workflow_id": workflow_id, "open_only": open_only}
        with self.connection(workflow_type, workflow_id) as conn:
            cur = conn.cursor(row_factory=args_row(_instance_info))
            return cur.execute(self.q["children"], params).fetchall()


class PostgresTransaction:
    """`Transaction` on one pooled connection inside `PostgresStore.locked`'s transaction block.

    The instance lock is taken by the first call: `load` takes it in the statement that reads the instance
    (`lock_and_load`), any other call first runs `lock_instance`. Nothing is read or written before it.
    """

    def __init__(
        self, store: PostgresStore, conn: psycopg.Connection[Any], ids: dict[str, str], input_key: str | None
    ) -> None:
        self._store = store
        self._conn = conn
        self._ids = ids
        self._input_key = input_key
        self._locked = False
        # One cursor for the transaction's statements: a cursor per statement costs client CPU each time.
        self._cur = conn.cursor()

    def lock(self) -> None:
        """Take the instance's advisory lock now, if this transaction does not hold it yet."""
        if not self._locked:
            self._cur.execute(self._store.q["lock_instance"], self._ids)
            self._locked = True

    def events_after(self, seq: int) -> list[LoadedEvent]:
        """The events after `seq` (see `Transaction.events_after`)."""
        self.lock()
        cur = self._conn.cursor(row_factory=args_row(LoadedEvent))
        return cur.execute(self._store.q["load_events"], {**self._ids, "after_seq": seq}).fetchall()

    def load(self, *, after_seq: int = 0, with_snapshot: bool = False, known_gen: int | None = None) -> Loaded:
        """Lock (if not yet) and read in one statement, `lock_and_load` (see `Transaction.load`).

        The rows' order is described in migrations 016, 017 and 020: the instance row, the key's status, the
        snapshot, the events.
        """
        params = {
            **self._ids,
            "after_seq": after_seq,
            "with_snapshot": with_snapshot,
            "input_key": self._input_key,
            "known_gen": known_gen,
        }
        rows = self._cur.execute(self._store.q["lock_and_load"], params).fetchall()
        self._locked = True
        key_status = snapshot = version = gen = None
        first = run_start = run = 1
        # The instance row, when it exists, comes first: the only row with a snapshot generation.
        if rows and rows[0][4] is not None:
            run_start, version, _, run, gen = rows[0]
        else:
            first = 0
        if self._input_key is not None and len(rows) > first and rows[first][0] is None:
            key_status = OutcomeStatus(rows[first][1])
            first += 1
        if len(rows) > first and rows[first][1] is None:
            seq, _, data, state_version, _ = rows[first]
            snapshot = StoredSnapshot(seq, state_version, data)
            first += 1
        events = [LoadedEvent(row[0], row[1], row[2]) for row in rows[first:]]
        tombstone = None
        if not events and snapshot is None:  # new, or pruned to a tombstone (design/retention.md)
            row = self._cur.execute(self._store.q["load_tombstone"], self._ids).fetchone()
            tombstone = Tombstone(row[0], row[1]) if row else None
        return Loaded(events, key_status, snapshot, tombstone, version, run_start, run, gen)

    def instance(self) -> InstanceInfo | None:
        """The instance row under the lock (see `Transaction.instance`)."""
        self.lock()
        cur = self._conn.cursor(row_factory=args_row(_instance_info))
        return cur.execute(self._store.q["instance"], self._ids).fetchone()

    def key_status(self) -> OutcomeStatus | None:
        """The input key's recorded status (see `Transaction.key_status`)."""
        self.lock()
        if self._input_key is None:
            return None
        row = self._conn.execute(
            self._store.q["load_input_key"], {**self._ids, "input_key": self._input_key}
        ).fetchone()
        return OutcomeStatus(row[0]) if row else None

    def now(self) -> datetime:
        """The database server's `now()` (the transaction's start; see `Transaction.now`)."""
        row = self._conn.execute(self._store.q["database_now"]).fetchone()
        assert row is not None
        return row[0]  # type: ignore[no-any-return]

    def hold(self, paused_at: datetime | None, now: datetime) -> None:
        """Set or clear the dispatch hold in one statement, `hold_instance` (see `Transaction.hold`)."""
        self.lock()
        params = {
            **self._ids,
            "paused_at": paused_at,
            "now": now,
            "input_key": self._input_key,
            "channel": self._store.channel,
        }
        self._conn.execute(self._store.q["hold_instance"], params)

    def events_named(self, type_names: Sequence[str], limit: int) -> list[LoadedEvent]:
        """The first `limit` events stored under one of `type_names` (see `Transaction.events_named`)."""
        self.lock()
        params = {**self._ids, "type_names": list(type_names), "limit": limit}
        cur = self._conn.cursor(row_factory=args_row(LoadedEvent))
        return cur.execute(self._store.q["events_named"], params).fetchall()

    def rewrite_events(self, rows: Sequence[tuple[int, str, str]]) -> None:
        """Replace the name and payload of existing events in one statement, `rewrite_events`."""
        self.lock()
        params = {
            **self._ids,
            "seqs": [seq for seq, _, _ in rows],
            "types": [name for _, name, _ in rows],
            "payloads": [payload for _, _, payload in rows],
        }
        self._conn.execute(self._store.q["rewrite_events"], params)

    def drop_snapshot(self, seq: int) -> bool:
        """Delete the snapshot if it is at `seq`, `drop_snapshot` (see `Transaction.drop_snapshot`)."""
        self.lock()
        row = self._cur.execute(self._store.q["drop_snapshot"], {**self._ids, "seq": seq}).fetchone()
        return row is not None and row[0] == 1

    def write(self, w: Writes) -> Written:
        """Write one decision in one statement, `write_decision` (see `Transaction.write`)."""
        if w.is_empty():
            return Written()
        self.lock()
        # An empty list is sent as NULL: `unnest(NULL)` gives no rows and `= ANY(NULL)` matches none, and
        # psycopg dumps None for nothing, where an empty list costs a dumper lookup (design/decider.md).
        params = {
            **self._ids,
            "now": w.now,
            "base_seq": w.last_seq - len(w.events),
            "last_seq": w.last_seq,
            "status": w.status.value,
            "outcome": w.outcome,
            "touch_instance": w.touches_instance(),
            "event_types": _texts([t for t, _ in w.events]),
            "event_payloads": _texts([p for _, p in w.events]),
            "effect_types": _texts([t for t, _ in w.effects]),
            "effect_payloads": _texts([p for _, p in w.effects]),
            "timer_keys": _texts([t.key for t in w.timers]),
            "timer_due": [t.due_at for t in w.timers] or None,
            "timer_types": _texts([t.input_type for t in w.timers]),
            "timer_payloads": _texts([t.payload for t in w.timers]),
            "cancel_keys": _texts(list(w.cancel_timers)),
            "input_key": w.input_key,
            "key_status": None if w.key_status is None else w.key_status.value,
            "snapshot_version": w.snapshot.state_version if w.snapshot else None,
            "snapshot_payload": w.snapshot.payload if w.snapshot else None,
            "trace_context": w.trace_context,
            "version": w.version,
            "notify": bool(w.effects or w.timers),
            "channel": self._store.channel,
        }
        if w.terminate:
            self._cur.execute(self._store.q["terminate_instance"], {**self._ids, "now": w.now})
        row = self._cur.execute(self._store.q["write_decision"], params).fetchone()
        assert row is not None
        gen = row[3]
        if w.snapshot is not None and gen is None:
            # A snapshot without an instance write (`snapshots verify --drop`): count it all the same.
            bumped = self._cur.execute(self._store.q["bump_snapshot_gen"], self._ids).fetchone()
            gen = bumped[0] if bumped else None
        if w.continue_run:
            self._cur.execute(self._store.q["continue_run"], {**self._ids, "last_seq": w.last_seq})
        if w.parent is not None:
            link = w.parent
            self._conn.execute(
                self._store.q["link_parent"],
                {
                    **self._ids,
                    "parent_type": link.workflow_type,
                    "parent_id": link.workflow_id,
                    "policy": link.on_parent_close,
                },
            )
        if w.status.closed:
            # Only on the closing decision: the notice to a parent, the parent-close policy of children.
            relations = {**self._ids, "now": w.now, "trace_context": w.trace_context, "channel": self._store.channel}
            self._conn.execute(self._store.q["close_relations"], relations)
        return Written(positions=row[0], effect_ids=row[1], snapshot_gen=gen)
