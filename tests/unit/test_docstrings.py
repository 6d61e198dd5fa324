"""Every public name and public method has a complete Google-style docstring (STYLE.md, "Errors, logs").

Walks `__all__` of each public package. Each function and method needs a summary sentence, `Args:` naming
every parameter, `Returns:` (or `Yields:`) unless it returns None, and `Raises:` naming every exception
its body (or a private `self._helper` it calls) raises. A class needs a summary; an attrs class lists its
fields under `Attributes:`; a hand-written `__init__` documents its parameters under `Args:` (in the class
or the `__init__` docstring). Properties need a summary only. ruff's pydocstyle rules (`D`, google
convention, see pyproject.toml) check the layout; this test checks what ruff cannot: completeness.

Run `python -m tests.unit.test_docstrings` for the coverage count and every finding.
"""

from __future__ import annotations

import ast
import enum
import importlib
import inspect
import re
import textwrap
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

PACKAGES = [
    "ironflow_py",
    "ironflow_py.testing",
    "ironflow_py.effects",
    "ironflow_py.projections",
    "ironflow_py.store",
    "ironflow_py.telemetry",
    "ironflow_py.web",
    "ironflow_py.asl",
    "ironflow_py.upgrade",
]

_SECTION = re.compile(r"^(Args|Arguments|Attributes|Returns|Yields|Raises|Example|Examples|Note|Notes):\s*$")
_ITEM = re.compile(r"^\s{2,}\**([A-Za-z_][\w.]*)\s*(\([^)]*\))?:")
_GENERATOR_RETURNS = ("Iterator", "Generator", "Iterable", "AbstractContextManager", "ContextManager")


def sections(doc: str) -> dict[str, list[str]]:
    """The names listed under each section of a Google-style docstring (section -> item names)."""
    found: dict[str, list[str]] = {}
    current: str | None = None
    for line in inspect.cleandoc(doc).splitlines():
        match = _SECTION.match(line)
        if match:
            current = match[1].replace("Arguments", "Args")
            found.setdefault(current, [])
            continue
        if line and not line[0].isspace():
            current = None
        elif current is not None:
            item = _ITEM.match(line)
            if item and len(line) - len(line.lstrip()) <= 4:
                found[current].append(item[1])
    return found


def _summary_problem(doc: str | None) -> str | None:
    if not doc or not doc.strip():
        return "no docstring"
    first = inspect.cleandoc(doc).split("\n\n", 1)[0].strip()
    if _SECTION.match(first.splitlines()[0]):
        return "no summary sentence before the sections"
    if not first.endswith((".", ".)", "?")):
        return "the summary does not end with a full stop"
    return None


def _raised_names(func: Callable[..., Any], owner: type | None) -> set[str]:
    """Exception names raised directly in `func`, or in private methods of `owner` it calls on self."""
    names: set[str] = set()
    seen: set[str] = set()

    def visit(f: Callable[..., Any]) -> None:
        try:
            source = textwrap.dedent(inspect.getsource(f))
        except (OSError, TypeError):
            return
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Raise) and node.exc is not None:
                exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
                if isinstance(exc, ast.Name) and exc.id[:1].isupper():
                    names.add(exc.id)
                elif isinstance(exc, ast.Attribute) and exc.attr[:1].isupper():
                    names.add(exc.attr)
            elif (
                owner is not None
                and isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id in {"self", "cls"}
                and node.func.attr.startswith("_")
                and not node.func.attr.startswith("__")
                and node.func.attr not in seen
            ):
                seen.add(node.func.attr)
                helper = inspect.getattr_static(owner, node.func.attr, None)
                helper = getattr(helper, "__func__", helper)
                if callable(helper):
                    visit(helper)

    visit(func)
    return names


def _parameters(func: Callable[..., Any]) -> list[str]:
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):
        return []
    names = []
    for p in signature.parameters.values():
        if p.name in {"self", "cls"}:
            continue
        names.append(p.name)
    return names


def _returns_value(func: Callable[..., Any]) -> tuple[bool, bool]:
    """(returns something other than None, is a generator or context manager)."""
    annotation = inspect.signature(func).return_annotation
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))
    if text in {"None", "NoReturn", "Never"} or annotation is None:
        return False, False
    generator = inspect.isgeneratorfunction(func) or text.startswith(_GENERATOR_RETURNS)
    return True, generator


