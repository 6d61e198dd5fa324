"""Effects: handlers registered by effect class, run by leased workers that drain the outbox and fire timers.

`EffectRegistry`, `EffectContext` and `RetryPolicy` are pure declarations; `EffectRuntime` is the worker daemon and
`DeadLetters` the operator's view of effects that failed for good.
"""

from typing import TYPE_CHECKING

from ironflow_py import _lazy
from ironflow_py.effects._registry import EffectContext, EffectRegistry, RetryPolicy

if TYPE_CHECKING:
    from ironflow_py.effects._dead_letters import DeadLetters
    from ironflow_py.effects._runtime import EffectRuntime

# Both import psycopg: loaded on first use (PEP 562), so the scenario runner's import of this package does not.
_LAZY = {"DeadLetters": "ironflow_py.effects._dead_letters", "EffectRuntime": "ironflow_py.effects._runtime"}


def __getattr__(name: str) -> object:
    """PEP 562: import `DeadLetters` or `EffectRuntime` on first use."""
    return _lazy.load(__name__, _LAZY, name, globals())


__all__ = ["DeadLetters", "EffectContext", "EffectRegistry", "EffectRuntime", "RetryPolicy"]
