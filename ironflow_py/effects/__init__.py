"""Effects: handlers registered by effect class, run by leased workers that drain the outbox and fire timers.

`EffectRegistry`, `EffectContext` and `RetryPolicy` are pure declarations; `EffectRuntime` is the worker daemon and
`DeadLetters` the operator's view of effects that failed for good.
"""

from ironflow_py.effects._dead_letters import DeadLetters
from ironflow_py.effects._registry import EffectContext, EffectRegistry, RetryPolicy
from ironflow_py.effects._runtime import EffectRuntime

__all__ = ["DeadLetters", "EffectContext", "EffectRegistry", "EffectRuntime", "RetryPolicy"]
