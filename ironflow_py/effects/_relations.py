"""Delivery of the reserved outbox rows: messages, child starts, child-closed notices, parent-close sweeps.

No user handler runs: the worker itself applies each row's input to its target in the target's own
transaction, together with the fenced "done" of the row, under an input key derived from the row
(`delivery_key`), so the input is recorded once however often the row is delivered. No transaction here
locks two instances (design/composition.md).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ironflow_py.clock import store_time
from ironflow_py.composition import (
    CHILD_CLOSED_ROW,
    MESSAGE_ROW,
    PARENT_CLOSED_ROW,
    START_CHILD_ROW,
    START_REJECTED,
    ChildRef,
    ParentLink,
    delivery_key,
)
from ironflow_py.decision import ChildStart, Message
from ironflow_py.errors import (
    ChildConflict,
    CodecError,
    DecodeError,
    InvalidWorkflowId,
    IronflowError,
    LeaseLost,
    NotCancellable,
    NotFound,
    StoreError,
    UnknownInputType,
    ValueRefused,
)
from ironflow_py.lifecycle import RUN_TIMEOUT_TIMER, Failed
from ironflow_py.records import OutcomeStatus
from ironflow_py.store.base import EffectClaim, Settle, SettleKind
from ironflow_py.values import storable_text

if TYPE_CHECKING:
    from ironflow_py.effects._attempt import Attempts
    from ironflow_py.service import Registration

#: A delivery that no retry can cure: the value is refused, the target is unknown, the child id is taken.
_PERMANENT = (CodecError, InvalidWorkflowId, ValueRefused, UnknownInputType, NotFound, ChildConflict)
#: Children handled between two heartbeats of a parent-close sweep's lease.
_SWEEP_HEARTBEAT_EVERY = 100


def deliver(attempts: Attempts, claim: EffectClaim) -> tuple[EffectClaim, float] | None:
    """Deliver one reserved row; returns (claim, start) when it only needs its batched "done" mark."""
    started = time.perf_counter()
    service = attempts.service
    try:
        owner = service.registration(claim.workflow_type)
    except NotFound as exc:
        attempts.dead(claim, None, None, f"{type(exc).__name__}: {exc}", started, exc)
        return None
    max_attempts = attempts.registry.default_policy.max_attempts
    if claim.attempt > max_attempts:
        # As for a handler's effect (`Attempts._run_effect`): every claim counted an attempt, and attempt
        # max_attempts ended without settling (its worker died or lost its lease mid-delivery, perhaps
        # because of this row: a sweep of many children, an input that kills the process). No more.
        error = (
            f"worker lost: attempt {claim.attempt - 1} of {max_attempts} ended without settling "
            "(its process died or its lease expired); no attempts left"
        )
        attempts.dead(claim, owner, _item(attempts, claim), error, started)
        return None
    if claim.effect_type == PARENT_CLOSED_ROW:
        return _sweep(attempts, claim, started)
    payload = claim.payload
    item: object = None
    try:
        if claim.effect_type == CHILD_CLOSED_ROW:
            return _child_closed(attempts, claim, owner, started)
        target = service.registration(payload["to_type"])
        input = target.codec.decode_input(payload["input_type"], payload["input"], payload["to_id"])
        key = delivery_key(claim.workflow_type, claim.workflow_id, claim.id)
        settle = Settle(
            SettleKind.EFFECT_DONE,
            claim.id,
            attempts.outbox.worker,
            claim.token,
            attempts.clock.now(),
            deadline=attempts.within,
        )
        if claim.effect_type == MESSAGE_ROW:
            item = Message(input, payload["to_type"], payload["to_id"])
            outcome = service.execute_on(payload["to_type"], payload["to_id"], input, input_key=key, settle=settle)
        elif claim.effect_type == START_CHILD_ROW:
            item = ChildStart(input, payload["to_id"], payload["on_parent_close"], payload["deadline"])
            parent = ParentLink(claim.workflow_type, claim.workflow_id, payload["on_parent_close"])
            inherited = None
            if payload["deadline"] == "inherit":
                inherited = next(
                    (
                        t.due_at
                        for t in service.store.timers(claim.workflow_type, claim.workflow_id)
                        if t.key == RUN_TIMEOUT_TIMER
                    ),
                    None,
                )
            outcome = service.start_child(
                payload["to_type"],
                payload["to_id"],
                input,
                parent,
                input_key=key,
                inherited_deadline=inherited,
                settle=settle,
            )
            if outcome.status is OutcomeStatus.REJECTED:
                return _start_rejected(attempts, claim, owner, item, outcome.reason, settle, started)
        else:
            raise NotFound(f"reserved row type {claim.effect_type!r} is not known to this version of ironflow_py")
    except LeaseLost:
        attempts.logged(claim, "lease_lost", started)
        return None
    except StoreError:
        raise  # the database is unwell: leave the row to its lease, another attempt will come
    except (*_PERMANENT, DecodeError, KeyError, TypeError) as exc:
        error = storable_text(f"{claim.effect_type} can never be delivered: {type(exc).__name__}: {exc}")
        attempts.dead(claim, owner, item, error, started, exc)
        return None
    except IronflowError as exc:
        error = storable_text(f"{claim.effect_type} could not be delivered: {type(exc).__name__}: {exc}")
        attempts.failed(claim, attempts.registry.default_policy, owner, item, error, started, exc)
        return None
    attempts.logged(claim, "done", started, delivered=claim.effect_type, decision=outcome.status.value)
    return None


def _item(attempts: Attempts, claim: EffectClaim) -> object:
    """The `Message` or `ChildStart` a row carries (what `dead_letter_input` is told), or None."""
    payload = claim.payload
    try:
        if claim.effect_type not in (MESSAGE_ROW, START_CHILD_ROW):
            return None
        target = attempts.service.registration(payload["to_type"])
        input = target.codec.decode_input(payload["input_type"], payload["input"], payload["to_id"])
        if claim.effect_type == MESSAGE_ROW:
            return Message(input, payload["to_type"], payload["to_id"])
        return ChildStart(input, payload["to_id"], payload["on_parent_close"], payload["deadline"])
    except (IronflowError, KeyError, TypeError):
        return None  # undecodable: the dead letter says so through its error anyway


def _start_rejected(
    attempts: Attempts,
    claim: EffectClaim,
    parent: Registration,
    start: object,
    reason: str | None,
    settle: Settle,
    started: float,
) -> tuple[EffectClaim, float] | None:
    """The child rejected its first input, so it was never created and will never close: its parent gets
    `child_closed_input(ref, Failed("start_rejected", reason))`, in the parent's transaction with the start
    row's fenced "done" (nothing was written in the child's). A parent that closed meanwhile answers
    `already_completed`; one whose `child_closed_input` returns None only sees the row done."""
    service = attempts.service
    ref = ChildRef(claim.payload["to_type"], claim.payload["to_id"])
    try:
        input = parent.workflow.child_closed_input(ref, Failed(START_REJECTED, reason))
    except Exception as exc:  # user code: retried under the default policy (the child rejects again), then dead
        error = storable_text(f"child_closed_input raised {type(exc).__name__}: {exc}")
        attempts.failed(claim, attempts.registry.default_policy, parent, start, error, started, exc)
        return None
    if input is None:
        return claim, started
    if type(input) not in parent.codec.inputs:
        raise UnknownInputType(type(input))
    rejected_key = delivery_key(claim.workflow_type, claim.workflow_id, claim.id)
    result = service.execute_on(claim.workflow_type, claim.workflow_id, input, input_key=rejected_key, settle=settle)
    attempts.logged(
        claim, "done", started, delivered=claim.effect_type, decision=f"rejected; parent {result.status.value}"
    )
    return None


def _child_closed(
    attempts: Attempts, claim: EffectClaim, child: Registration, started: float
) -> tuple[EffectClaim, float] | None:
    """A child closed: ask its parent's `child_closed_input` for the input, deliver it once."""
    service, payload = attempts.service, claim.payload
    parent_type, parent_id = payload["parent_type"], payload["parent_id"]
    parent = service.registration(parent_type)
    outcome = child.codec.decode_outcome(payload["outcome"], claim.workflow_id)
    ref = ChildRef(claim.workflow_type, claim.workflow_id)
    try:
        input = parent.instance_decider(service.store, parent_id).workflow.child_closed_input(ref, outcome)
    except Exception as exc:  # user code: retried under the default policy, then dead
        error = storable_text(f"child_closed_input raised {type(exc).__name__}: {exc}")
        attempts.failed(claim, attempts.registry.default_policy, child, None, error, started, exc)
        return None
    if input is None:
        return claim, started
    if not parent.accepts(type(input)):
        raise UnknownInputType(type(input))
    key = delivery_key(claim.workflow_type, claim.workflow_id, claim.id)
    settle = Settle(
        SettleKind.EFFECT_DONE,
        claim.id,
        attempts.outbox.worker,
        claim.token,
        attempts.clock.now(),
        deadline=attempts.within,
    )
    result = service.execute_on(parent_type, parent_id, input, input_key=key, settle=settle)
    attempts.logged(claim, "done", started, delivered=claim.effect_type, decision=result.status.value)
    return None


