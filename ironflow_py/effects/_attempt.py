"""One effect attempt and one timer firing: decode, call the handler, feed back, retry or dead-letter.

Runs on the runtime's worker threads. Whatever a handler returns goes through the command handler together with
the fenced "done" mark (one transaction); a lost claim (`LeaseLost`) means another worker owns the row
and this attempt changes nothing.
"""

from __future__ import annotations

import asyncio
import threading
import time
import traceback
from collections.abc import Callable, Coroutine
from datetime import timedelta
from typing import Any

import attrs

from ironflow_py.clock import Clock, store_time
from ironflow_py.composition import RESERVED_ROWS
from ironflow_py.effects._registry import EffectContext, EffectRegistry, Registered, RetryPolicy, idempotency_key
from ironflow_py.effects._relations import deliver
from ironflow_py.errors import (
    CodecError,
    DecodeError,
    InvalidWorkflowId,
    IronflowError,
    LeaseLost,
    NotFound,
    Permanent,
    StoreError,
    UnknownInputType,
    ValueRefused,
)
from ironflow_py.service import Registration, WorkflowService
from ironflow_py.store.base import EffectClaim, Outbox, Settle, SettleKind, TimerClaim
from ironflow_py.values import storable_text

#: Timers are never dropped: a firing that fails is retried (capped backoff) for as long as it takes.
DEFAULT_TIMER_POLICY = RetryPolicy(max_attempts=1_000_000, base_delay=1.0, factor=2.0, max_delay=300.0)


#: Errors from applying a handler's returned input that no retry can cure: the value is refused (by the
#: codec, the id/key checks or the database) or the input belongs to no workflow. The row goes dead now.
_PERMANENT_FEEDBACK = (CodecError, InvalidWorkflowId, ValueRefused, UnknownInputType)


def _describe(exc: BaseException) -> str:
    # Stored in `last_error` (text): an exception message holding NUL must not make the update fail.
    return storable_text(f"{type(exc).__name__}: {exc}")


#: characters of traceback kept on an outbox row: its end, where the failing frame and the exception are
MAX_TRACEBACK = 4000


def bounded_traceback(exc: BaseException | None, limit: int = MAX_TRACEBACK) -> str | None:
    """The formatted traceback of `exc`, cut to its last `limit` characters at a line boundary.

    Args:
        exc: the exception, or None.
        limit: the most characters returned (plus a one-line marker when cut).

    Returns:
        The text, or None when `exc` is None.
    """
    if exc is None:
        return None
    text = "".join(traceback.format_exception(exc))
    if len(text) <= limit:
        return text
    tail = text[-limit:]
    return "... (earlier lines cut)\n" + tail[tail.find("\n") + 1 :]


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


