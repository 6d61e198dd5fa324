"""The web admin view against a real database holding instances in every state (tests/ops_fixtures.py)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql
from starlette.requests import Request
from starlette.testclient import TestClient

from ironflow_py import PostgresStore
from ironflow_py.web import Authorize, create_app
from tests.ops_fixtures import Populated, populate


@pytest.fixture
def populated(pg_store: PostgresStore) -> Populated:
    return populate(pg_store)


def client(populated: Populated, *, allow_actions: bool = False, authorize: Authorize | None = None) -> TestClient:
    return TestClient(create_app(populated.service, allow_actions=allow_actions, authorize=authorize))


@pytest.fixture
def web(populated: Populated) -> Iterator[TestClient]:
    with client(populated) as c:
        yield c


def linked_instances(html: str) -> list[str]:
    return re.findall(r'class="mono" href="/instances/([^"]+)"', html)


SCREENS = [
    ("/", ["Outbox", "Timers", "Stuck instances", "order-saga", "greeting"]),
    ("/instances", ["o-shipped", "o-dead", "o-overdue", "o-pending", "g-waiting"]),
    ("/instances?stuck=any", ["o-dead", "o-overdue", "g-waiting"]),
    ("/instances?type=greeting", ["g-waiting"]),
    ("/instances/order-saga/o-shipped", ["completed in state &#39;shipped&#39;", "saga.finished/1"]),
    ("/instances/order-saga/o-dead", ["dead", "RuntimeError: gateway exploded"]),
    ("/instances/order-saga/o-overdue", ["retry-payment", "overdue"]),
    ("/instances/order-saga/o-pending", ["waits for a worker"]),
    ("/instances/greeting/g-waiting", ["nothing pending: it waits for an input from outside"]),
    ("/dead-letters", ["order-saga/o-dead", "gateway exploded"]),
    ("/projections", ["no projections"]),
]


@pytest.mark.parametrize(("path", "expected"), SCREENS, ids=[s[0] for s in SCREENS])
def test_every_screen_renders(web: TestClient, path: str, expected: list[str]) -> None:
    response = web.get(path)
    assert response.status_code == 200, response.text
    for text in expected:
        assert text in response.text, f"{text!r} missing from {path}"


@pytest.mark.parametrize(
    ("stuck", "instances"),
    [
        ("dead", ["order-saga/o-dead"]),
        ("overdue", ["order-saga/o-overdue"]),
        ("waiting", ["greeting/g-waiting"]),
        ("any", ["greeting/g-waiting", "order-saga/o-dead", "order-saga/o-overdue"]),
    ],
)
def test_the_stuck_filter_lists_exactly_the_stuck_instances(web: TestClient, stuck: str, instances: list[str]) -> None:
    assert linked_instances(web.get(f"/instances?stuck={stuck}").text) == instances


def test_the_instance_page_puts_the_diagnosis_first_then_timeline_path_effects(web: TestClient) -> None:
    html = web.get("/instances/order-saga/o-overdue").text
    order = [html.index(f'id="{part}"') for part in ("diagnosis", "timeline", "diagram", "effects", "timers", "state")]
    assert order == sorted(order)
    assert "<svg" in html and "charging" in html
    assert "stateDiagram-v2" in html, "the Mermaid source of the path is on the page"
    assert "https://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', ""), "nothing loads from outside"


def test_unknown_pages_answer_404_and_a_bad_filter_400(web: TestClient) -> None:
    assert web.get("/instances/order-saga/nope").status_code == 404
    assert web.get("/instances/no-such-type/x").status_code == 404
    assert web.get("/instances?stuck=sleepy").status_code == 400


def dead_effect_id(populated: Populated) -> int:
    [effect] = [e for e in populated.service.store.effects("order-saga", "o-dead") if e.status == "dead"]
    return effect.id


def test_read_only_by_default_no_buttons_and_actions_are_403(populated: Populated, web: TestClient) -> None:
    effect_id = dead_effect_id(populated)
    assert "<form" not in web.get("/dead-letters").text
    response = web.post(f"/dead-letters/{effect_id}/retry")
    assert response.status_code == 403
    assert "--allow-actions" in response.text
    assert [e.status for e in populated.service.store.effects("order-saga", "o-dead")] == ["dead"]


def allow_all(request: Request, action: str) -> bool:
    return True


def deny_all(request: Request, action: str) -> bool:
    return False


@pytest.mark.parametrize(
    ("allow_actions", "authorize", "reason"),
    [
        (True, None, "authorize(request, action) hook"),
        (True, deny_all, "not authorized to dead_letter.discard"),
        (False, allow_all, "actions are disabled"),
    ],
    ids=["allowed-without-hook", "hook-says-no", "hook-without-allow"],
)
def test_actions_need_both_the_flag_and_a_yes_from_the_hook(
    populated: Populated, allow_actions: bool, authorize: Authorize | None, reason: str
) -> None:
    effect_id = dead_effect_id(populated)
    with client(populated, allow_actions=allow_actions, authorize=authorize) as c:
        response = c.post(f"/dead-letters/{effect_id}/discard")
    assert response.status_code == 403
    assert reason in response.text
    assert [e.status for e in populated.service.store.effects("order-saga", "o-dead")] == ["dead"]


def test_a_cross_origin_action_is_refused_even_when_authorized(populated: Populated) -> None:
    effect_id = dead_effect_id(populated)
    with client(populated, allow_actions=True, authorize=allow_all) as c:
        response = c.post(f"/dead-letters/{effect_id}/retry", headers={"origin": "https://evil.example"})
    assert response.status_code == 403


def test_an_authorized_retry_revives_the_dead_letter_and_is_logged(
    populated: Populated, caplog: pytest.LogCaptureFixture
) -> None:
    effect_id = dead_effect_id(populated)
    seen: list[str] = []

    def authorize(request: Request, action: str) -> bool:
        seen.append(action)
        return True

    with client(populated, allow_actions=True, authorize=authorize) as c, caplog.at_level(logging.INFO, "ironflow_py"):
        assert "<form" in c.get("/dead-letters").text
        response = c.post(f"/dead-letters/{effect_id}/retry", follow_redirects=False)
        assert response.status_code == 303
        assert c.post(f"/dead-letters/{effect_id}/retry").status_code == 404, "no longer dead"
    assert seen == ["dead_letter.retry", "dead_letter.retry"]
    [effect] = populated.service.store.effects("order-saga", "o-dead")
    assert (effect.status, effect.attempts) == ("pending", 0)
    assert any("dead_letter.retry" in r.getMessage() and str(effect_id) in r.getMessage() for r in caplog.records)


def test_an_authorized_discard_deletes_the_dead_letter(populated: Populated) -> None:
    effect_id = dead_effect_id(populated)
    with client(populated, allow_actions=True, authorize=allow_all) as c:
        assert c.post(f"/dead-letters/{effect_id}/discard").status_code == 200  # redirected to the list
        assert "no dead letters" in c.get("/dead-letters").text
    assert populated.service.store.effects("order-saga", "o-dead") == []


def test_the_projection_pages_show_unstarted_then_caught_up_projections(
    populated: Populated, pg_store: PostgresStore, admin: psycopg.Connection[tuple[Any, ...]]
) -> None:
    from ironflow_py import InMemoryProjection, ProjectionWorker

    row = admin.execute(
        sql.SQL("SELECT count(*), max(position) FROM {}.events").format(sql.Identifier(pg_store.schema))
    )
    count, last = row.fetchone() or (0, 0)
    events = InMemoryProjection("event_count", 0, lambda n, e: n + 1)
    with TestClient(create_app(populated.service, projections=[events.projection()])) as c:
        assert "not started" in c.get("/projections").text
        assert "not started" in c.get("/").text
        worker = ProjectionWorker(populated.service, [events.projection()])
        try:
            # Until every event is applied: the worker reads below the cluster-wide transaction horizon, which
            # another session's open transaction can hold back a while (it delays events, never drops them).
            handled = 0
            while not worker.control.caught_up("event_count", last):
                handled += (applied := worker.run_until_idle())
                if applied == 0:
                    worker.wait_until_caught_up("event_count", last, 0.05)
        finally:
            worker.close()
        html = c.get("/projections").text
    assert count > 0 and handled == count == events.state and "not started" not in html
    assert f'<td class="num">{handled}</td>' in html, "the applied count is shown"


@pytest.mark.parametrize("action", ["pause", "resume", "cancel", "terminate"])
def test_instance_actions_are_403_without_the_flag_and_the_hook(populated: Populated, action: str) -> None:
    with client(populated) as c:
        assert 'id="actions"' not in c.get("/instances/order-saga/o-pending").text
        assert c.post(f"/actions/{action}/order-saga/o-pending").status_code == 403
    with client(populated, allow_actions=True, authorize=deny_all) as c:
        assert c.post(f"/actions/{action}/order-saga/o-pending").status_code == 403
    info = populated.service.instance("order-saga", "o-pending")
    assert info is not None and info.status.value == "running" and info.paused_at is None


def test_authorized_pause_resume_and_terminate_go_through_the_service(
    populated: Populated, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[str] = []

    def authorize(request: Request, action: str) -> bool:
        seen.append(action)
        return True

    service = populated.service
    with client(populated, allow_actions=True, authorize=authorize) as c, caplog.at_level(logging.INFO, "ironflow_py"):
        page = c.get("/instances/order-saga/o-pending").text
        assert 'action="/actions/pause/order-saga/o-pending"' in page
        assert c.post("/actions/pause/order-saga/o-pending", follow_redirects=False).status_code == 303
        info = service.instance("order-saga", "o-pending")
        assert info is not None and info.paused_at is not None
        page = c.get("/instances/order-saga/o-pending?done=pause+accepted").text
        assert "paused" in page and 'action="/actions/resume/order-saga/o-pending"' in page
        assert c.post("/actions/resume/order-saga/o-pending").status_code == 200
        info = service.instance("order-saga", "o-pending")
        assert info is not None and info.paused_at is None
        response = c.post("/actions/terminate/order-saga/o-pending", data={"reason": "duplicate order"})
        assert response.status_code == 200
        info = service.instance("order-saga", "o-pending")
        assert info is not None and info.status.value == "terminated"
        assert 'id="actions"' not in c.get("/instances/order-saga/o-pending").text, "no actions on a closed one"
        # The order saga maps a cancel request to a refusal of its approval (cancel_input): it goes through.
        # A closed instance cannot be paused: 409.
        assert c.post("/actions/cancel/order-saga/o-overdue").status_code == 200
        assert c.post("/actions/pause/order-saga/o-shipped").status_code == 409
        assert c.post("/actions/pause/order-saga/nope").status_code == 404
    assert seen[:3] == ["instance.pause", "instance.resume", "instance.terminate"]
    logged = [r.getMessage() for r in caplog.records if "web_action " in r.getMessage()]
    assert any("instance.terminate" in m and "o-pending" in m for m in logged)
