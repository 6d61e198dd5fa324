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
    failures out), all of it without. After `max_attempts` failed attempts the effect is dead. "Full
    jitter" is the scheme of Marc Brooker's "Exponential Backoff And Jitter" (AWS Architecture Blog, 2015).

    Attributes:
        max_attempts: Attempts allowed in all, at least 1.
        base_delay: Seconds of the first wait, at least 0.
        factor: Growth of the wait per failed attempt, at least 1.
        max_delay: Cap on one wait, in seconds, at least 0.
        jitter: Wait a uniformly random part of the computed delay (full jitter) instead of all of it.

    Raises:
        ConfigurationError: A bound above is violated (raised when the policy is built).
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
        """Whether failed attempt number `attempt` was the last one allowed.

        Args:
            attempt: The 1-based number of the attempt that just failed.

        Returns:
            True if the effect is now dead.
        """
        return attempt >= self.max_attempts

    def delay(self, attempt: int, random: Callable[[], float]) -> float:
        """How long to wait after failed attempt `attempt` before the next one.

        Args:
            attempt: The 1-based number of the attempt that just failed.
            random: Returns a float in [0, 1); the runtime passes a seeded generator's draw.

        Returns:
            The delay in seconds (measured on the effect worker's injected `Clock`).
        """
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

    Attributes:
        effect_id: The outbox row's id.
        workflow_type: The workflow type of the instance that asked for the effect.
        workflow_id: That instance's id.
        attempt: This attempt's 1-based number.
        idempotency_key: ``"<workflow_type>/<workflow_id>/effect-<effect_id>"``, the same on every attempt.
    """

    effect_id: int
    workflow_type: str
    workflow_id: str
    attempt: int
    idempotency_key: str
    _heartbeat: Callable[[], datetime] = attrs.field(repr=False, alias="heartbeat")

    def heartbeat(self) -> datetime:
        """Extend this worker's lease on the effect by the runtime's lease length, from now.

        Returns:
            The new lease end (the effect worker's injected `Clock`, UTC).

        Raises:
            LeaseLost: Another worker has taken the effect over (this attempt's result will be discarded).
        """
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

    Args:
        default_policy: The retry policy of handlers registered without one (default: `RetryPolicy()`).
    """

    def __init__(self, *, default_policy: RetryPolicy | None = None) -> None:
        self.default_policy = default_policy or RetryPolicy()
        self._handlers: dict[type, Registered] = {}

    def register(self, effect_class: type, handler: Handler, *, policy: RetryPolicy | None = None) -> None:
        """Make `handler` the one handler of `effect_class`.

        Args:
            effect_class: An effect class some workflow declares in its `effects`.
            handler: `handler(effect, context)`, sync or `async def`; it returns an input to feed back to a
                workflow (in the transaction that marks the effect done) or None, raises `Retryable` (or
                any exception) to try again under the policy, or `Permanent` to dead-letter at once.
            policy: Its retry policy (default: the registry's `default_policy`).

        Raises:
            ConfigurationError: `effect_class` is not a class, already has a handler, or `handler` is not
                callable.
        """
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
        """Decorator form of `register`.

        Args:
            effect_class: The effect class the decorated function handles.
            policy: Its retry policy (default: the registry's `default_policy`).

        Returns:
            A decorator that registers the function and returns it unchanged; it raises
            `ConfigurationError` as `register` does.
        """

        def decorate(fn: H) -> H:
            self.register(effect_class, fn, policy=policy)
            return fn

        return decorate

    def extended(self, effect_class: type, handler: Handler, *, policy: RetryPolicy | None = None) -> EffectRegistry:
        """A copy of this registry with one more handler (this one is unchanged).

        Args:
            effect_class: The effect class to add.
            handler: Its handler (as `register`).
            policy: Its retry policy (default: the registry's `default_policy`).

        Returns:
            The new registry.

        Raises:
            ConfigurationError: As `register` (for example, `effect_class` already has a handler).
        """
        copy = EffectRegistry(default_policy=self.default_policy)
        copy._handlers = dict(self._handlers)
        copy.register(effect_class, handler, policy=policy)
        return copy

    def lookup(self, effect_class: type) -> Registered | None:
        """The registration of `effect_class` or, failing that, of its nearest registered base class.

        Args:
            effect_class: An effect class.

        Returns:
            Its handler, whether it is async, and its policy; None if neither it nor a base class has one.
        """
        for cls in effect_class.__mro__:
            found = self._handlers.get(cls)
            if found is not None:
                return found
        return None

    def __contains__(self, effect_class: object) -> bool:
        return isinstance(effect_class, type) and self.lookup(effect_class) is not None
