"""Arguments that take names: one name or many, never a string read as its characters.

A `str` is itself an iterable of strings, so `pruner("orders")` would otherwise mean the projections
"o", "r", "d", ... Every public parameter that takes names goes through `names`.
"""

from __future__ import annotations

from collections.abc import Iterable


def names(value: str | Iterable[str]) -> tuple[str, ...]:
    """`value` as a tuple of names: a single string is one name, any other iterable gives its items.

    Args:
        value: One name, or an iterable of names.

    Returns:
        The names, in the order given.
    """
    return (value,) if isinstance(value, str) else tuple(value)
