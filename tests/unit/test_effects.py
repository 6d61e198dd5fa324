"""Pure parts of the effect API: retry policy arithmetic, the registry, the idempotency key."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ironflow_py import ConfigurationError, EffectContext, EffectRegistry, RetryPolicy
from ironflow_py.effects._registry import idempotency_key
from tests.effect_app import AsyncWork, Work


def test_delay_grows_by_factor_up_to_the_cap_without_jitter() -> None:
    policy = RetryPolicy(max_attempts=10, base_delay=1.0, factor=3.0, max_delay=20.0, jitter=False)
    assert [policy.delay(n, random.random) for n in range(1, 6)] == [1.0, 3.0, 9.0, 20.0, 20.0]


@given(st.integers(min_value=1, max_value=5000), st.integers(min_value=0, max_value=2**32))
def test_full_jitter_stays_between_zero_and_the_cap(attempt: int, seed: int) -> None:
    policy = RetryPolicy(base_delay=0.5, factor=2.0, max_delay=30.0)
    cap = min(30.0, 0.5 * 2.0 ** min(attempt - 1, 100))
    delay = policy.delay(attempt, random.Random(seed).random)
    assert 0.0 <= delay <= cap
    assert delay == policy.delay(attempt, random.Random(seed).random), "same seed, same delay"


def test_a_huge_factor_overflows_to_the_cap() -> None:
    assert RetryPolicy(factor=1e300, max_delay=7.0, jitter=False).delay(10, random.random) == 7.0


def test_exhausted_after_max_attempts() -> None:
    policy = RetryPolicy(max_attempts=3)
    assert [policy.exhausted(n) for n in (1, 2, 3)] == [False, False, True]


@pytest.mark.parametrize("kwargs", [{"max_attempts": 0}, {"base_delay": -1.0}, {"factor": 0.5}, {"max_delay": -2.0}])
def test_nonsense_policies_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigurationError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_registry_keeps_one_handler_per_class_with_its_policy() -> None:
    registry = EffectRegistry()
    slow = RetryPolicy(max_attempts=2)

    @registry.handler(Work, policy=slow)
    def work(effect: Work, ctx: EffectContext) -> None:
        return None

    async def async_work(effect: AsyncWork, ctx: EffectContext) -> None:
        return None

    registry.register(AsyncWork, async_work)
    entry, async_entry = registry.lookup(Work), registry.lookup(AsyncWork)
    assert entry is not None and async_entry is not None
    assert (entry.handler, entry.is_async, entry.policy) == (work, False, slow)
    assert (async_entry.is_async, async_entry.policy) == (True, registry.default_policy)
    assert registry.lookup(int) is None
    with pytest.raises(ConfigurationError, match="already has a handler"):
        registry.register(Work, work)


def test_registries_are_independent_objects() -> None:
    one, two = EffectRegistry(), EffectRegistry()
    one.register(Work, lambda effect, ctx: None)
    assert Work in one and Work not in two


def test_the_idempotency_key_depends_only_on_the_row_identity() -> None:
    assert idempotency_key("order", "o-1", 42) == idempotency_key("order", "o-1", 42) == "order/o-1/effect-42"
    assert idempotency_key("order", "o-1", 43) != idempotency_key("order", "o-1", 42)


def test_a_handler_for_a_base_class_handles_its_subclasses_unless_one_is_registered() -> None:
    class Special(Work):
        pass

    class Other(Work):
        pass

    def general(effect: Work, ctx: EffectContext) -> None:
        return None

    def special(effect: Work, ctx: EffectContext) -> None:
        return None

    registry = EffectRegistry()
    registry.register(Work, general)
    registry.register(Special, special)
    for cls, handler in ((Other, general), (Special, special)):
        found = registry.lookup(cls)
        assert found is not None and found.handler is handler
    assert Other in registry and AsyncWork not in registry
