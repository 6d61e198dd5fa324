"""Checks a user runs in CI when a workflow's stored names change: upcasters, and golden histories."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ironflow_py.codec import WorkflowCodec, codec_for, dumps, loads
from ironflow_py.decider import Decider
from ironflow_py.errors import IronflowError
from ironflow_py.lifecycle import Completed
from ironflow_py.store.base import LoadedEvent
from ironflow_py.testing.harness import same_stored
from ironflow_py.workflow import AnyWorkflow

_KINDS = ("event", "input", "effect")


def _decode(codec: WorkflowCodec, kind: str, name: str, data: Any) -> Any:
    if kind == "event":
        return codec.decode_event(name, data, "check-upcasters", 1)
    if kind == "input":
        return codec.decode_input(name, data, "check-upcasters")
    return codec.decode_effect(name, data, "check-upcasters")


def check_upcasters(workflow: AnyWorkflow, samples: Mapping[str, Any], *, converter: Any = None) -> dict[str, Any]:
    """Run each upcaster chain on a sample of its old payload; the result must decode and round-trip.

    Every upcaster the workflow declares needs a sample, so a new one cannot go untested. Each sample is
    upcast to a declared name (in whichever of inputs, events or effects declares it, or the `result_name`
    of outcomes), structured, encoded
    and decoded again, and must come back equal: what `ironflow-py events upgrade` would store reads as the
    same value. A bare upcaster's chain (loops, dead ends) is checked here, since registration cannot.

    Args:
        workflow: The workflow instance to check.
        samples: Old stored name -> a payload as that version stored it (parsed JSON).
        converter: The cattrs converter the service uses (default: `make_converter()`).

    Returns:
        Old name -> the decoded value of its sample.

    Raises:
        AssertionError: An upcaster has no sample, a sample is for a name no upcaster reads, a chain fails,
            or a value does not round-trip; the message names the old name.
        ConfigurationError: The workflow's upcasters are inconsistent (as at registration).
    """
    codec = codec_for(workflow, converter)
    names = set(codec.upcasters.names())
    missing, unknown = sorted(names - set(samples)), sorted(set(samples) - names)
    if missing or unknown:
        raise AssertionError(
            f"workflow {workflow.type!r}: upcasters without a sample: {missing}; samples no upcaster reads: {unknown}"
        )
    decoded: dict[str, Any] = {}
    for old, sample in samples.items():
        data = loads(dumps(sample))  # as the store hands it over
        try:
            new_name, _ = codec.upcasters.apply(old, data)
        except Exception as exc:
            raise AssertionError(f"workflow {workflow.type!r}: upcasting {old!r} failed: {exc}") from exc
        if new_name is not None and new_name == codec.result_name:
            decoded[old] = _check_result(codec, old, data)
            continue
        kind = next((k for k in _KINDS if getattr(codec, f"{k}s").class_of(new_name) is not None), None)
        if kind is None:
            raise AssertionError(f"workflow {workflow.type!r}: {old!r} upcasts to {new_name!r}, which is not declared")
        try:
            value = _decode(codec, kind, old, data)
            name, text = getattr(codec, f"encode_{kind}")(value, "check-upcasters")
            again = _decode(codec, kind, name, loads(text))
        except IronflowError as exc:
            raise AssertionError(f"workflow {workflow.type!r}: {old!r} does not decode after upcasting: {exc}") from exc
        if not same_stored(value, again) or getattr(codec, f"encode_{kind}")(again, "check-upcasters")[1] != text:
            raise AssertionError(
                f"workflow {workflow.type!r}: {old!r} upcast to {value!r}, which stored and read back is {again!r}"
            )
        decoded[old] = value
    return decoded


def _check_result(codec: WorkflowCodec, old: str, data: Any) -> Any:
    """An outcome result under an old `result_name`: decoded as `result_type`, and stable through a re-encode."""
    stored = {"status": "completed", "result": data, "result_type": old}
    try:
        value = codec.decode_outcome(stored, "check-upcasters")
        again = codec.decode_outcome(loads(codec.encode_outcome(value, "check-upcasters")), "check-upcasters")
    except IronflowError as exc:
        raise AssertionError(f"workflow {codec.workflow_type!r}: result {old!r} does not decode: {exc}") from exc
    if not same_stored(value, again):
        raise AssertionError(f"workflow {codec.workflow_type!r}: result {old!r} reads {value!r}, then {again!r}")
    assert isinstance(value, Completed)
    return value.result


def check_history_compat(workflow: AnyWorkflow, folder: str | Path, *, converter: Any = None) -> dict[str, Any]:
    """Decode and fold every history exported by `ironflow-py history export` in `folder` with this code.

    Golden histories: keep exported production histories (old names and shapes included) in the
    repository; this fails in CI as soon as the code can no longer read one of them (an event class
    changed without an upcaster, an `evolve` that raises on old events).

    Args:
        workflow: The workflow instance to check (only files of its `type` are read).
        folder: A directory of `*.json` files written by `history export`.
        converter: The cattrs converter the service uses (default: `make_converter()`).

    Returns:
        File name -> the state folded from it.

    Raises:
        AssertionError: No history of this workflow type is in `folder`, or one did not decode or fold; the
            message names the file and the typed error (which names the sequence).
    """
    codec = codec_for(workflow, converter)
    decider = Decider(workflow, codec)
    states: dict[str, Any] = {}
    for path in sorted(Path(folder).glob("*.json")):
        document = json.loads(path.read_text("utf-8"))
        if document.get("workflow_type") != workflow.type:
            continue
        workflow_id = str(document.get("workflow_id"))
        events = [LoadedEvent(e["seq"], e["type"], e["data"]) for e in document["events"]]
        try:
            state, _ = decider.fold(workflow_id, decider.initial(workflow_id), 0, events)
        except IronflowError as exc:
            raise AssertionError(f"{path.name}: the current code cannot fold this history: {exc}") from exc
        states[path.name] = state
    if not states:
        raise AssertionError(f"no exported history of workflow {workflow.type!r} in {folder}")
    return states
