"""Composition without a database: the Join helper (property tests), the decision builders, the harness."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ironflow_py import Cancelled, ChildStart, CodecError, Completed, DecideFailed, Decision, Join, Message
from ironflow_py.codec import make_converter
from ironflow_py.composition import START_CHILD_ROW, START_REJECTED, delivery_key
from ironflow_py.testing import Scenario, WorkflowSpec
from tests.composition_workflows import (
    ChildDone,
    Collected,
    FannedOut,
    FanOut,
    FinishTask,
    Grow,
    Holder,
    Job,
    JobState,
    Keep,
    Keeper,
    Ping,
    Relay,
    Relayed,
    Relayer,
    StartTask,
    Task,
    Tree,
)

KEYS = st.lists(st.text("abcdefgh", min_size=1, max_size=3), min_size=1, max_size=6, unique=True)


@given(KEYS, st.randoms(use_true_random=False))
def test_any_order_of_resolutions_gives_the_same_results_and_done_turns_true_once(keys: list[str], rnd: object) -> None:
    order = list(keys)
    rnd.shuffle(order)  # type: ignore[attr-defined]
    join: Join[int] = Join.of(keys)
    turned = 0
    for key in order:
        before = join.done
        join = join.resolve(key, len(key))
        turned += int(join.done and not before)
        join = join.resolve(key, -1)  # a repeated notice changes nothing: the first value wins
    assert turned == 1
    assert join.done
    assert join.results == tuple(len(k) for k in keys)
    assert join.pending == ()


@given(KEYS, KEYS)
def test_keys_registered_in_two_decisions_are_not_done_until_all_resolve(first: list[str], later: list[str]) -> None:
    join: Join[str] = Join.of(first)
    for key in first[:-1]:
        join = join.resolve(key, key)
    join = join.add(*later)
    join = join.resolve(first[-1], first[-1])
    extra = [k for k in later if k not in first]
    assert join.done is (not extra)
    for key in extra:
        assert not join.done
        join = join.resolve(key, key)
    assert join.done
    assert join.results == tuple(dict.fromkeys([*first, *later]))


@given(KEYS, st.randoms(use_true_random=False))
def test_a_race_keeps_the_first(keys: list[str], rnd: object) -> None:
    order = list(keys)
    rnd.shuffle(order)  # type: ignore[attr-defined]
    join: Join[str] = Join.race(keys)
    for n, key in enumerate(order):
        join = join.resolve(key, f"from {key}") if n % 2 == 0 else join.fail(key, "lost")
        assert join.done
    first = join.first
    assert first is not None
    assert (first.key, first.ok) == (order[0], True)


def test_failures_are_resolutions_listed_in_key_order() -> None:
    join: Join[int] = Join.of(["a", "b", "c"]).fail("c", "boom").resolve("a", 1).fail("b", "bang")
    assert join.done
    assert [r.key for r in join.failed] == ["b", "c"]
    assert join.results == (1, None, None)
    with pytest.raises(ValueError, match="not registered"):
        join.resolve("z", 1)
    with pytest.raises(ValueError, match="needs an error"):
        join.fail("a", None)


def test_an_empty_join_is_never_done() -> None:
    assert not Join.of([]).done


@given(st.lists(st.tuples(st.sampled_from("abc"), st.integers(-(2**40), 2**40)), max_size=5))
def test_a_join_in_state_survives_the_codec(resolutions: list[tuple[str, int]]) -> None:
    join: Join[int] = Join.of(["a", "b", "c"])
    for key, value in resolutions:
        join = join.resolve(key, value)
    converter = make_converter()
    state = JobState("waiting", join)
    assert converter.structure(converter.unstructure(state), JobState) == state


def test_builders_record_messages_and_children_and_check_policies() -> None:
    d: Decision[Any, Any] = (
        Decision.accept().send(Ping("j", "x")).send_to("job", "j2", Ping("j", "y")).start_child(StartTask("t", 1))
    )
    assert d.messages == (Message(Ping("j", "x")), Message(Ping("j", "y"), "job", "j2"))
    assert d.children == (ChildStart(StartTask("t", 1), None, "request_cancel", "inherit"),)
    assert d.with_event(FannedOut((), False)).children == d.children  # later builders keep them
    with pytest.raises(ValueError, match="on_parent_close"):
        d.start_child(StartTask("t", 1), on_parent_close="orphan")
    with pytest.raises(ValueError, match="deadline"):
        d.start_child(StartTask("t", 1), deadline="later")
    with pytest.raises(ValueError, match="rejected"):
        Decision.reject("no").send(Ping("j", "x"))


def test_delivery_keys_are_short_stable_and_distinct_per_owner_and_row() -> None:
    long_id = "x" * 512
    key = delivery_key("job", long_id, 42)
    assert key == delivery_key("job", long_id, 42)
    assert len(key.encode()) <= 60
    assert len({key, delivery_key("job", "y", 42), delivery_key("job", long_id, 43)}) == 3


# -- the harness: a parent's decisions about children, without a database ------------------------------------

spec = WorkflowSpec(Job, peers=[Task])


def test_spec_shows_the_children_a_decision_starts() -> None:
    spec.given().when(FanOut("j", (1, 2), policy="terminate")).then(
        events=[FannedOut(("j-t0", "j-t1"), False)],
        children=[
            ChildStart(StartTask("j-t0", 1), "j-t0", "terminate", "inherit"),
            ChildStart(StartTask("j-t1", 2), "j-t1", "terminate", "inherit"),
        ],
        messages=[],
    )


def test_spec_joins_child_notices_and_closes_on_the_last() -> None:
    history = [FannedOut(("j-t0", "j-t1"), False), Collected("j-t1", True, 20, None)]
    spec.given(*history).when(ChildDone("j", "j-t0", True, 10)).then(
        events=[Collected("j-t0", True, 10, None)]
    ).then_outcome(Completed([10, 20]))


def test_spec_refuses_a_child_input_that_no_peer_declares() -> None:
    with pytest.raises(CodecError, match="StartTask"):
        WorkflowSpec(Job).given().when(FanOut("j", (1,)))


def test_spec_refuses_a_message_to_a_workflow_that_does_not_declare_its_input() -> None:
    class Wrong(Relayer):
        def decide(self, now, state, input):  # type: ignore[no-untyped-def]
            return Decision.accept(Relayed("n")).send_to("task", "t", Ping("j", "n"))

    with pytest.raises(CodecError, match="not an input of workflow 'task'"):
        WorkflowSpec(Wrong(), peers=[Task, Job]).given().when(Relay("r", "j", "n"))


def test_spec_shows_messages_routed_by_class_and_to_a_named_instance() -> None:
    WorkflowSpec(Relayer, peers=[Job]).given().when(Relay("r", "j", "n")).then(
        events=[Relayed("n")],
        messages=[Message(Ping("j", "n")), Message(Ping("ignored-for-routing", "n!"), "job", "j")],
    )


def test_spec_reports_a_child_id_that_cannot_be_stored() -> None:
    class BadIds(Job):
        def decide(self, now, state, input):  # type: ignore[no-untyped-def]
            return Decision.accept().start_child(StartTask("t", 1), id="bad\x00id")

    with pytest.raises(Exception, match="NUL"):
        WorkflowSpec(BadIds(), peers=[Task]).given().when(FanOut("j", (1,)))


# -- Scenario: the whole life in memory, the same attempt code as the PostgreSQL worker -----------------------


def test_scenario_fans_out_and_joins_in_key_order() -> None:
    s = Scenario(Job, Task)
    s.send(FanOut("j", (1, 2, 3)))
    for i in (2, 0, 1):
        s.send(FinishTask(f"j-t{i}"))
    assert s.result("job", "j") == Completed([10, 20, 30])
    assert [c.workflow_id for c in s.store.children("job", "j", open_only=False)] == ["j-t0", "j-t1", "j-t2"]


def test_scenario_a_child_that_rejects_its_first_input_is_reported_to_the_parent_as_failed() -> None:
    s = Scenario(Job, Task)
    s.send(FanOut("j", (1, -1)))
    assert s.store.instance("task", "j-t1") is None  # never created
    s.send(FinishTask("j-t0"))
    assert s.result("job", "j") == Completed([10, None])
    [collected] = [e.event for e in s.service.history("job", "j") if isinstance(e.event, Collected) and not e.event.ok]
    assert collected == Collected("j-t1", False, None, f"{START_REJECTED}: a negative value")
    assert {e.status for e in s.store.effects("job", "j") if e.effect_type == START_CHILD_ROW} == {"done"}


def test_scenario_a_child_without_cancel_input_keeps_running_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    s = Scenario(Keeper, Holder)
    s.send(Keep("k"))
    assert s.store.instance("holder", "k/h") is not None
    s.terminate("keeper", "k", "stop")
    info = s.store.instance("holder", "k/h")
    assert info is not None and info.closed_at is None  # request_cancel could not reach it: still running
    [warning] = [r for r in caplog.records if getattr(r, "event", None) == "child_not_cancellable"]
    assert warning.levelno == logging.WARNING
    assert warning.__dict__["context"]["child_id"] == "k/h" and warning.__dict__["context"]["parent_id"] == "k"


def test_scenario_cascades_grandparent_to_parent_to_child() -> None:
    s = Scenario(Job, Task, Tree)
    s.send(Grow("root", 2))
    assert s.store.instance("tree", "root/1") is not None
    assert s.store.instance("task", "root/1/leaf") is not None
    s.terminate("tree", "root", "operator")
    assert s.result("tree", "root/1") == Cancelled("parent tree/root terminated")
    assert s.result("task", "root/1/leaf") == Cancelled("parent tree/root/1 cancelled")


def test_scenario_parent_with_run_timeout_passes_its_deadline_to_children_that_inherit_it() -> None:
    s = Scenario(Job, Task, Tree)
    s.send(Grow("root", 1, timeout_s=60))
    root_deadline = next(t.due_at for t in s.timers("tree", "root"))
    [leaf_deadline] = [t.due_at for t in s.timers("task", "root/leaf")]
    assert leaf_deadline == root_deadline
    s.advance(timedelta(seconds=61))
    assert s.result("tree", "root") is not None
    assert s.result("task", "root/leaf") is not None


def test_decide_that_raises_in_a_peer_workflow_id_is_reported_as_decide_failed() -> None:
    class NoId(Task):
        def workflow_id(self, input):  # type: ignore[no-untyped-def]
            raise RuntimeError("no id")

    class Starter(Job):
        def decide(self, now, state, input):  # type: ignore[no-untyped-def]
            return Decision.accept().start_child(StartTask("t", 1))

    with pytest.raises(DecideFailed, match="workflow_id"):
        WorkflowSpec(Starter(), peers=[NoId()]).given().when(FanOut("j", (1,)))


def test_start_rows_carry_the_child_and_its_policies() -> None:
    s = Scenario(Job, Task)
    s.send(FanOut("j", (7,), policy="abandon"))
    [row] = [e for e in s.effects("job", "j") if e.effect_type == START_CHILD_ROW]
    assert row.payload["to_type"] == "task"
    assert row.payload["to_id"] == "j-t0"
    assert row.payload["on_parent_close"] == "abandon"
    assert row.payload["deadline"] == "inherit"
    assert row.payload["input"] == {"task_id": "j-t0", "value": 7}


def test_a_single_key_is_one_key_not_its_characters() -> None:
    assert Join.of("payment").keys == ("payment",)
    assert Join.race("payment").keys == ("payment",)
    assert Join.of(["a", "b"]).keys == ("a", "b")
