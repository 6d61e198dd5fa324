"""`ProjectionWorker`: the daemon that feeds projections, catching up in batches, then tailing live events.

It wakes on the NOTIFY every event append sends (polling as a fallback), holds one lease per projection it
leads (a row with a fencing generation, renewed as it works; a second copy waits as a standby and takes
over when the lease ends), retries a failing batch with backoff, and on `stop()` (SIGTERM in the CLI)
finishes the batch in hand, ends its leases and returns.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any, TypeVar

import attrs
import psycopg
import psycopg.errors
from psycopg.types.json import set_json_loads

from ironflow_py._log import get_log
from ironflow_py.errors import (
    ConfigurationError,
    MigrationError,
    ProjectionError,
    ProjectionHandlerFailed,
    StoreError,
    StoreStalled,
)
from ironflow_py.projections._batch import BatchResult, HandlerFailure, LeadLost, Track, run_batch
from ironflow_py.projections._control import ProjectionControl, rebuild_on
from ironflow_py.projections._projection import OnError, Projection
from ironflow_py.service import WorkflowService
from ironflow_py.store._watchdog import GuardedConnection, StalledStatement
from ironflow_py.store.postgres import PostgresStore, configure_session, json_loads
from ironflow_py.store.postgres_listen import (
    LISTEN_UNAVAILABLE,
    connect_session,
    listen,
    pool_conninfo,
    self_test,
    unavailable_fields,
)
from ironflow_py.store.postgres_projections import PostgresProjections, applied_channel, events_channel
from ironflow_py.values import storable_text

T = TypeVar("T")

#: Longest uninterrupted wait, so `stop()` from a signal handler is noticed promptly.
_WAIT_SLICE = 0.25
#: Longest sleep between rounds when LISTEN does not work (the self-test failed): polling takes its place.
_POLL_WITHOUT_LISTEN = 1.0
#: The worker's JSON loader is the store's: orjson when installed (2 µs less per event of a catch-up than
#: the stdlib decoder), the stdlib for a payload with a run of 19 digits, so integers stay exact and the
#: result never depends on which parser ran (design/codec.md).
_loads = json_loads


@attrs.frozen
class ProjectionRetry:
    """Backoff for a failing projection batch, and what happens once one event keeps failing.

    After failure n (1-based) the next try waits `initial * 2 ** (n - 1)` seconds, capped at `maximum`;
    after `max_attempts` failures on one event, `on_error` decides (stop the worker, or dead-letter the
    event and move on).

    Attributes:
        max_attempts: Failures on one event before `on_error` applies.
        initial: Seconds of the first wait.
        maximum: Cap on one wait, in seconds.
        on_error: `OnError.STOP` (raise `ProjectionHandlerFailed`) or `OnError.DEAD_LETTER`.
    """

    max_attempts: int = 5
    initial: float = 0.1
    maximum: float = 30.0
    on_error: OnError = OnError.STOP

    def delay(self, attempt: int) -> float:
        """How long to wait after failure number `attempt`.

        Args:
            attempt: The 1-based number of the failure.

        Returns:
            The delay in seconds (monotonic clock).
        """
        return float(min(self.maximum, self.initial * 2 ** max(0, attempt - 1)))


class _EventDecoder:
    """The batch loop's decoder: structure hooks cached per (workflow type, stored name).

    The cache is filled by `slow`, which goes through the workflow's codec so any failure is its typed
    error naming the event. An old name that is upcast is never cached: its payload must go through the
    upcasters every time, so it always takes `slow`.
    """

    def __init__(self, service: WorkflowService) -> None:
        self.service = service
        self.hooks: dict[tuple[str, str], tuple[type, Callable[[Any, type], Any]]] = {}

    def slow(self, workflow_type: str, type_name: str, data: Any, workflow_id: str, seq: int) -> Any:
        # NotFound: a handler failure. A name only another version declares is read with that version's codec.
        codec = self.service.registration(workflow_type).codec_declaring("events", type_name)
        event = codec.decode_event(type_name, data, workflow_id, seq)
        if type_name in codec.upcasters:
            return event
        cls = type(event)
        self.hooks[(workflow_type, type_name)] = (cls, self.service.converter.get_structure_hook(cls))
        return event

    def is_upcast(self, workflow_type: str, type_name: str) -> bool:
        """Whether `type_name` is an old name the workflow's upcasters read."""
        return type_name in self.service.registration(workflow_type).codec.upcasters

    def name_of(self, workflow_type: str, event: Any) -> str | None:
        """The declared name of an upcast event's class."""
        return self.service.registration(workflow_type).codec.events.name_of(type(event))


