"""What a service writes to make effects happen: handlers in a registry, their context and retry policy.

Plain data and plain functions: the runtime (`ironflow_py.effects._runtime`) does the claiming, the I/O and the
clock. A handler receives the effect and an `EffectContext`, and returns an input for some workflow (fed
back through the command handler in the transaction that marks the effect done) or None.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

import attrs

from ironflow_py.errors import ConfigurationError

F = TypeVar("F")
HandlerResult = object | None
Handler = Callable[[Any, "EffectContext"], HandlerResult | Awaitable[HandlerResult]]
H = TypeVar("H", bound=Callable[..., Any])


@attrs.frozen
class RetryPolicy:
    """How often and how late a failing effect is tried again, before it is dead-lettered.

    After failed attempt n (1-based) the next attempt waits up to `min(max_delay, base_delay * factor **
    (n - 1))` seconds: a uniformly random part of it with full jitter (the default, which spreads a burst of
    failures out), all of it without. After `max_attempts` failed attempts the effect is dead.
    """

    max_attempts: int = 10
    base_delay: float = 1.0
    factor: float = 2.0
    max_delay: float = 300.0
    jitter: bool = True

    def __attrs_post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ConfigurationError("RetryPolicy.max_attempts must be at least 1")
        if self.base_delay < 0 or self.max_delay < 0 or self.factor < 1:
            raise ConfigurationError("RetryPolicy needs base_delay >= 0, max_delay >= 0 and factor >= 1")

    def exhausted(self, attempt: int) -> bool:
        """True when failed attempt number `attempt` was the last one allowed."""
        return attempt >= self.max_attempts

    def delay(self, attempt: int, random: Callable[[], float]) -> float:
        """Seconds to wait after failed attempt `attempt`; `random` returns a float in [0, 1)."""
        try:
            cap = min(self.max_delay, self.base_delay * self.factor ** (attempt - 1))
        except OverflowError:
            cap = self.max_delay
        return cap * random() if self.jitter else cap


@attrs.frozen
class EffectContext:
    """What a handler knows about the attempt it is running.

    `idempotency_key` is the same on every attempt of one effect (pass it to the service you call so a
    retried request is not applied twice). `heartbeat()` extends this worker's lease for a long handler and
    returns the new lease end; it raises `LeaseLost` if another worker has taken the effect over.
    """

    effect_id: int
    workflow_type: str
    workflow_id: str
    attempt: int
    idempotency_key: str
    _heartbeat: Callable[[], datetime] = attrs.field(repr=False, alias="heartbeat")

    def heartbeat(self) -> datetime:
        return self._heartbeat()


def idempotency_key(workflow_type: str, workflow_id: str, effect_id: int) -> str:
    """Stable across retries and worker restarts: derived only from the outbox row's identity."""
    return f"{workflow_type}/{workflow_id}/effect-{effect_id}"


@attrs.frozen
class Registered:
    """One effect class's handler, whether it is a coroutine function, and its retry policy."""

    handler: Handler
    is_async: bool
    policy: RetryPolicy


class EffectRegistry:
    """Maps effect classes to their handlers. An object you pass around, never process-global state.

    Register with `registry.register(SendReceipt, send_receipt)` or the decorator form
    `@registry.handler(SendReceipt, policy=RetryPolicy(max_attempts=3))`.
    """

    def __init__(self, *, default_policy: RetryPolicy | None = None) -> None:
        self.default_policy = default_policy or RetryPolicy()
        self._handlers: dict[type, Registered] = {}

    def register(self, effect_class: type, handler: Handler, *, policy: RetryPolicy | None = None) -> None:
        if not isinstance(effect_class, type):
            raise ConfigurationError(f"register expects an effect class, got {effect_class!r}")
        if effect_class in self._handlers:
            raise ConfigurationError(f"effect {effect_class.__qualname__} already has a handler")
        if not callable(handler):
            raise ConfigurationError(f"the handler for {effect_class.__qualname__} is not callable")
        self._handlers[effect_class] = Registered(
            handler, inspect.iscoroutinefunction(handler), policy or self.default_policy
        )

    def handler(self, effect_class: type, *, policy: RetryPolicy | None = None) -> Callable[[H], H]:
        """Decorator form of `register`; returns the function unchanged."""

        def decorate(fn: H) -> H:
            self.register(effect_class, fn, policy=policy)
            return fn

        return decorate

    def lookup(self, effect_class: type) -> Registered | None:
        return self._handlers.get(effect_class)

    def __contains__(self, effect_class: object) -> bool:
        return effect_class in self._handlers