class _LoopThread:
    """One asyncio loop on its own thread, shared by every `async def` handler of a runtime."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="ironflow-async", daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)


@attrs.define
class Attempts:
    """Runs attempts for one worker; holds what every attempt needs."""

    service: WorkflowService
    registry: EffectRegistry
    outbox: Outbox
    clock: Clock
    random: Callable[[], float]
    lease: timedelta
    timer_policy: RetryPolicy
    log: Any
    _loop: _LoopThread | None = None
    _loop_lock: threading.Lock = attrs.field(factory=threading.Lock)

    @property
    def within(self) -> float:
        """Seconds a feedback transaction may take: half the lease, so a worker whose transaction stalled
        (a frozen network) never settles on a lease that has run out meanwhile, and a frozen one holds the
        instance lock no longer than that (design/reliability.md, "Stalls")."""
        return self.lease.total_seconds() / 2

    def close(self) -> None:
        if self._loop is not None:
            self._loop.close()

    def _call(self, entry: Registered, effect: object, ctx: EffectContext) -> Any:
        if not entry.is_async:
            return entry.handler(effect, ctx)
        with self._loop_lock:
            if self._loop is None:
                self._loop = _LoopThread()
        return self._loop.run(entry.handler(effect, ctx))  # type: ignore[arg-type]

    def logged(self, claim: EffectClaim, outcome: str, started: float, **extra: Any) -> None:
        observer = self.service.observer
        observer.effect_finished(claim.workflow_type, claim.effect_type, outcome, time.perf_counter() - started)
        extra.update(observer.current_log_fields())
        level = self.log.info if outcome == "done" else self.log.warning
        level(
            "effect_attempt",
            effect_id=claim.id,
            workflow_type=claim.workflow_type,
            workflow_id=claim.workflow_id,
            effect_type=claim.effect_type,
            attempt=claim.attempt,
            outcome=outcome,
            duration_ms=_ms(started),
            **extra,
        )

    def log_done(self, claim: EffectClaim, started: float, held: bool) -> None:
        """The log line of a handler that returned nothing, once the batched "done" mark is known."""
        self.logged(claim, "done" if held else "lease_lost", started)

    # -- effects ------------------------------------------------------------------------------------------

    def run_effect(self, claim: EffectClaim, claimed_at: float | None = None) -> tuple[EffectClaim, float] | None:
        """Run one attempt. Returns (claim, start time) when the handler returned nothing: the caller marks
        those done in one batched statement. Everything else is settled here.

        `claimed_at` (monotonic seconds, taken before the claim statement was sent) is when the claim began:
        a claim that waited in the prefetch queue for half its lease or more is checked, and extended, with
        a heartbeat before its handler starts; if it was lost meanwhile (a stalled worker whose lease
        expired, the row taken and perhaps finished by another) the handler does not run."""
        if claimed_at is not None and time.monotonic() - claimed_at >= self.lease.total_seconds() / 2:
            started = time.perf_counter()
            if self.outbox.heartbeat(claim, store_time(self.clock), self.lease) is None:
                self.logged(claim, "lease_lost", started, error="the claim expired while it waited in the queue")
                return None
        with self.service.observer.effect_attempt(
            effect_id=claim.id,
            workflow_type=claim.workflow_type,
            workflow_id=claim.workflow_id,
            effect_type=claim.effect_type,
            attempt=claim.attempt,
            due_at=claim.due_at,
            now=self.clock.now(),
            trace_context=claim.trace_context,
        ):
            return self._run_effect(claim)

    def _run_effect(self, claim: EffectClaim) -> tuple[EffectClaim, float] | None:
        if claim.effect_type in RESERVED_ROWS:
            return deliver(self, claim)  # a message, child start or notice: the worker delivers it itself
        started = time.perf_counter()
        try:
            reg = self.service.registration(claim.workflow_type)
            codec = reg.codec_declaring("effects", claim.effect_type)
            effect = codec.decode_effect(claim.effect_type, claim.payload, claim.workflow_id)
        except (NotFound, DecodeError) as exc:
            # A row this code cannot read will not become readable by retrying: dead-letter it now.
            self.dead(claim, None, None, _describe(exc), started, exc)
            return None
        entry = self.registry.lookup(type(effect))
        if entry is None:
            error = f"no handler is registered for effect {type(effect).__qualname__} ({claim.effect_type!r})"
            self.dead(claim, reg, effect, storable_text(error), started)
            return None
        max_attempts = entry.policy.max_attempts
        if claim.attempt > max_attempts:
            # Every claim counted an attempt (claim_effects commits attempts + 1 before the handler runs).
            # Attempt max_attempts ended without settling: its worker died (os._exit, SIGKILL, the OOM
            # killer) or lost its lease. Running the handler again would exceed the policy.
            error = (
                f"worker lost: attempt {claim.attempt - 1} of {max_attempts} ended without settling "
                "(its process died or its lease expired); no attempts left"
            )
            self.dead(claim, reg, effect, error, started)
            return None
        ctx = EffectContext(
            claim.id,
            claim.workflow_type,
            claim.workflow_id,
            claim.attempt,
            idempotency_key(claim.workflow_type, claim.workflow_id, claim.id),
            heartbeat=lambda: self._heartbeat(claim),
        )
        try:
            result = self._call(entry, effect, ctx)
        except Permanent as exc:
            self.dead(claim, reg, effect, _describe(exc), started, exc)
            return None
        except Exception as exc:  # Retryable, or anything unexpected: both retry under the policy
            self.failed(claim, entry.policy, reg, effect, _describe(exc), started, exc)
            return None
        if result is None:
            return claim, started
        settle = Settle(
            SettleKind.EFFECT_DONE, claim.id, self.outbox.worker, claim.token, self.clock.now(), deadline=self.within
        )
        try:
            outcome = self.service.execute(result, settle=settle)
        except LeaseLost:
            self.logged(claim, "lease_lost", started)
        except StoreError:
            raise  # the database is unwell: leave the row to its lease, another attempt will come
        except _PERMANENT_FEEDBACK as exc:
            error = storable_text(f"the returned {type(result).__qualname__} can never be applied: {exc}")
            self.dead(claim, reg, effect, error, started, exc)
        except IronflowError as exc:
            error = storable_text(f"the returned {type(result).__qualname__} could not be applied: {exc}")
            self.failed(claim, entry.policy, reg, effect, error, started, exc)
        else:
            self.logged(claim, "done", started, fed_back=type(result).__name__, decision=outcome.status.value)
        return None

    def _heartbeat(self, claim: EffectClaim) -> Any:
        until = self.outbox.heartbeat(claim, store_time(self.clock), self.lease)
        if until is None:
            raise LeaseLost("effect", claim.id, self.outbox.worker)
        return until

    def failed(
        self,
        claim: EffectClaim,
        policy: RetryPolicy,
        reg: Registration | None,
        effect: object,
        error: str,
        started: float,
        exc: BaseException | None = None,
    ) -> None:
        if policy.exhausted(claim.attempt):
            self.dead(claim, reg, effect, f"gave up after {claim.attempt} attempts: {error}", started, exc)
            return
        delay = policy.delay(claim.attempt, self.random)
        held = self.outbox.retry_effect_later(
            claim, store_time(self.clock), timedelta(seconds=delay), error, bounded_traceback(exc)
        )
        self.logged(
            claim, "retry" if held else "lease_lost", started, error=error, retry_in_s=round(delay, 3), exc_info=exc
        )

    def dead(
        self,
        claim: EffectClaim,
        reg: Registration | None,
        effect: object,
        error: str,
        started: float,
        exc: BaseException | None = None,
    ) -> None:
        now = self.clock.now()
        tb = bounded_traceback(exc)
        input = None
        if reg is not None:
            try:
                workflow = reg.instance_decider(self.service.store, claim.workflow_id).workflow
                input = workflow.dead_letter_input(effect, error)
            except Exception as hook_exc:
                error += f"; dead_letter_input raised {_describe(hook_exc)}"
        held = False
        if input is not None:
            settle = Settle(
                SettleKind.EFFECT_DEAD, claim.id, self.outbox.worker, claim.token, now, error, tb, self.within
            )
            try:
                self.service.execute(input, settle=settle)
                held = True
            except LeaseLost:
                pass
            except StoreError:
                raise
            except IronflowError as input_exc:
                # The compensation itself is broken (bad input, decide raised): record why, still dead.
                error += storable_text(f"; its dead-letter input {type(input).__qualname__} failed: {input_exc}")
                input = None
        if input is None:
            held = self.outbox.mark_dead(claim, now, error, tb)
        self.logged(claim, "dead" if held else "lease_lost", started, error=error, exc_info=exc)

    # -- timers -------------------------------------------------------------------------------------------

    def fire_timer(self, claim: TimerClaim) -> None:
        """Deliver the timer's input to the instance that scheduled it, deleting the timer in the same
        transaction; a cancelled or replaced timer (its id is gone) fires nothing."""
        with self.service.observer.timer_firing(
            timer_id=claim.id,
            workflow_type=claim.workflow_type,
            workflow_id=claim.workflow_id,
            timer_key=claim.key,
            due_at=claim.due_at,
            now=self.clock.now(),
            trace_context=claim.trace_context,
        ) as probe:
            probe.outcome = self._fire_timer(claim)

    def _fire_timer(self, claim: TimerClaim) -> str:
        started = time.perf_counter()
        settle = Settle(
            SettleKind.TIMER_FIRED, claim.id, self.outbox.worker, claim.token, self.clock.now(), deadline=self.within
        )
        context = {
            "timer_id": claim.id,
            "workflow_type": claim.workflow_type,
            "workflow_id": claim.workflow_id,
            "timer_key": claim.key,
            "attempt": claim.attempt,
            **self.service.observer.current_log_fields(),
        }
        try:
            outcome = self.service.fire_timer(
                claim.workflow_type, claim.workflow_id, claim.input_type, claim.payload, settle=settle
            )
        except LeaseLost:
            self.log.info("timer_fired", **context, outcome="skipped", duration_ms=_ms(started))
            return "skipped"
        except StoreError:
            raise
        except IronflowError as exc:
            # Timers are never dropped: a broken one is retried (capped backoff) and its error recorded.
            delay = self.timer_policy.delay(claim.attempt, self.random)
            self.outbox.retry_timer_later(claim, store_time(self.clock), timedelta(seconds=delay), _describe(exc))
            self.log.warning(
                "timer_fired", **context, outcome="retry", error=_describe(exc), duration_ms=_ms(started), exc_info=exc
            )
            return "retry"
        self.log.info("timer_fired", **context, outcome=outcome.status.value, duration_ms=_ms(started))
        return outcome.status.value
