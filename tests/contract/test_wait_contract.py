"""Waiting for an instance to close, on both stores: at once when closed, woken by the close itself."""

from __future__ import annotations

import threading
import time

import pytest

from ironflow_py import NotFound, WorkflowService
from ironflow_py.errors import WaitTimedOut
from ironflow_py.lifecycle import Completed
from ironflow_py.store.base import Store
from tests.workflows import Add, Counter, Finish


@pytest.fixture
def service(store: Store) -> WorkflowService:
    return WorkflowService(store, workflows=[Counter])


def _wait_in_thread(
    service: WorkflowService, workflow_id: str, **kwargs: object
) -> tuple[threading.Thread, list[object]]:
    got: list[object] = []

    def run() -> None:
        try:
            got.append(service.wait("counter", workflow_id, **kwargs))  # type: ignore[call-overload]
        except Exception as exc:
            got.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, got


def _until(condition: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.005)


def test_result_is_none_while_open_and_the_outcome_once_closed(service: WorkflowService) -> None:
    assert service.result("counter", "c1") is None
    service.execute(Add("c1"))
    assert service.result("counter", "c1") is None
    service.execute(Finish("c1"))
    assert service.result("counter", "c1") == Completed(None)
    info = service.instance("counter", "c1")
    assert info is not None and info.closed_at is not None


def test_wait_on_a_closed_instance_returns_at_once(service: WorkflowService) -> None:
    service.execute(Add("c1"))
    service.execute(Finish("c1"))
    started = time.monotonic()
    outcome = service.wait("counter", "c1", timeout=30, poll_interval=30)
    assert outcome == Completed(None)
    assert (outcome.workflow_type, outcome.workflow_id) == ("counter", "c1")
    assert time.monotonic() - started < 5  # far below the poll interval: it never slept


def test_wait_on_an_unknown_instance_is_not_found_at_once(service: WorkflowService) -> None:
    with pytest.raises(NotFound, match="'counter' has no instance 'nope'") as caught:
        service.wait("counter", "nope", timeout=30)
    assert caught.value.workflow_id == "nope"


def test_a_waiter_wakes_when_the_instance_closes_not_at_its_next_poll(service: WorkflowService) -> None:
    service.execute(Add("c1"))
    waiters = service.store.closed_waiters()
    thread, got = _wait_in_thread(service, "c1", timeout=60, poll_interval=60)
    _until(lambda: waiters.count() == 1)
    assert service.store.listening(10)
    time.sleep(0.05)  # let the waiter's first read finish; a close before it would also be seen
    assert thread.is_alive()
    service.execute(Finish("c1"))
    thread.join(10)
    assert not thread.is_alive(), "the waiter slept through the close"
    assert got == [Completed(None)]
    assert waiters.count() == 0


def test_allow_missing_waits_for_an_instance_that_does_not_exist_yet(service: WorkflowService) -> None:
    thread, got = _wait_in_thread(service, "later", timeout=60, poll_interval=60, allow_missing=True)
    _until(lambda: service.store.closed_waiters().count() == 1)
    service.execute(Add("later"))
    service.execute(Finish("later"))
    thread.join(10)
    assert got == [Completed(None)]


def test_a_caller_that_gives_up_gets_wait_timed_out_and_the_instance_keeps_running(service: WorkflowService) -> None:
    service.execute(Add("c1"))
    with pytest.raises(WaitTimedOut, match=r"'counter' instance 'c1': still running after waiting 0\.2 s"):
        service.wait("counter", "c1", timeout=0.2)
    assert service.store.closed_waiters().count() == 0
    assert service.execute(Add("c1")).accepted


def test_execute_and_wait_returns_the_outcome_of_the_closing_input(service: WorkflowService) -> None:
    service.execute(Add("c1"))
    assert service.execute_and_wait(Finish("c1"), timeout=10) == Completed(None)


def test_execute_and_wait_on_a_rejected_first_input_says_so(service: WorkflowService) -> None:
    limited = WorkflowService(service.store, workflows=[type("Tiny", (Counter,), {"limit": 0})])
    with pytest.raises(NotFound, match="the input was rejected"):
        limited.execute_and_wait(Add("c9", 5), timeout=1)
