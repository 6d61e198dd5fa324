"""Upcasters in the codec: chains checked at registration, followed on decode, stable through a re-encode;
and the user's checks `check_upcasters` and `check_history_compat`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ironflow_py import ConfigurationError, DecodeError, MemoryStore, Upcast, WorkflowService
from ironflow_py.codec import codec_for, loads
from ironflow_py.testing import check_history_compat, check_upcasters
from ironflow_py.upgrade import HISTORY_FORMAT, export_history
from tests.upcast_workflows import (
    OLD_SAMPLES,
    Email,
    Place,
    Placed,
    Receipt,
    ReceiptResult,
    Remind,
    Shop,
    ShopState,
    placed_v1,
    placed_v2,
)
from tests.upcast_workflows import plant_event as plant


def shop_with(upcasters: dict[str, Any]) -> type[Shop]:
    class Variant(Shop):
        pass

    Variant.upcasters = upcasters
    return Variant


@pytest.mark.parametrize(
    ("upcasters", "message"),
    [
        ({"shop.placed/3": placed_v2}, r"'shop\.placed/3' is both declared and upcast"),
        (
            {
                "shop.placed/1": Upcast(placed_v1, to="shop.placed/2"),
                "shop.placed/2": Upcast(placed_v2, to="shop.placed/1"),
            },
            r"upcasters loop: shop\.placed/1 -> shop\.placed/2 -> shop\.placed/1",
        ),
        ({"shop.placed/1": Upcast(placed_v1, to="shop.placed/2")}, r"dead-end: shop\.placed/1 -> shop\.placed/2"),
        ({"shop.placed/1": "not a function"}, r"upcaster for 'shop\.placed/1' is not callable"),
    ],
    ids=["declared", "loop", "dead-end", "not-callable"],
)
def test_an_inconsistent_set_of_upcasters_is_refused_at_registration(upcasters: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=rf"workflow 'shop': .*{message}"):
        WorkflowService(MemoryStore(), workflows=[shop_with(upcasters)])


def test_a_bare_upcaster_that_loops_or_ends_elsewhere_fails_the_decode_naming_the_chain() -> None:
    def back(data: Any) -> tuple[str, Any]:
        return "shop.placed/1", data

    looping = codec_for(shop_with({"shop.placed/1": lambda d: ("shop.placed/2", d), "shop.placed/2": back})())
    with pytest.raises(DecodeError, match=r"loop \(chain shop\.placed/1 -> shop\.placed/2 -> shop\.placed/1\)"):
        looping.decode_event("shop.placed/1", {}, "o1", 4)
    elsewhere = codec_for(shop_with({"shop.placed/1": lambda d: ("shop.email/2", d)})())
    with pytest.raises(DecodeError, match=r"upcast to 'shop\.email/2', which is not one of the declared events"):
        elsewhere.decode_event("shop.placed/1", {}, "o1", 4)
    wrong_target = codec_for(shop_with({"shop.placed/1": Upcast(lambda d: ("shop.placed/9", d), to="shop.placed/3")})())
    with pytest.raises(DecodeError, match=r"upcaster for 'shop\.placed/1' raised ValueError"):
        wrong_target.decode_event("shop.placed/1", {}, "o1", 4)


def test_a_declared_name_never_runs_an_upcaster() -> None:
    calls: list[Any] = []

    def spy(data: Any) -> tuple[str, Any]:
        calls.append(data)
        return "shop.placed/3", data

    codec = codec_for(shop_with({"shop.placed/0": spy})())
    assert codec.decode_event("shop.placed/3", {"sku": "x", "quantity": 1, "unit_cents": 5}, "o1", 1) == Placed(
        "x", 1, 5
    )
    assert calls == []


sku = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=20)
quantity = st.integers(-(2**63), 2**63 - 1)
extra = st.dictionaries(
    st.text(min_size=1, max_size=5).filter(lambda k: k not in {"sku", "qty", "quantity"}), st.integers()
)


@given(sku=sku, qty=quantity, extra=extra, two_steps=st.booleans())
def test_upcast_then_structure_then_unstructure_is_stable(
    sku: str, qty: int, extra: dict[str, int], two_steps: bool
) -> None:
    """What an upcast event encodes to (what `events upgrade` stores) decodes to the same event and encodes to
    the same text: rewriting a row never changes a state."""
    codec = codec_for(Shop())
    old = "shop.placed/1" if two_steps else "shop.placed/2"
    data = {**extra, "sku": sku, ("qty" if two_steps else "quantity"): qty}
    event = codec.decode_event(old, loads(json.dumps(data)), "o1", 1)
    assert event == Placed(sku, qty, 0)
    name, text = codec.encode_event(event, "o1")
    again = codec.decode_event(name, loads(text), "o1", 1)
    assert (name, again) == ("shop.placed/3", event)
    assert codec.encode_event(again, "o1") == (name, text)


def test_check_upcasters_decodes_every_sample_and_wants_one_per_upcaster() -> None:
    decoded = check_upcasters(Shop(), OLD_SAMPLES)
    assert decoded == {
        "shop.placed/1": Placed("tea", 3, 0),
        "shop.placed/2": Placed("tea", 3, 0),
        "shop.remind/1": Remind("o1", "call back"),
        "shop.email/1": Email("o1", "ada@example.com"),
    }
    with pytest.raises(AssertionError, match=r"upcasters without a sample: \['shop\.email/1'\]"):
        check_upcasters(Shop(), {k: v for k, v in OLD_SAMPLES.items() if k != "shop.email/1"})
    with pytest.raises(AssertionError, match=r"'shop\.placed/1' failed: .*KeyError"):
        check_upcasters(Shop(), {**OLD_SAMPLES, "shop.placed/1": {"sku": "tea"}})
    with pytest.raises(AssertionError, match=r"'shop\.placed/2' does not decode after upcasting: .*\$\.sku"):
        check_upcasters(Shop(), {**OLD_SAMPLES, "shop.placed/2": {"quantity": 3}})


def test_check_upcasters_covers_outcome_results() -> None:
    assert check_upcasters(Receipt(), {"receipt.result/1": {"total": 5}}) == {
        "receipt.result/1": ReceiptResult(5, "EUR")
    }
    with pytest.raises(AssertionError, match=r"result 'receipt\.result/1' does not decode"):
        check_upcasters(Receipt(), {"receipt.result/1": {"total": "many"}})


def test_a_result_name_needs_a_result_type_and_its_upcasters_may_end_there() -> None:
    class NoType(Receipt):
        result_type = None  # type: ignore[assignment]

    with pytest.raises(ConfigurationError, match="result_name needs a result_type"):
        codec_for(NoType())

    class Dangling(Receipt):
        result_name = "receipt.result/3"

    with pytest.raises(ConfigurationError, match=r"dead-end: receipt\.result/1 -> receipt\.result/2"):
        codec_for(Dangling())


def test_an_exported_history_folds_with_the_current_code_and_fails_without_its_upcasters(tmp_path: Path) -> None:
    store = MemoryStore()
    service = WorkflowService(store, workflows=[Shop])
    service.execute(Place("o1", "tea", 1))
    service.execute(Place("o1", "tea", 2))
    plant(store, "shop", "o1", 1, "shop.placed/1", {"sku": "tea", "qty": 5})
    exported = export_history(service, "shop", "o1")
    assert exported["format"] == HISTORY_FORMAT
    assert [e["type"] for e in exported["events"]] == ["shop.placed/1", "shop.placed/3"]  # as stored
    (tmp_path / "o1.json").write_text(json.dumps(exported))
    (tmp_path / "other.json").write_text(json.dumps({**exported, "workflow_type": "other"}))
    assert check_history_compat(Shop(), tmp_path) == {"o1.json": ShopState(items=7, lines=2)}
    with pytest.raises(AssertionError, match=r"o1\.json: the current code cannot fold .*shop\.placed/1.*sequence 1"):
        check_history_compat(shop_with({})(), tmp_path)
    with pytest.raises(AssertionError, match="no exported history of workflow 'shop'"):
        check_history_compat(Shop(), tmp_path / "empty")
