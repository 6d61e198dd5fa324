"""Differential conformance: moto's Step Functions interpreter and ours run the same definitions and inputs
with the same scripted task results, and must agree on status, output, error and cause.

A case marked with a known difference must still agree on status and error; only the cause (free text
that each interpreter words its own way for runtime errors) may differ.
"""

from __future__ import annotations

from typing import Any

import pytest

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
