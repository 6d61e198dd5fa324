"""`EffectRuntime`: the daemon that runs effect handlers and fires timers, on PostgreSQL.

One loop thread claims due rows in batches (timers first, then effects) and hands them to a thread pool;
handlers that return nothing are marked done in one batched, fenced statement. LISTEN/NOTIFY wakes the
loop when a deciding transaction commits; polling every `poll_interval` is the fallback and the source
of truth. See design/effects.md and design/timers.md.
"""

from __future__ import annotations

import os
import queue
import random
import signal
import socket
import threading
import time
import uuid
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta
from types import FrameType
from typing import Any

from ironflow_py._log import get_log
from ironflow_py.clock import store_time
from ironflow_py.composition import RESERVED_ROWS
from ironflow_py.effects._attempt import DEFAULT_TIMER_POLICY, Attempts
from ironflow_py.effects._pruning import PruneLoop
from ironflow_py.effects._registry import EffectRegistry, RetryPolicy
from ironflow_py.effects._wakeup import Listener
from ironflow_py.errors import ConfigurationError, StoreError, StoreStalled
from ironflow_py.retention import RetentionPolicy
from ironflow_py.schedule_workflow import ScheduleWorkflow
from ironflow_py.scheduling._control import with_schedule_handlers
from ironflow_py.service import WorkflowService
from ironflow_py.store.base import EffectClaim, Outbox, TimerClaim
from ironflow_py.store.postgres import PostgresStore

Claim = EffectClaim | TimerClaim

#: Longest sleep, whatever the poll interval, while the database is unreachable or no LISTEN connection
#: is up (listen=False, or the listener is reconnecting): nothing else would wake the loop.
OUTAGE_RETRY = 1.0

#: Default bound on the payload bytes (JSON text) a worker holds claimed, running and queued together.
DEFAULT_PREFETCH_BYTES = 64 * 1024 * 1024