def function_problems(func: Callable[..., Any], owner: type | None = None) -> list[str]:
    """What the docstring of `func` lacks ([] when complete)."""
    doc = func.__doc__
    problem = _summary_problem(doc)
    if problem == "no docstring":
        return [problem]
    assert doc is not None
    problems = [problem] if problem else []
    found = sections(doc)
    params = _parameters(func)
    if params:
        if "Args" not in found:
            problems.append(f"no `Args:` section (parameters: {', '.join(params)})")
        else:
            missing = [p for p in params if p not in found["Args"]]
            if missing:
                problems.append(f"`Args:` does not list {', '.join(missing)}")
    returns, generator = _returns_value(func)
    if returns and func.__name__ != "__init__":
        wanted = ("Yields", "Returns") if generator else ("Returns",)
        if not any(s in found for s in wanted):
            problems.append(f"no `{wanted[0]}:` section")
    raised = _raised_names(func, owner) - {"NotImplementedError"}
    if raised:
        if "Raises" not in found:
            problems.append(f"no `Raises:` section (the code raises {', '.join(sorted(raised))})")
        else:
            missing = sorted(raised - set(found["Raises"]))
            if missing:
                problems.append(f"`Raises:` does not list {', '.join(missing)}")
    return problems


def _own_init(cls: type) -> Callable[..., Any] | None:
    init = cls.__dict__.get("__init__")
    if init is None or attrs.has(cls) or not inspect.isfunction(init):
        return None
    # typing.Protocol puts its own __init__ into the class dict.
    return init if init.__qualname__ == f"{cls.__qualname__}.__init__" else None


def _public_members(cls: type) -> Iterator[tuple[str, Any, type]]:
    """(name, raw attribute, defining class) of public methods and properties from ironflow_py classes."""
    seen: set[str] = set()
    for klass in cls.__mro__:
        if not klass.__module__.startswith("ironflow_py"):
            continue
        for name, raw in vars(klass).items():
            if name.startswith("_") or name in seen:
                continue
            seen.add(name)
            if isinstance(raw, (staticmethod, classmethod, property)) or inspect.isfunction(raw):
                yield name, raw, klass


def class_problems(cls: type) -> dict[str, list[str]]:
    """Findings per qualified member: '' for the class itself, '.name' for a method."""
    out: dict[str, list[str]] = {}
    problems: list[str] = []
    problem = _summary_problem(cls.__doc__)
    if problem:
        problems.append(problem)
    doc = cls.__doc__ or ""
    if attrs.has(cls) and not issubclass(cls, BaseException):
        fields = [f.name for f in attrs.fields(cls) if not f.name.startswith("_")]
        listed = sections(doc).get("Attributes", [])
        missing = [f for f in fields if f not in listed]
        if fields and missing:
            problems.append(f"`Attributes:` does not list {', '.join(missing)}")
    init = _own_init(cls)
    if init is not None:
        params = _parameters(init)
        documented = set(sections(doc).get("Args", [])) | set(sections(init.__doc__ or "").get("Args", []))
        missing = [p for p in params if p not in documented]
        if missing:
            problems.append(f"`Args:` (class or __init__ docstring) does not list {', '.join(missing)}")
        raised = _raised_names(init, cls) - {"NotImplementedError"}
        raises = set(sections(doc).get("Raises", [])) | set(sections(init.__doc__ or "").get("Raises", []))
        if raised - raises:
            problems.append(
                f"`Raises:` (class or __init__ docstring) does not list {', '.join(sorted(raised - raises))}"
            )
    out[""] = problems
    if issubclass(cls, enum.Enum):
        return out
    for name, raw, _owner in _public_members(cls):
        if isinstance(raw, property):
            summary = _summary_problem(raw.fget.__doc__ if raw.fget else None)
            out[f".{name}"] = [summary] if summary else []
            continue
        func = raw.__func__ if isinstance(raw, (staticmethod, classmethod)) else raw
        out[f".{name}"] = function_problems(func, cls)
    return out


#: Public names of modules that have no `__all__` of their own.
EXTRA = {"ironflow_py.aio": ["AsyncWorkflowService"]}


