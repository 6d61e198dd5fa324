"""Differential conformance: moto's Step Functions interpreter and ours run the same definitions and inputs
with the same scripted task results, and must agree on status, output, error and cause.

A case marked with a known difference must still agree on status and error; only the cause (free text
that each interpreter words its own way for runtime errors) may differ.
"""

from __future__ import annotations

from typing import Any

import pytest

from ironflow_py.asl import history_events
from tests.asl.conformance_cases import CASES
from tests.asl.helpers import LAMBDA, run

moto_runner = pytest.importorskip("tests.asl.moto_runner")
pytest.importorskip("moto.stepfunctions.parser")


@pytest.fixture(scope="module")
def moto_results() -> dict[str, Any]:
    results: dict[str, Any] = moto_runner.run_on_moto(
        [(name, d, payload, script) for _, name, d, payload, script, _ in CASES]
    )
    return results


PARAMS = [
    pytest.param(
        *case,
        id=f"{case[0]}-{case[1]}",
        marks=[pytest.mark.xfail(strict=True, reason=case[5] or "")] if (case[5] or "").startswith("disagree") else [],
    )
    for case in CASES
]


@pytest.mark.parametrize(("category", "name", "definition", "payload", "script", "difference"), PARAMS)
def test_ironflow_agrees_with_moto(
    moto_results: dict[str, Any],
    category: str,
    name: str,
    definition: dict[str, Any],
    payload: Any,
    script: dict[str, list[dict[str, Any]]],
    difference: str | None,
) -> None:
    theirs = moto_results[name]
    ours, _, _ = run(definition, payload, script, resources=(LAMBDA,))
    assert ours.status.upper() == theirs.status, (ours, theirs)
    assert ours.error == theirs.error, (ours, theirs)
    if ours.status == "succeeded":
        assert ours.output == theirs.output, (ours, theirs)
    if difference is None or difference.startswith("disagree"):
        assert (ours.cause or None) == (theirs.cause or None), (ours, theirs)


def _sequential(definition: dict[str, Any], script: dict[str, Any]) -> bool:
    """No tasks (moto reports Lambda tasks with its own event types) and nothing concurrent, whose
    interleaving in moto's history is arbitrary."""
    text = str(definition)
    one_at_a_time = "Map" not in text or "'MaxConcurrency': 1" in text
    return not script and "Parallel" not in text and one_at_a_time


HISTORY_CASES = [c for c in CASES if _sequential(c[2], c[4]) and not (c[5] or "").startswith("disagree")]


@pytest.mark.parametrize(
    ("category", "name", "definition", "payload", "script", "difference"),
    HISTORY_CASES,
    ids=[f"{c[0]}-{c[1]}" for c in HISTORY_CASES],
)
def test_exported_history_has_the_event_types_moto_records(
    moto_results: dict[str, Any],
    category: str,
    name: str,
    definition: dict[str, Any],
    payload: Any,
    script: dict[str, list[dict[str, Any]]],
    difference: str | None,
) -> None:
    _, scenario, wf = run(definition, payload, script, resources=(LAMBDA,))
    recorded = [(e.recorded_at, e.event) for e in scenario.history("machine", "exec-1")]
    ours = tuple(e["type"] for e in history_events(wf.machine, recorded))
    assert ours == moto_results[name].history