@attrs.define
class _Failing:
    position: int
    attempts: int
    retry_at: float
    error: ProjectionHandlerFailed


class ProjectionWorker:
    """The daemon that feeds projections: catches up in batches, then tails live events (design/projections.md).

    Each batch is one transaction on the worker's own connection: read past the checkpoint, check each
    instance's order, call the handler, move the checkpoint. One lease per projection makes this worker its
    only active worker; a second copy waits as a standby and takes over once the lease ends by the database
    clock (the leader renews it every `lease / 3` seconds while it runs). Every take-over bumps the lease's
    fencing generation and every batch checks it, so a leader that was frozen past its lease cannot commit
    anything afterwards: it logs `projection_lead_lost` and becomes a standby (design/projections.md).

    Args:
        service: Supplies the PostgreSQL store and the codecs that decode events.
        projections: The projections to run; names must be unique.
        batch_size: Events per transaction, at least 1.
        poll_interval: Seconds between polls when no NOTIFY arrives (monotonic clock).
        standby_interval: Seconds between tries to take the lead of a projection another worker holds.
        lease: Seconds a lead lasts unless renewed (judged by the database clock); a frozen leader is
            replaced within about `lease + standby_interval`. Longer than the slowest batch you expect: a
            batch that outlasts it may be fenced out and rolled back when a standby takes over meanwhile.
        retry: Backoff and failure policy (default: `ProjectionRetry()`).
        worker_id: Names this worker in logs and `application_name` (default: host:pid).
        logger: A structlog-style logger (default: `structlog.get_logger("ironflow_py")`).

    Raises:
        ConfigurationError: The store is not a `PostgresStore`, names repeat, `batch_size` < 1, `lease` is
            not positive, or a projection filters on a workflow type or event class no registered workflow declares.
    """

    def __init__(
        self,
        service: WorkflowService,
        projections: Sequence[Projection],
        *,
        batch_size: int = 1000,
        poll_interval: float = 5.0,
        standby_interval: float = 1.0,
        lease: float = 10.0,
        retry: ProjectionRetry | None = None,
        worker_id: str | None = None,
        logger: Any = None,
    ) -> None:
        if not isinstance(service.store, PostgresStore):
            raise ConfigurationError("projection workers need a PostgresStore")
        names = [p.name for p in projections]
        if len(set(names)) != len(names):
            raise ConfigurationError(f"projection names must be unique, got {names}")
        if batch_size < 1:
            raise ConfigurationError("batch_size must be at least 1")
        if not lease > 0:
            raise ConfigurationError(f"lease must be positive seconds, got {lease!r}")
        self.service = service
        self.store: PostgresStore = service.store
        self.control = ProjectionControl(self.store)
        self._sql = PostgresProjections(self.store)
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.standby_interval = standby_interval
        self.lease = float(lease)
        self.retry = retry or ProjectionRetry()
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}"
        self._log = get_log("projections", logger).bind(worker_id=self.worker_id)
        #: Names this worker in the lease rows; the token tells apart two workers given the same worker_id.
        self.holder = f"{self.worker_id} {uuid.uuid4().hex[:8]}"
        #: When the leases are renewed next (monotonic clock).
        self._renew_at = 0.0
        self._tracks = {p.name: Track(p, self._wanted(p)) for p in projections}
        self._leading: set[str] = set()
        self._failing: dict[str, _Failing] = {}
        #: Projections stopped on an event (policy `stop`, or a gap); the others keep running.
        self._stopped: dict[str, ProjectionError] = {}
        self._conn: psycopg.Connection[Any] | None = None
        self._stop = threading.Event()
        self._held_back_delay = 0.0
        #: Whether this worker's LISTEN receives (None: not tested yet; False: it polls instead).
        self._listen_works: bool | None = None
        self._applied = applied_channel(self.store.schema)
        self._decoder = _EventDecoder(service)
        #: Monotonic time of the first failure of the current outage or stall (None: the database answers).
        self._trouble_since: float | None = None

    def _wanted(self, projection: Projection) -> frozenset[tuple[str, str]] | None:
        """The (workflow type, stored event name) pairs of the projection's event classes."""
        unknown = sorted((projection.workflow_types or frozenset()) - set(self.service.workflow_types))
        if unknown:
            raise ConfigurationError(f"projection {projection.name!r}: workflow types {unknown} are not registered")
        if projection.event_classes is None:
            return None
        pairs = set()
        for cls in projection.event_classes:
            found = False
            for wtype in self.service.workflow_types:
                reg = self.service.registration(wtype)
                codec = next((d.codec for d in reg.versions.values() if cls in d.codec.events), reg.codec)
                name = codec.events.name_of(cls)
                if name is not None:
                    pairs.add((wtype, name))
                    found = True
                    # Old names that may upcast to it are read too; the batch drops those that upcast to
                    # a class the projection does not want (a bare upcaster's target is known only then).
                    for old in codec.upcasters.names():
                        targets = codec.upcasters.targets(old)
                        if targets is None or name in targets:
                            pairs.add((wtype, old))
            if not found:
                raise ConfigurationError(
                    f"projection {projection.name!r}: no registered workflow declares event {cls.__qualname__}"
                )
        return frozenset(pairs)

    # -- connection and leadership ----------------------------------------------------------------------

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is not None and not self._conn.closed:
            return self._conn
        # The leases outlive a connection (they are rows, not session locks); the caches start afresh.
        for track in self._tracks.values():
            track.forget()
        conninfo, channel = pool_conninfo(self.store), events_channel(self.store.schema)
        kwargs: dict[str, Any] = {
            "application_name": f"ironflow_py.projections {self.worker_id}"[:63],
            "prepare_threshold": self.store.prepare_threshold,
            "connection_class": GuardedConnection,
        }
        conn = connect_session(conninfo, **kwargs)
        self._conn = conn  # set first: a failure below closes it through _drop_connection
        # Every wait for the server on this connection ends within the lease (or stall_timeout if shorter):
        # a leader whose network froze notices, drops the connection and, once it can reach the database
        # again, finds out whether it still leads (design/reliability.md, "Stalls").
        self.store.guard(conn, self.store.bound(self.lease))
        if self._listen_works is not False:  # known not to receive: no LISTEN (it would be session state)
            listen(conn, channel)
        if self._listen_works is None:
            self._listen_works = self_test(conn, conninfo, channel, prepare_threshold=self.store.prepare_threshold)
            if not self._listen_works:
                self._log.warning(
                    LISTEN_UNAVAILABLE,
                    listener="projections",
                    fallback=f"polling at least every {_POLL_WITHOUT_LISTEN:g} s",
                    **unavailable_fields(conninfo, channel),
                )
        set_json_loads(_loads, conn)
        configure_session(conn)
        for name in self._tracks:
            self._sql.ensure(conn, name)
        return conn

    def _try_lead(self, conn: psycopg.Connection[Any]) -> None:
        """Renew the leases held (when due), then take each free one."""
        self._renew(conn)
        for name, track in self._tracks.items():
            if name in self._leading:
                continue
            fence = self._sql.try_lead(conn, name, self.holder, self.lease)
            if fence is None:
                continue
            if not self._leading:
                self._renew_at = time.monotonic() + self.lease / 3
            self._leading.add(name)
            track.forget()
            track.fence = fence
            self._log.info("projection_leading", projection=name, fence=fence, lease_s=self.lease)
            if not track.projection.durable and not rebuild_on(conn, self._sql, track.projection, fence):
                self._lose(name, "taken over before its rebuild")

    def _renew(self, conn: psycopg.Connection[Any]) -> None:
        """Extend every held lease, every `lease / 3` seconds; a lease another worker took is given up."""
        if not self._leading or time.monotonic() < self._renew_at:
            return
        self._renew_at = time.monotonic() + self.lease / 3
        for name in sorted(self._leading):
            fence = self._tracks[name].fence
            if fence is None or not self._sql.renew(conn, name, fence, self.lease):
                self._lose(name, "taken over while this worker did not renew its lease")

    def _lose(self, name: str, reason: str) -> None:
        """Step down from `name`: another worker holds a newer fence. Nothing of ours committed after it."""
        track = self._tracks[name]
        self._log.warning(
            "projection_lead_lost",
            projection=name,
            fence=track.fence,
            reason=reason,
            lease_s=self.lease,
            hint="this worker was frozen (or a batch outlasted the lease) and a standby took over; it is a standby now",
        )
        self._leading.discard(name)
        self._failing.pop(name, None)
        track.forget()
        track.fence = None

    @property
    def leading(self) -> frozenset[str]:
        """The names of the projections this worker is the active worker for."""
        return frozenset(self._leading)

    @property
    def failing(self) -> dict[str, ProjectionHandlerFailed]:
        """Projections whose last batch failed and waits for a retry, by name, with the error."""
        return {name: f.error for name, f in self._failing.items()}

    @property
    def stopped(self) -> dict[str, ProjectionError]:
        """Projections this worker stopped, with the error; the others keep running.

        A projection stops when its handler failed `max_attempts` times under `OnError.STOP`, or on a gap.
        It stays stopped until the worker restarts.
        """
        return dict(self._stopped)

    # -- running ----------------------------------------------------------------------------------------

    def prepare(self) -> frozenset[str]:
        """Connect, LISTEN and take the lead of each projection whose lead is free.

        Returns:
            The names of the projections this worker leads.

        Raises:
            MigrationError: The schema lacks the projection tables (run `ironflow-py migrate`).
            StoreStalled: The database gave no answer within the lease (or `stall_timeout`); the
                connection was cut and the next call reconnects.
            StoreError: The database could not be reached; the next call reconnects.
        """
        self._guarded(lambda: self._try_lead(self._connection()))
        return self.leading

    def run_once(self) -> int:
        """One round: take the lead where free, then apply batches until each led projection is caught up.

        A projection whose batch fails waits for its retry (see `failing`); the round goes on with the
        others.

        Returns:
            The number of events handed to handlers.

        Raises:
            ProjectionGap: An instance's events arrived out of order; nothing of that batch was applied.
            ProjectionHandlerFailed: A handler failed `max_attempts` times under `OnError.STOP`.
            MigrationError: The schema lacks the projection tables.
            StoreStalled: The database gave no answer within the lease (or `stall_timeout`); the
                connection was cut and the next call reconnects.
            StoreError: The database failed; the next call reconnects.
        """

        def round_() -> int:
            conn = self._connection()
            self._try_lead(conn)
            total, first = 0, None
            for name in sorted(self._leading):
                if name in self._stopped:
                    continue
                try:
                    total += self._drain(conn, name)
                except ProjectionError as exc:
                    # Only this projection stops; the round goes on with the others (class 6).
                    self._stop_projection(conn, name, exc)
                    first = first or exc
            if first is not None:
                raise first
            return total

        return self._guarded(round_)

    def _stop_projection(self, conn: psycopg.Connection[Any], name: str, exc: ProjectionError) -> None:
        """Stop `name` alone and record why in its checkpoint row, for `projections status`."""
        self._stopped[name] = exc
        self._log.error("projection_stopped", projection=name, error=str(exc), exc_info=exc)
        position = getattr(exc, "position", None)
        fence = self._tracks[name].fence
        try:
            if fence is not None:
                self._sql.failed(conn, name, position, storable_text(str(exc)), fence)
        except psycopg.Error as record_exc:  # the record is for people; the stop itself already happened
            self._log.warning("projection_failure_not_recorded", projection=name, error=str(record_exc))

    def _guarded(self, work: Callable[[], T]) -> T:
        """Run `work`, translating driver errors; the connection is dropped so the next call reconnects."""
        try:
            return work()
        except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedFunction) as exc:
            self._drop_connection()
            raise MigrationError(
                f"schema {self.store.schema!r} lacks the projection tables; run `ironflow-py migrate`: {exc}"
            ) from exc
        except StalledStatement as exc:
            self._drop_connection()
            raise StoreStalled(str(exc)) from exc
        except psycopg.Error as exc:
            self._drop_connection()
            raise StoreError(f"{type(exc).__name__}: {exc}") from exc

    def _drain(self, conn: psycopg.Connection[Any], name: str) -> int:
        track = self._tracks[name]
        failing = self._failing.get(name)
        if failing is not None and time.monotonic() < failing.retry_at:
            return 0
        handled = 0
        while not self._stop.is_set():
            self._renew(conn)  # a long catch-up keeps its lease
            if name not in self._leading:
                return handled
            # After a batch handler failed on several events, run them one per batch to find the one at fault.
            limit = 1 if track.narrow else self.batch_size
            try:
                with self.service.observer.projection_batch(name) as probe:
                    result = run_batch(
                        conn, self._sql, track, self._decoder, limit, self._applied, int(self.lease * 1000)
                    )
                    probe.outcome, probe.replayed = ("committed" if result.read else "empty"), result.handled
            except HandlerFailure as failure:
                if failure.narrow:
                    track.narrow = failure.narrow
                    self._log.info("projection_batch_narrowed", projection=name, events=failure.narrow)
                    continue
                self._on_failure(track, failure)
                return handled
            except LeadLost:
                self._lose(name, "fenced out: another worker took over (the batch was rolled back)")
                return handled
            if result.read:
                self._failing.pop(name, None)
                track.narrow = max(0, track.narrow - result.read)
            handled += result.handled
            self._log_batch(name, result)
            if result.read < limit:
                break
        return handled

    def _on_failure(self, track: Track, failure: HandlerFailure) -> None:
        name, row = track.projection.name, failure.row
        previous = self._failing.get(name)
        attempts = previous.attempts + 1 if previous and previous.position == row.position else 1
        error = ProjectionHandlerFailed(
            f"{type(failure.cause).__name__}: {failure.cause}",
            projection=name,
            workflow_type=row.workflow_type,
            workflow_id=row.workflow_id,
            seq=row.seq,
            position=row.position,
            attempts=attempts,
        )
        self._log.warning(
            "projection_batch_failed",
            projection=name,
            workflow_type=row.workflow_type,
            workflow_id=row.workflow_id,
            seq=row.seq,
            position=row.position,
            attempt=attempts,
            error=str(failure),
            exc_info=failure.cause,
        )
        if attempts >= self.retry.max_attempts:
            self._failing.pop(name, None)
            if self.retry.on_error is OnError.STOP:
                raise error from failure.cause
            track.dead[row.position] = (str(failure), attempts)
            return
        retry_at = time.monotonic() + self.retry.delay(attempts)
        self._failing[name] = _Failing(row.position, attempts, retry_at, error)

    def _log_batch(self, name: str, result: BatchResult) -> None:
        if result.read:
            self._log.debug(
                "projection_batch",
                projection=name,
                read=result.read,
                handled=result.handled,
                dead_lettered=result.dead_lettered,
                duration_ms=round(result.seconds * 1000, 3),
                outcome="committed",
            )

    def run_until_idle(self) -> int:
        """Run rounds until nothing is left to read or every remaining projection waits for a retry.

        Returns:
            The number of events handed to handlers in all.

        Raises:
            ProjectionGap: As in `run_once`.
            ProjectionHandlerFailed: As in `run_once`.
            MigrationError: As in `run_once`.
            StoreError: As in `run_once`.
        """
        total = 0
        while True:
            handled = self.run_once()
            total += handled
            if handled == 0:
                return total

    def run(self, *, handle_signals: bool = False) -> None:
        """The daemon loop: run rounds, then sleep until a NOTIFY, a retry, a standby check or `stop()`.

        Returns after `stop()` (or SIGTERM/SIGINT with `handle_signals`) once the batch in hand is
        committed; the leases are ended (a standby takes over at once) and the connection is closed. Store
        outages are logged and retried with backoff.

        Args:
            handle_signals: Install SIGTERM and SIGINT handlers that call `stop()` (main thread only).

        Raises:
            ProjectionGap: An instance's events arrived out of order.
            ProjectionHandlerFailed: A handler failed `max_attempts` times under `OnError.STOP`.
            MigrationError: The schema lacks the projection tables.
        """
        if handle_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, self._on_signal)
        self._log.info("projection_worker_started", projections=sorted(self._tracks))
        reconnect_delay = 0.0
        try:
            while not self._stop.is_set():
                self.service.observer.tick("projections")
                try:
                    self.run_once()
                    reconnect_delay = 0.0
                except MigrationError:
                    raise
                except ProjectionError:
                    if len(self._stopped) == len(self._tracks):
                        raise  # nothing left to run: the process exits with the error
                    # Others keep running; this one is stopped and shown in `projections status`.
                except StoreError as exc:
                    reconnect_delay = min(self.poll_interval, max(0.1, reconnect_delay * 2))
                    self._failed(exc, reconnect_delay)
                    self._stop.wait(reconnect_delay)
                    continue
                if self._trouble_since is not None:
                    outage_ms = round((time.monotonic() - self._trouble_since) * 1000)
                    self._log.warning("database_back", outage_ms=outage_ms)
                    self._trouble_since = None
                self._wait()
        finally:
            self.close()
            self._log.info("projection_worker_stopped")

    def _failed(self, exc: StoreError, retry_in: float) -> None:
        """Log a failed round once per outage or stall, not once per try (later tries at debug)."""
        if self._trouble_since is not None:
            self._log.debug("projection_store_error", error=str(exc), retry_in=retry_in)
            return
        self._trouble_since = time.monotonic()
        if isinstance(exc, StoreStalled):
            # The database (or the network, a proxy, a pooler) stopped answering; the connection was cut.
            # A lead this worker held may be taken over meanwhile: it finds out when it can renew again.
            self._log.warning("store_stalled", error=str(exc), leading=sorted(self._leading), lease_s=self.lease)
        else:
            self._log.warning("projection_store_error", error=str(exc), retry_in=retry_in)

    def _wait(self) -> None:
        """Sleep until an append is notified, a retry is due, a standby check is due, or stop().

        While events follow a led projection's checkpoint (behind the horizon, or just released by it), wake
        soon (10 ms doubling to 1 s): the transaction holding the horizon may end without any NOTIFY.
        """
        timeout = self.poll_interval
        if self._listen_works is False:
            timeout = min(timeout, _POLL_WITHOUT_LISTEN)
        if self._leading:  # wake to renew the leases in time
            timeout = min(timeout, max(0.0, self._renew_at - time.monotonic()))
        if len(self._leading) < len(self._tracks):
            timeout = min(timeout, self.standby_interval)
        now = time.monotonic()
        for failing in self._failing.values():
            timeout = min(timeout, max(0.0, failing.retry_at - now))
        conn = self._conn
        if conn is None:
            return
        try:
            # Projections waiting for a retry are left out: their retry time already bounds the sleep.
            behind = [name for name in self._leading if name not in self._failing and name not in self._stopped]
            if behind and self._held_back(conn, behind):
                self._held_back_delay = min(1.0, max(0.01, self._held_back_delay * 2))
                timeout = min(timeout, self._held_back_delay)
            else:
                self._held_back_delay = 0.0
            deadline = now + timeout
            while not self._stop.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                if list(conn.notifies(timeout=min(remaining, _WAIT_SLICE), stop_after=1)):
                    # Drain what queued up meanwhile: one read covers all of it.
                    for _ in conn.notifies(timeout=0):
                        pass
                    return
        except StalledStatement as exc:
            self._drop_connection()
            self._failed(StoreStalled(str(exc)), 0.0)
        except psycopg.Error as exc:
            self._log.warning("projection_listen_failed", error=str(exc))
            self._drop_connection()

    def _held_back(self, conn: psycopg.Connection[Any], names: list[str]) -> bool:
        return self._sql.held_back(conn, names)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stop()

    def stop(self) -> None:
        """Ask `run()` to return after the batch in hand; safe from signal handlers and other threads."""
        self._stop.set()

    def wait_until_caught_up(self, name: str, position: int, timeout: float) -> bool:
        """Block until projection `name` has handled the event at `position`, or `timeout` passes.

        Args:
            name: The projection's name.
            position: An event's global position (`Outcome.events[i].position`).
            timeout: The longest wait, in seconds (monotonic clock).

        Returns:
            True once the event is handled, False if `timeout` passed first.

        Raises:
            NotFound: No committed event has that position.
            StoreError: The database could not be reached, or the LISTEN connection failed.
        """
        return self.control.wait_until_caught_up(name, position, timeout)

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                conn.close()

    def close(self) -> None:
        """End the leases this worker holds (a standby can take over at once) and close the connection.

        Best effort: when the database cannot be reached the leases simply run out.
        """
        for name in sorted(self._leading):
            fence = self._tracks[name].fence
            if fence is None:
                continue
            try:
                if self._conn is not None and not self._conn.closed:
                    self._sql.release(self._conn, name, fence)
                else:
                    with self.store.connection() as conn:
                        self._sql.release(conn, name, fence)
            except (psycopg.Error, StoreError) as exc:
                self._log.warning("projection_lease_not_released", projection=name, error=str(exc))
            self._tracks[name].fence = None
        self._leading.clear()
        self._drop_connection()
