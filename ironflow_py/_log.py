"""The library's logging: the standard `logging` module under `ironflow_py.*`, or a logger the user passes.

Quiet until the application configures logging (a `NullHandler` sits on the `ironflow_py` logger, so
Python's last-resort handler never prints our warnings). Nothing here configures anything globally. A
logging failure is contained: a logger that raises can never turn a committed input into an exception.
Event names are stable snake_case; context travels as keyword fields. See design/operations.md.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

ROOT = "ironflow_py"

logging.getLogger(ROOT).addHandler(logging.NullHandler())

_METHODS = {
    logging.DEBUG: "debug",
    logging.INFO: "info",
    logging.WARNING: "warning",
    logging.ERROR: "error",
}


class Message:
    """A log record's message, rendered only if a handler formats it: `event key=value ...`."""

    __slots__ = ("context", "event")

    def __init__(self, event: str, context: dict[str, Any]) -> None:
        self.event = event
        self.context = context

    def __str__(self) -> str:
        parts = [self.event]
        for key, value in self.context.items():
            text = str(value)
            if not text or any(c in text for c in ' ="\n'):
                text = repr(text)
            parts.append(f"{key}={text}")
        return " ".join(parts)


class Log:
    """Logs structured events to a stdlib `logging.Logger` (or `LoggerAdapter`) or to a structlog-style
    logger (any object whose `debug/info/warning/error(event, **fields)` methods take keyword fields).

    A stdlib record carries the event name and the context as `record.event` and `record.context`, and its
    message reads `event key=value ...`. Pass `exc_info=exc` to attach a traceback. Every call is guarded:
    if the logger raises, the failure is reported to the `ironflow_py.logging` logger (itself guarded) and
    the caller carries on.
    """

    __slots__ = ("_context", "_stdlib", "target")

    def __init__(self, target: Any, context: dict[str, Any] | None = None) -> None:
        self.target = target
        self._stdlib = isinstance(target, logging.Logger | logging.LoggerAdapter)
        self._context = context or {}

    def bind(self, **fields: Any) -> Log:
        """A Log that adds `fields` to every event."""
        return Log(self.target, {**self._context, **fields})

    def debug(self, event: str, **fields: Any) -> None:
        """Log `event` at DEBUG with `fields` as context."""
        self._log(logging.DEBUG, event, fields)

    def info(self, event: str, **fields: Any) -> None:
        """Log `event` at INFO with `fields` as context."""
        self._log(logging.INFO, event, fields)

    def warning(self, event: str, **fields: Any) -> None:
        """Log `event` at WARNING with `fields` as context."""
        self._log(logging.WARNING, event, fields)

    def error(self, event: str, **fields: Any) -> None:
        """Log `event` at ERROR with `fields` as context."""
        self._log(logging.ERROR, event, fields)

    def enabled(self, level: int) -> bool:
        """Whether an event at `level` would be logged (always True for non-stdlib loggers)."""
        try:
            return not self._stdlib or bool(self.target.isEnabledFor(level))
        except Exception:
            return False

    def _log(self, level: int, event: str, fields: dict[str, Any]) -> None:
        try:
            if self._stdlib:
                if not self.target.isEnabledFor(level):
                    return
                context = {**self._context, **fields}
                exc_info = context.pop("exc_info", None)
                self.target.log(
                    level,
                    Message(event, context),
                    exc_info=exc_info,
                    extra={"event": event, "context": context},
                    stacklevel=3,  # the record points at the library code that logged, not at this module
                )
            else:
                getattr(self.target, _METHODS[level])(event, **self._context, **fields)
        except Exception:
            _report_failure(event)


def _report_failure(event: str) -> None:
    with contextlib.suppress(Exception):  # if even this fails there is nowhere left to say it; go on
        logging.getLogger(f"{ROOT}.logging").warning("the logger failed on event %r", event, exc_info=True)


def get_log(name: str, logger: Any = None) -> Log:
    """The Log a component uses: `logger` if the user passed one, else the stdlib logger `ironflow_py.<name>`.

    Args:
        name: the component, e.g. `service`, `effects`, `projections`.
        logger: a `logging.Logger`, a `LoggerAdapter`, a structlog logger, a `Log`, or None.

    Returns:
        A Log around it.
    """
    if isinstance(logger, Log):
        return logger
    return Log(logger if logger is not None else logging.getLogger(f"{ROOT}.{name}"))
