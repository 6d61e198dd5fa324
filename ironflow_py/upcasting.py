"""Upcasters: pure JSON -> JSON steps that turn a payload stored under an old name into a declared one.

A workflow declares `upcasters = {"order.placed/1": fn}`, where `fn(data) -> (new_name, new_data)`. When the
codec meets a stored name the code no longer declares, it follows the chain of upcasters from that name until
it reaches a declared name, then structures the result as usual. A declared name never touches this module,
so a workflow without upcasters decodes exactly as before (design/versioning.md).

`Upcast(fn, to=...)` is the same function with the names it may return written down, so the chain can be
checked when the workflow is registered: a cycle, a dead end (a target that is neither declared nor
upcast further) or an upcaster for a declared name is a `ConfigurationError` then. A bare function's
target is only known when it runs; the same checks then fail the decode with a `DecodeError`, and
`ironflow_py.testing.check_upcasters` runs them against samples in a test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from ironflow_py._names import names
from ironflow_py.errors import ConfigurationError

#: `fn(data) -> (new_name, new_data)`: pure, JSON-ready data in and out, no I/O, no clock.
UpcastFn = Callable[[Any], tuple[str, Any]]


@attrs.frozen
class Upcast:
    """An upcaster whose possible targets are declared, so its chain is checked at registration.

    Calling it calls `fn` and checks that the name it returned is one of `to`.

    Attributes:
        fn: `fn(data) -> (new_name, new_data)`, pure JSON -> JSON.
        to: The names `fn` may return (a string, or a tuple when the result depends on the data).
    """

    fn: UpcastFn
    to: tuple[str, ...] = attrs.field(converter=names)

    def __call__(self, data: Any) -> tuple[str, Any]:
        """Apply `fn` to `data`.

        Args:
            data: The stored payload, parsed JSON.

        Returns:
            `(new_name, new_data)`.

        Raises:
            ValueError: `fn` returned a name that is not in `to`.
        """
        name, new = self.fn(data)
        if name not in self.to:
            raise ValueError(f"returned {name!r}, which is not one of its declared targets {list(self.to)}")
        return name, new


class UpcastFailed(Exception):
    """An upcaster chain could not reach a declared name (the codec turns this into a `DecodeError`).

    Args:
        message: What went wrong, naming stored names but never payload values.
        chain: The names visited so far, the stored one first.
    """

    def __init__(self, message: str, chain: tuple[str, ...]) -> None:
        self.chain = chain
        super().__init__(f"{message} (chain {' -> '.join(chain)})")


class Upcasters:
    """One workflow's upcasters, checked against its declared names.

    Args:
        owner: The workflow type, named in errors.
        upcasters: Old stored name -> `fn` or `Upcast`.
        declared: Every stored name the workflow declares (inputs, events and effects).

    Raises:
        ConfigurationError: An upcaster is not callable, is registered for a declared name, or, following
            declared targets (`Upcast.to`), a chain loops or ends at a name that is neither declared nor
            upcast.
    """

    def __init__(self, owner: str, upcasters: Mapping[str, UpcastFn], declared: Iterable[str]) -> None:
        self.owner = owner
        self.declared = frozenset(declared)
        self._fns: dict[str, UpcastFn] = {}
        for name, fn in upcasters.items():
            if not isinstance(name, str) or not name:
                raise ConfigurationError(f"workflow {owner!r}: an upcaster key must be a non-empty stored name")
            if not callable(fn):
                raise ConfigurationError(f"workflow {owner!r}: the upcaster for {name!r} is not callable")
            if name in self.declared:
                raise ConfigurationError(
                    f"workflow {owner!r}: {name!r} is both declared and upcast; a stored name is read one way: "
                    "remove the upcaster, or rename the declaration to a new version"
                )
            self._fns[name] = fn
        for name in self._fns:
            self._check_chain(name)

    def _check_chain(self, start: str) -> None:
        """Follow the declared targets from `start`: every path must reach a declared name without looping."""
        path: list[str] = []

        def walk(name: str) -> None:
            if name in self.declared:
                return
            if name in path:
                raise ConfigurationError(
                    f"workflow {self.owner!r}: upcasters loop: {' -> '.join([*path[path.index(name) :], name])}"
                )
            fn = self._fns.get(name)
            if fn is None:
                raise ConfigurationError(
                    f"workflow {self.owner!r}: upcasters dead-end: {' -> '.join([*path, name])}: {name!r} is "
                    "neither declared nor upcast"
                )
            if not isinstance(fn, Upcast):
                return  # its target is known only when it runs
            path.append(name)
            for target in fn.to:
                walk(target)
            path.pop()

        walk(start)

    def __contains__(self, name: object) -> bool:
        return name in self._fns

    def __bool__(self) -> bool:
        return bool(self._fns)

    def names(self) -> tuple[str, ...]:
        """The old stored names these upcasters read, in declaration order."""
        return tuple(self._fns)

    def targets(self, name: str) -> frozenset[str] | None:
        """The declared names a chain from `name` may reach; None when a bare function makes it unknown.

        Args:
            name: An old stored name (a key of `upcasters`).

        Returns:
            The declared names at the ends of the chain, or None if any step's target is not declared.
        """
        found: set[str] = set()
        todo, seen = [name], set()
        while todo:
            current = todo.pop()
            if current in self.declared:
                found.add(current)
                continue
            if current in seen:
                continue
            seen.add(current)
            fn = self._fns.get(current)
            if not isinstance(fn, Upcast):
                return None
            todo.extend(fn.to)
        return frozenset(found)

    def apply(self, name: str, data: Any) -> tuple[str, Any]:
        """Follow the chain from `name` until a declared name; the pure step the codec runs on an old name.

        Args:
            name: The stored name (one of `names()`).
            data: The stored payload, parsed JSON.

        Returns:
            `(declared_name, data_in_its_shape)`.

        Raises:
            UpcastFailed: The chain loops, reaches a name that is neither declared nor upcast, an upcaster
                raised or did not return a `(str, data)` pair.
        """
        chain = [name]
        while name not in self.declared:
            fn = self._fns.get(name)
            if fn is None:
                raise UpcastFailed(f"{name!r} is neither declared nor upcast", tuple(chain))
            try:
                result = fn(data)
            except Exception as exc:
                # The type only: an exception's text may quote the payload.
                raise UpcastFailed(f"the upcaster for {name!r} raised {type(exc).__name__}", tuple(chain)) from None
            if not (isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], str)):
                raise UpcastFailed(f"the upcaster for {name!r} did not return (new_name, new_data)", tuple(chain))
            name, data = result
            if name in chain:
                raise UpcastFailed("the upcasters loop", (*chain, name))
            chain.append(name)
        return name, data
