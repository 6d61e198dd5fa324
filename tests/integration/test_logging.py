"""The library's logging: quiet unless the application configures it, any logger a user passes works at
every level, a logger that fails never breaks an input, and a failing handler's traceback is logged, kept on
its outbox row and shown by the CLI."""

from __future__ import annotations

import json
import logging
import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, NoReturn

import pytest
import structlog
from structlog.testing import capture_logs

from ironflow_py import (
    EffectContext,
    EffectRegistry,
    EffectRuntime,
    OutcomeStatus,
    PostgresStore,
    RetryPolicy,
    WorkflowService,
)
from ironflow_py.cli import main
from ironflow_py.examples.onboarding import OnboardingWorkflow, SendVerificationEmail, StartOnboarding
from ironflow_py.testing import Scenario
from tests.apps import onboarding_buggy

ROOT = Path(__file__).resolve().parents[2]


class ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class RaisingHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        raise RuntimeError("the log shipper is down")


class RaisingLogger:
    """A structlog-style logger whose every method raises."""

    def bind(self, **kw: Any) -> RaisingLogger:
        return self

    def _boom(self, *args: Any, **kw: Any) -> NoReturn:
        raise RuntimeError("logger exploded")

    debug = info = warning = error = exception = _boom


def test_library_use_without_logging_configured_prints_nothing(pg_url: str, schema: str) -> None:
    """Executing inputs and running a failing effect, with no logging set up, writes nothing to stdout/stderr."""
    script = textwrap.dedent(
        f"""
        import random
        from ironflow_py import EffectRuntime, PostgresStore
        from ironflow_py.examples.onboarding import StartOnboarding
        from tests.apps import onboarding_buggy

        with PostgresStore.connect({pg_url!r}, schema={schema!r}) as store:
            store.migrate()
            service = onboarding_buggy.service(store)
            service.execute(StartOnboarding("u1", "ada@example.com", "r1"))
            runtime = EffectRuntime(
                service, onboarding_buggy.effects, handle_signals=False, listen=False, rng=random.Random(0)
            )
            assert runtime.run_once() == 1
            assert store.effects("onboarding", "u1")[0].status == "dead"
        """
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert (result.stdout, result.stderr) == ("", "")


def test_a_stdlib_logger_passed_in_works_at_debug(pg_store: PostgresStore) -> None:
    logger = logging.getLogger("myapp.workflows")
    logger.setLevel(logging.DEBUG)
    handler = ListHandler()
    logger.addHandler(handler)
    try:
        service = WorkflowService(pg_store, workflows=[OnboardingWorkflow], logger=logger)
        outcome = service.execute(StartOnboarding("u1", "ada@example.com", "r1"))
    finally:
        logger.removeHandler(handler)
    assert outcome.status is OutcomeStatus.ACCEPTED
    [record] = [r for r in handler.records if getattr(r, "event", None) == "input_executed"]
    assert record.levelno == logging.DEBUG
    assert record.context["workflow_id"] == "u1"  # type: ignore[attr-defined]
    assert record.getMessage().startswith("input_executed workflow_type=onboarding workflow_id=u1 ")
    assert record.pathname.endswith("service.py"), "the record points at the library code that logged"


def test_a_structlog_logger_passed_in_works_at_every_level(pg_store: PostgresStore) -> None:
    service = onboarding_buggy.service(pg_store, logger=structlog.get_logger("myapp"))
    runtime = EffectRuntime(
        service,
        onboarding_buggy.effects,
        handle_signals=False,
        listen=False,
        rng=random.Random(0),
        logger=structlog.get_logger("myapp"),
    )
    with capture_logs() as logs:
        service.execute(StartOnboarding("u1", "ada@example.com", "r1"))
        runtime.run_once()
    levels = {(entry["event"], entry["log_level"]) for entry in logs}
    assert ("input_executed", "debug") in levels
    assert ("effect_attempt", "warning") in levels
    [dead] = [e for e in logs if e["event"] == "effect_attempt"]
    assert isinstance(dead["exc_info"], KeyError) and dead["workflow_id"] == "u1"


@pytest.mark.parametrize("kind", ["structlog-style object", "stdlib logger with a failing handler"])
def test_a_failing_logger_never_turns_a_committed_input_into_an_exception(kind: str, pg_store: PostgresStore) -> None:
    raising: Any
    if kind == "structlog-style object":
        raising = RaisingLogger()
    else:
        raising = logging.getLogger("myapp.broken")
        raising.setLevel(logging.DEBUG)
        raising.propagate = False
        raising.addHandler(RaisingHandler())
    service = WorkflowService(pg_store, workflows=[OnboardingWorkflow], logger=raising)
    outcome = service.execute(StartOnboarding("u1", "ada@example.com", "r1"))
    assert outcome.status is OutcomeStatus.ACCEPTED
    assert len(pg_store.events("onboarding", "u1")) == 1, "committed exactly once"
    again = service.execute(StartOnboarding("u1", "ada@example.com", "r1"))
    assert again.status is OutcomeStatus.DUPLICATE, "a caller retrying is told it already happened"
    assert len(pg_store.events("onboarding", "u1")) == 1


def test_a_failing_handler_logs_its_traceback(pg_store: PostgresStore, caplog: pytest.LogCaptureFixture) -> None:
    service = onboarding_buggy.service(pg_store)
    runtime = EffectRuntime(service, onboarding_buggy.effects, handle_signals=False, listen=False, rng=random.Random(0))
    service.execute(StartOnboarding("u1", "ada@example.com", "r1"))
    with caplog.at_level(logging.INFO, logger="ironflow_py"):
        runtime.run_once()
    [record] = [r for r in caplog.records if getattr(r, "event", None) == "effect_attempt"]
    assert record.name == "ironflow_py.effects" and record.levelno == logging.WARNING
    assert record.context["outcome"] == "dead"  # type: ignore[attr-defined]
    assert record.exc_info is not None and isinstance(record.exc_info[1], KeyError)
    assert "in _template_for" in caplog.text and "KeyError: 'missing'" in caplog.text


def test_a_failing_handlers_traceback_is_on_the_row_in_inspect_show_and_in_dead_letters(
    pg_url: str, pg_store: PostgresStore, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    service = onboarding_buggy.service(pg_store)
    runtime = EffectRuntime(service, onboarding_buggy.effects, handle_signals=False, listen=False, rng=random.Random(0))
    service.execute(StartOnboarding("u1", "ada@example.com", "r1"))
    runtime.run_once()
    [row] = pg_store.effects("onboarding", "u1")
    assert (row.status, row.last_error) == ("dead", "gave up after 1 attempts: KeyError: 'missing'")
    assert row.last_traceback is not None
    assert "in _template_for" in row.last_traceback and row.last_traceback.endswith("KeyError: 'missing'\n")

    monkeypatch.setenv("IRONFLOW_DATABASE_URL", pg_url)
    monkeypatch.setenv("IRONFLOW_SCHEMA", pg_store.schema)
    capsys.readouterr()
    assert main(["--app", "tests.apps:onboarding_buggy", "inspect", "show", "onboarding", "u1"]) == 0
    shown = capsys.readouterr().out
    assert "error: gave up after 1 attempts: KeyError: 'missing'" in shown
    assert "      Traceback (most recent call last):" in shown and "in _template_for" in shown
    assert main(["dead-letters", "list"]) == 0
    listed = capsys.readouterr().out
    assert "in _send_with_template" in listed and "    KeyError: 'missing'" in listed
    assert main(["dead-letters", "list", "--json"]) == 0
    [dead] = json.loads(capsys.readouterr().out)
    assert dead["last_traceback"] == row.last_traceback


def test_a_retrying_effect_keeps_the_traceback_of_its_last_attempt(pg_store: PostgresStore) -> None:
    """Another member of the class: not dead yet, waiting to retry; and the in-memory scenario runner too."""

    def _connect() -> None:
        raise ConnectionError("smtp refused")

    registry = EffectRegistry()

    @registry.handler(SendVerificationEmail, policy=RetryPolicy(max_attempts=5))
    def send(effect: SendVerificationEmail, ctx: EffectContext) -> None:
        _connect()

    service = WorkflowService(pg_store, workflows=[OnboardingWorkflow])
    runtime = EffectRuntime(service, registry, handle_signals=False, listen=False, rng=random.Random(0))
    service.execute(StartOnboarding("u1", "ada@example.com", "r1"))
    runtime.run_once()
    [row] = pg_store.effects("onboarding", "u1")
    assert (row.status, row.attempts) == ("pending", 1)
    assert row.last_traceback is not None and "in _connect" in row.last_traceback

    scenario = Scenario(OnboardingWorkflow, effects=registry)
    scenario.send(StartOnboarding("u1", "ada@example.com", "r1"))
    scenario.run_due()
    [memory_row] = scenario.effects("onboarding", "u1")
    assert memory_row.last_traceback is not None and "ConnectionError: smtp refused" in memory_row.last_traceback