def new_worker_id() -> str:
    """Unique per process start: a restarted worker never mistakes its old claims for its own."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class EffectRuntime:
    """Runs effects and timers until `stop()` (or SIGTERM/SIGINT when `handle_signals`).

    `concurrency` handlers run at once; up to `batch_size` more wait, claimed, in the pool's queue.
    `lease` seconds is how long a claim holds without a heartbeat; `grace` is how long shutdown waits for
    in-flight handlers. `rng` makes retry jitter reproducible. With `registry=None` the runtime runs no
    handler: it fires timers and delivers only the rows the engine delivers itself (messages, child
    starts and notices, parent-close sweeps, schedules' StopRuns), leaving the application's effects to
    workers that have handlers (an empty registry would dead-letter every one of them).

    Every time it compares (due times, leases, retry times) comes from the service's injected `Clock`;
    waits and `grace` are measured on the monotonic clock. Handlers run at least once per effect; pass
    `EffectContext.idempotency_key` downstream (design/effects.md).

    Args:
        service: The service whose PostgreSQL store, clock and workflows the runtime uses.
        registry: The effect handlers; None runs timers and the engine's own rows only.
        concurrency: Handlers running at once, at least 1. The store's pool is grown to `concurrency + 2`
            connections if it is smaller (a handler feeding an input back needs a second connection).
        batch_size: Rows claimed per round, at least 1.
        prefetch_bytes: Most payload bytes (as JSON text) the worker holds claimed, running and queued
            together (default 64 MiB); when nothing is held, one effect of any size is still claimed. None:
            rows alone bound the prefetch. Ten pending 50 MB effects no longer take a worker past 1 GB.
        lease: Seconds a claim holds without a heartbeat, more than 0.
        poll_interval: Longest idle sleep in seconds while LISTEN works and no NOTIFY arrives; without a working
            LISTEN (listen=False, or while it reconnects) the loop polls at least every second.
        grace: Seconds shutdown waits for in-flight handlers before releasing their claims.
        timer_policy: Retry policy of a timer whose input could not be executed.
        rng: Source of retry jitter (default: an unseeded `random.Random`).
        worker_id: Names this worker's claims (default: host:pid:random, unique per process start).
        handle_signals: Install SIGTERM and SIGINT handlers that call `stop()` while `run()` runs.
        listen: Wake on the schema's NOTIFY (a dedicated LISTEN connection); False polls only.
        logger: A structlog-style logger (default: the library's logger).
        retention: Prune finished rows by this policy every `retention.interval` on a thread of its own
            (design/retention.md); None: no pruning.
        projections: Projection names whose checkpoints bound pruning even before they have a row (the
            CLI passes the app's projections; a single string is one name).

    Raises:
        ConfigurationError: The store is not a `PostgresStore`, or a bound above is violated.
    """

    def __init__(
        self,
        service: WorkflowService,
        registry: EffectRegistry | None,
        *,
        concurrency: int = 8,
        batch_size: int = 100,
        lease: float = 60.0,
        poll_interval: float = 1.0,
        grace: float = 30.0,
        timer_policy: RetryPolicy = DEFAULT_TIMER_POLICY,
        rng: random.Random | None = None,
        worker_id: str | None = None,
        handle_signals: bool = True,
        listen: bool = True,
        logger: Any = None,
        prefetch_bytes: int | None = DEFAULT_PREFETCH_BYTES,
        retention: RetentionPolicy | None = None,
        projections: str | Iterable[str] = (),
    ) -> None:
        if not isinstance(service.store, PostgresStore):
            raise ConfigurationError("EffectRuntime runs on a PostgresStore (see design/effects.md)")
        if concurrency < 1 or batch_size < 1 or lease <= 0:
            raise ConfigurationError("EffectRuntime needs concurrency >= 1, batch_size >= 1 and lease > 0")
        if prefetch_bytes is not None and prefetch_bytes < 1:
            raise ConfigurationError(f"EffectRuntime needs prefetch_bytes >= 1 or None, not {prefetch_bytes}")
        self.prefetch_bytes = prefetch_bytes
        self.service = service
        self.store: PostgresStore = service.store
        self.clock = service.clock
        self.concurrency = concurrency
        self.batch_size = batch_size
        self.lease = timedelta(seconds=lease)
        self.poll_interval = poll_interval
        self.grace = grace
        self.handle_signals = handle_signals
        self.listen = listen
        self.worker_id = worker_id or new_worker_id()
        self.log = get_log("effects", logger).bind(worker_id=self.worker_id)
        self._size_pool()
        self.outbox: Outbox = self.store.outbox(self.worker_id, lease=self.lease)
        #: With no handlers (registry None) the worker still claims the rows the engine delivers itself:
        #: messages, child starts and notices, parent-close sweeps, and the schedules' StopRuns.
        self._claim_types = None if registry is not None else (*sorted(RESERVED_ROWS), *ScheduleWorkflow.effects)
        self.attempts = Attempts(
            service,
            with_schedule_handlers(registry or EffectRegistry(), service),
            self.outbox,
            self.clock,
            (rng or random.Random()).random,
            self.lease,
            timer_policy,
            self.log,
        )
        self.listener: Listener | None = None
        #: handlers still running when shutdown gave up on them (their claims were released)
        self.abandoned = 0
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._finished: queue.SimpleQueue[Future[Any]] = queue.SimpleQueue()
        self._inflight: dict[Future[Any], Claim] = {}
        self._executor: ThreadPoolExecutor | None = None
        self.pruning = (
            PruneLoop(self.store, retention, self.clock, projections, self.log) if retention is not None else None
        )
        #: Monotonic time of the first failure of the current outage or stall (None: the database answers).
        self._trouble_since: float | None = None

    def _failed(self, exc: Exception, during: str) -> None:
        """Log a failed store call once per outage or stall, not once per try (later tries at debug)."""
        if self._trouble_since is not None:
            self.log.debug(f"{during}_failed", error=f"{type(exc).__name__}: {exc}")
            return
        self._trouble_since = time.monotonic()
        if isinstance(exc, StoreStalled):
            # The database (or the network, a proxy, a pooler) stopped answering: the statement was cut
            # after its bound. Claims made meanwhile are not acted on; the loop keeps trying.
            self.log.warning("store_stalled", during=during, error=str(exc), lease_s=self.lease.total_seconds())
        else:
            self.log.error(f"{during}_failed", error=f"{type(exc).__name__}: {exc}", exc_info=exc)

    def _answered(self) -> None:
        """A store call succeeded: log the end of an outage or stall once."""
        if self._trouble_since is not None:
            self.log.warning("database_back", outage_ms=round((time.monotonic() - self._trouble_since) * 1000))
            self._trouble_since = None

    def _size_pool(self) -> None:
        """Grow the store's pool to `concurrency + 2` connections if it is smaller.

        A handler may hold a pooled connection of its own while it feeds an input back (`service.execute`
        needs a second one), and the loop claims on another: with fewer connections than handlers plus
        two, every handler can end up holding one while waiting for one more, and the worker stalls until
        the pool's timeout (30 s per attempt). With `concurrency + 2` at least one handler always proceeds.
        Only the maximum grows; the pool opens connections on demand.
        """
        needed = self.concurrency + 2
        pool = self.store.pool
        if pool.max_size < needed:
            self.log.info("pool_resized", max_size=needed, was=pool.max_size, concurrency=self.concurrency)
            pool.resize(pool.min_size, needed)

    # -- control ------------------------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop claiming now; `run()` then finishes in-flight work (up to `grace`), returns. Thread-safe."""
        self._stopping.set()
        self._wake.set()

    def run(self) -> None:
        """Work until stopped. On return every claim this worker still held has been released.

        Declared schedules (`service.schedules`) are reconciled first.

        Raises:
            SchemaNotMigrated: at once, before claiming anything, if the schema needs `ironflow-py migrate`.
            VersionsMissing: at once, before claiming anything, if open instances record a workflow version
                this code has no class for (design/versioning.md).
        """
        self.store.require_migrated()
        # A worker without a version's code could not decide for its instances (timers, fed-back inputs):
        # refuse to start rather than dead-letter their work one row at a time.
        self.service.check_versions()
        restore = self._install_signals()
        self._executor = ThreadPoolExecutor(self.concurrency, thread_name_prefix="ironflow-effect")
        if self.listen:
            conninfo = self.store.pool.conninfo
            assert isinstance(conninfo, str)  # PostgresStore.connect passes a URL, never a callable
            self.listener = Listener(conninfo, self.store.channel, self._wake.set, self.log)
            self.listener.start()
        self.log.info("worker_started", concurrency=self.concurrency, batch_size=self.batch_size)
        if self.service.schedules.declared:
            # Declared schedules start ticking (or replan after a change) when a worker starts; an
            # unchanged one is left alone, so every worker may do this at once (design/schedules.md).
            reconciled = self.service.schedules.reconcile()
            self.log.info("schedules_reconciled", schedules=len(reconciled))
        if self.pruning is not None:
            self.pruning.start()
        try:
            observer = self.service.observer
            while not self._stopping.is_set():
                observer.tick("effects")
                self._wake.clear()
                self._settle_finished()
                observer.worker_load("effects", len(self._inflight), self.concurrency)
                try:
                    claimed = self._claim()
                except StoreError as exc:
                    # The database is away or stalled: keep the process and try again within a second
                    # whatever the poll interval (the pool's reconnect backoff is capped too, see
                    # PostgresStore.connect). One line per outage, not one per try; its end is logged once.
                    self._failed(exc, "claim")
                    self._stopping.wait(min(self.poll_interval, OUTAGE_RETRY))
                    continue
                self._answered()
                if claimed == 0 and self._finished.empty():
                    self._wake.wait(self._idle_timeout())
        finally:
            self._shutdown()
            for signum, handler in restore.items():
                signal.signal(signum, handler)

    def run_once(self) -> int:
        """Claim what is due now, run it to the end, settle it.

        For tests (with a `ManualClock`) and for embedding in a scheduler of your own.

        Returns:
            How many rows (effects and timers) were claimed.

        Raises:
            StoreError: The database could not be reached.
        """
        own = self._executor is None
        if own:
            self._executor = ThreadPoolExecutor(self.concurrency, thread_name_prefix="ironflow-effect")
        try:
            claimed = self._claim()
            while self._inflight:
                self._settle_finished(block=True)
            return claimed
        finally:
            if own:
                assert self._executor is not None
                self._executor.shutdown()
                self._executor = None

    # -- the loop -----------------------------------------------------------------------------------------

    def _claim(self) -> int:
        outstanding = len(self._inflight)
        if outstanding > self.concurrency:
            return 0  # the pool's queue still holds most of a batch; claiming more would only age leases
        room = self.concurrency + self.batch_size - outstanding
        now = store_time(self.clock)  # None: the database's clock judges due-ness and leases
        assert self._executor is not None
        # Submit the timers before claiming effects: if that claim fails, no claimed timer is stranded.
        claimed_at = time.monotonic()  # before the statements: a lease never ends earlier than this + lease
        timers = self.outbox.claim_timers(now, self.lease, min(room, self.batch_size))
        for timer in timers:
            self._submit(self._executor.submit(self.attempts.fire_timer, timer), timer)
        limit = min(room - len(timers), self.batch_size)
        max_bytes = None
        held = 0
        if self.prefetch_bytes is not None:
            # The byte bound: what running and queued claims hold counts against it; an idle worker still
            # takes one effect of any size (always_one), a busy one only what fits.
            held = self._held_bytes()
            max_bytes = self.prefetch_bytes - held
            if max_bytes <= 0:
                limit = 0
        effects = (
            self.outbox.claim_effects(
                now, self.lease, limit, max_bytes, always_one=held == 0, effect_types=self._claim_types
            )
            if limit > 0
            else []
        )
        run_effect = self.attempts.run_effect
        for claim in effects:
            self._submit(self._executor.submit(run_effect, claim, claimed_at), claim)
        return len(timers) + len(effects)

    def _submit(self, future: Future[Any], claim: Claim) -> None:
        self._inflight[future] = claim
        future.add_done_callback(self._on_finished)

    def _on_finished(self, future: Future[Any]) -> None:
        self._finished.put(future)
        self._wake.set()

    def _settle_finished(self, *, block: bool = False) -> list[Claim]:
        """Collect finished attempts, mark the handlers that returned nothing done in one statement.

        `block` waits for at least one attempt to finish. Returns the claims of cancelled (never started)
        attempts, which the caller releases.
        """
        done: list[tuple[EffectClaim, float]] = []
        cancelled: list[Claim] = []
        while True:
            try:
                future = self._finished.get(block=block)
            except queue.Empty:
                break
            block = False
            claim = self._inflight.pop(future)
            if future.cancelled():
                cancelled.append(claim)
                continue
            exc = future.exception()
            if exc is not None:
                # Only infrastructure errors get here (the attempt itself settles user errors); the row
                # keeps its lease and is tried again when it expires.
                self.log.error("attempt_failed", row_id=claim.id, error=f"{type(exc).__name__}: {exc}", exc_info=exc)
            elif (result := future.result()) is not None:
                done.append(result)
        if done:
            try:
                held = self.outbox.complete_effects([c for c, _ in done], store_time(self.clock))
            except StoreError as exc:  # the rows keep their leases; another attempt will come
                self._failed(exc, "complete")
            except Exception as exc:
                self.log.error("complete_failed", effects=len(done), error=f"{type(exc).__name__}: {exc}", exc_info=exc)
            else:
                for claim, started in done:
                    self.attempts.log_done(claim, started, claim.id in held)
        return cancelled

    def _held_bytes(self) -> int:
        return sum(c.size for c in self._inflight.values() if isinstance(c, EffectClaim))

    def _idle_timeout(self) -> float:
        if len(self._inflight) > self.concurrency:
            return self.poll_interval  # no room to claim: only a finishing handler (which wakes us) makes room
        if self.prefetch_bytes is not None and self._inflight and self._held_bytes() >= self.prefetch_bytes:
            return self.poll_interval  # the byte bound is reached: likewise
        # Re-read after every claim round, busy or not: a row that becomes due while handlers run must not
        # wait for them (a finishing handler sets the wake event, so this only ever shortens the wait).
        try:
            due = self.outbox.next_due(store_time(self.clock))
        except StoreError as exc:
            self._failed(exc, "poll")
            return min(self.poll_interval, OUTAGE_RETRY)
        except Exception as exc:
            self.log.error("poll_failed", error=f"{type(exc).__name__}: {exc}", exc_info=exc)
            return self.poll_interval
        # Without a working LISTEN a row written while we sleep is only seen by polling: poll at least
        # every second then, whatever poll_interval says (poll_interval is the safety net behind NOTIFY).
        listening = self.listener is not None and self.listener.ready.is_set()
        longest = self.poll_interval if listening else min(self.poll_interval, OUTAGE_RETRY)
        if due is None:
            return longest
        # The floor: a due row that another worker is claiming right now must not make this loop spin.
        return min(longest, max(0.01, due))

    # -- shutdown -----------------------------------------------------------------------------------------

    def _shutdown(self) -> None:
        started = time.monotonic()
        self.log.info("worker_stopping", in_flight=len(self._inflight), grace_s=self.grace)
        for future in list(self._inflight):
            future.cancel()  # succeeds only for attempts that have not started
        # Hand back what will never start right away, so other workers take it during our grace period.
        released = self._release(self._settle_finished())
        deadline = started + self.grace
        while self._inflight and (remaining := deadline - time.monotonic()) > 0:
            self._wake.wait(remaining)
            self._wake.clear()
            self._settle_finished()
        self.abandoned = len(self._inflight)
        released += self._release(list(self._inflight.values()))
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
        if self.listener is not None:
            self.listener.stop()
        if self.pruning is not None:
            self.pruning.stop()
        self.attempts.close()
        self.log.info(
            "worker_stopped",
            released=released,
            abandoned=self.abandoned,
            duration_ms=round((time.monotonic() - started) * 1000, 3),
        )

    def _release(self, claims: list[Claim]) -> int:
        if not claims:
            return 0
        effects = [c for c in claims if isinstance(c, EffectClaim)]
        timers = [c for c in claims if isinstance(c, TimerClaim)]
        now = store_time(self.clock)
        try:
            return len(self.outbox.release_effects(effects, now)) + len(self.outbox.release_timers(timers, now))
        except Exception as exc:  # the leases will expire instead
            self.log.error("release_failed", claims=len(claims), error=f"{type(exc).__name__}: {exc}", exc_info=exc)
            return 0

    def _install_signals(self) -> dict[int, Any]:
        if not self.handle_signals or threading.current_thread() is not threading.main_thread():
            return {}

        def on_signal(signum: int, frame: FrameType | None) -> None:
            if self._stopping.is_set():
                os._exit(128 + signum)  # a second signal: leave at once, leases will expire
            self.stop()

        return {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