def public_api() -> dict[str, Any]:
    """Every public object, under its shortest public path (package.name)."""
    api: dict[str, Any] = {}
    ids: set[int] = set()
    for package in [*PACKAGES, *EXTRA]:
        module = importlib.import_module(package)
        for name in EXTRA.get(package) or module.__all__:
            obj = getattr(module, name)
            if id(obj) in ids:
                continue
            ids.add(id(obj))
            api[f"{package}.{name}"] = obj
    return api


def all_problems() -> dict[str, list[str]]:
    """Findings per public name or method ('' list: complete)."""
    found: dict[str, list[str]] = {}
    for path, obj in public_api().items():
        if inspect.isclass(obj):
            for suffix, problems in class_problems(obj).items():
                found[path + suffix] = problems
        elif callable(obj):
            found[path] = function_problems(obj)
    return found


def test_public_docstrings_are_complete() -> None:
    """Each finding names the public name and what its docstring lacks, so it can be fixed on sight."""
    incomplete = {name: p for name, p in all_problems().items() if p}
    lines = [f"{name}: {'; '.join(p)}" for name, p in sorted(incomplete.items())]
    assert not lines, f"{len(lines)} public names lack docstring parts:\n" + "\n".join(lines)


def _ruff_docstring_modules() -> set[str]:
    """The modules pyproject.toml lets ruff's D rules check (the negated per-file-ignores pattern)."""
    config = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    for pattern, rules in config["tool"]["ruff"]["lint"]["per-file-ignores"].items():
        match = re.fullmatch(r"!ironflow_py/\{(.+)\}\.py", pattern)
        if match and rules == ["D"]:
            return {"ironflow_py/" + name + ".py" for name in match[1].split(",")}
    raise AssertionError('pyproject.toml has no `!ironflow_py/{...}.py` = ["D"] per-file-ignores pattern')


def test_ruff_checks_the_layout_of_every_public_module() -> None:
    """A module that defines a public name is under ruff's D rules too (pyproject.toml, per-file-ignores)."""
    package = Path(importlib.import_module("ironflow_py").__file__ or "").parent
    defining = set()
    for obj in public_api().values():
        module = inspect.getmodule(obj)
        if module is not None and module.__file__ and module.__name__.startswith("ironflow_py"):
            defining.add("ironflow_py/" + str(Path(module.__file__).relative_to(package)))
    missing = sorted(defining - _ruff_docstring_modules())
    assert not missing, f'add {missing} to the `!ironflow_py/{{...}}.py` = ["D"] pattern in pyproject.toml'


def _sample(doc: str) -> Callable[..., Any]:
    def f(workflow_id: str, *, timeout: float = 1.0) -> int:
        if timeout < 0:
            raise ValueError("negative")
        return 1

    f.__doc__ = doc
    return f


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ("", "no docstring"),
        ("Count things", "full stop"),
        ("Count things.", "no `Args:`"),
        ("Count things.\n\nArgs:\n    workflow_id: The id.\n", "does not list timeout"),
        (
            "Count things.\n\nArgs:\n    workflow_id: The id.\n    timeout: Seconds.\n\nRaises:\n    ValueError: x.\n",
            "no `Returns:`",
        ),
        (
            "Count things.\n\nArgs:\n    workflow_id: The id.\n    timeout: Seconds.\n\nReturns:\n    One.\n",
            "raises ValueError",
        ),
    ],
)
def test_the_checker_reports_what_is_missing(doc: str, expected: str) -> None:
    """Each missing part is reported by name, so the test above can fail."""
    assert expected in "; ".join(function_problems(_sample(doc)))


def test_the_checker_accepts_a_complete_docstring() -> None:
    doc = """Count things.

    Args:
        workflow_id: The instance.
        timeout: Seconds to wait (wall clock).

    Returns:
        One.

    Raises:
        ValueError: `timeout` is negative.
    """
    assert function_problems(_sample(doc)) == []


def _coverage() -> None:
    found = all_problems()
    complete = sum(1 for p in found.values() if not p)
    present = sum(1 for p in found.values() if "no docstring" not in p)
    print(f"with a docstring: {present} of {len(found)} public names and methods")
    print(f"complete docstrings: {complete} of {len(found)} public names and methods")
    for name, problems in sorted(found.items()):
        if problems:
            print(f"  {name}: {'; '.join(problems)}")


if __name__ == "__main__":
    _coverage()