def _sweep(attempts: Attempts, claim: EffectClaim, started: float) -> tuple[EffectClaim, float] | None:
    """A parent closed: each open child gets its policy; every request is keyed by this row, so a rerun
    after a crash repeats nothing (a repeat is a `duplicate`, a closed child `already_completed`)."""
    service = attempts.service
    info = service.store.instance(claim.workflow_type, claim.workflow_id)
    how = info.status.value if info is not None else "closed"
    reason = f"parent {claim.workflow_type}/{claim.workflow_id} {how}"
    request_id = delivery_key(claim.workflow_type, claim.workflow_id, claim.id)
    applied: dict[str, int] = {}
    children = service.store.children(claim.workflow_type, claim.workflow_id, open_only=True)
    try:
        for n, child in enumerate(children, start=1):
            policy = child.parent_close_policy or "request_cancel"
            try:
                if policy == "terminate":
                    service.terminate(child.workflow_type, child.workflow_id, reason, request_id=request_id)
                elif policy == "request_cancel":
                    service.cancel(child.workflow_type, child.workflow_id, reason, request_id=request_id)
            except NotCancellable:
                # Its workflow has no cancel_input: it keeps running (terminating it could cut an effect
                # short with no compensation). Said once per child, as a warning (design/composition.md).
                policy = "not_cancellable"
                attempts.log.warning(
                    "child_not_cancellable",
                    parent_type=claim.workflow_type,
                    parent_id=claim.workflow_id,
                    child_type=child.workflow_type,
                    child_id=child.workflow_id,
                    why="request_cancel, but its workflow has no cancel_input: it keeps running",
                )
            except (NotFound, InvalidWorkflowId) as exc:
                policy = f"skipped ({type(exc).__name__})"
            applied[policy] = applied.get(policy, 0) + 1
            if (
                n % _SWEEP_HEARTBEAT_EVERY == 0
                and attempts.outbox.heartbeat(claim, store_time(attempts.clock), attempts.lease) is None
            ):
                attempts.logged(claim, "lease_lost", started)
                return None
    except StoreError:
        raise
    except IronflowError as exc:
        error = storable_text(f"{claim.effect_type} could not be applied: {type(exc).__name__}: {exc}")
        attempts.failed(claim, attempts.registry.default_policy, None, None, error, started, exc)
        return None
    attempts.log.info("parent_closed_sweep", parent_type=claim.workflow_type, parent_id=claim.workflow_id, **applied)
    return claim, started
