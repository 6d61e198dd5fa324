"""`worker --metrics-port`, `projections run --metrics-port` and `web`, run as a user runs them: real processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ironflow_py import PostgresStore, WorkflowService
from ironflow_py.examples.order_saga import ApprovalDecision, OrderSagaWorkflow, StartCheckout
from tests.ops_fixtures import populate
from tests.projection_apps import Conn, create_read_model

ORDER = "order-5e1d"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http(port: int, path: str, *, method: str = "GET") -> tuple[int, str]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", method=method, data=b"" if method == "POST" else None
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def wait_until(condition: Callable[[], bool], what: str, proc: subprocess.Popen[str], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            err = proc.stderr.read() if proc.stderr else ""
            raise AssertionError(f"the process exited ({proc.returncode}) while waiting for {what}: {err}")
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def answers(port: int, path: str, status: int = 200) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return http(port, path)[0] == status
        except OSError:
            return False  # not listening yet

    return check


@pytest.fixture
def spawn(pg_url: str, schema: str) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    procs: list[subprocess.Popen[str]] = []

    def start(*args: str) -> subprocess.Popen[str]:
        env = {**os.environ, "IRONFLOW_DATABASE_URL": pg_url, "IRONFLOW_SCHEMA": schema}
        proc = subprocess.Popen(
            [sys.executable, "-m", "ironflow_py", *args, "--log-level", "warning"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=30)


def test_a_worker_with_metrics_port_serves_metrics_health_and_readiness(
    pg_store: PostgresStore, spawn: Callable[..., subprocess.Popen[str]]
) -> None:
    port = free_port()
    proc = spawn("--app", "tests.ops_apps:saga", "worker", "--metrics-port", str(port), "--poll-interval", "0.2")
    wait_until(answers(port, "/healthz"), "the worker's /healthz", proc)
    assert answers(port, "/readyz")()

    service = WorkflowService(pg_store, workflows=[OrderSagaWorkflow])
    service.execute(StartCheckout(ORDER, 1_500))
    wait_until(lambda: service.state("order-saga", ORDER).status == "awaiting_approval", "the payment", proc)
    service.execute(ApprovalDecision(ORDER, True))
    wait_until(lambda: service.state("order-saga", ORDER).status == "shipped", "the shipment", proc)

    status, text = http(port, "/metrics")
    assert status == 200
    samples = [s for family in text_string_to_metric_families(text) for s in family.samples]
    retries = [
        s.value for s in samples if s.name == "ironflow_effect_attempts_total" and s.labels.get("outcome") == "retry"
    ]
    assert retries == [1.0], "the gateway's connection reset was retried once"
    assert not any(ORDER in v for s in samples for v in s.labels.values()), "no label names the instance"
    assert any(s.name == "ironflow_outbox_pending" for s in samples), "outbox gauges read from the database"

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0


def test_projections_run_with_metrics_port_reports_lag(
    pg_store: PostgresStore, admin: Conn, spawn: Callable[..., subprocess.Popen[str]]
) -> None:
    create_read_model(admin, pg_store.schema)
    port = free_port()
    proc = spawn(
        "--app",
        "tests.projection_apps:counters",
        "projections",
        "run",
        "--metrics-port",
        str(port),
        "--poll-interval",
        "0.2",
    )
    wait_until(answers(port, "/healthz"), "the projection worker's /healthz", proc)
    wait_until(lambda: "ironflow_projection_lag_events{projection=" in http(port, "/metrics")[1], "the lag gauge", proc)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0


def test_the_web_command_serves_read_only_pages_and_refuses_actions(
    pg_store: PostgresStore, spawn: Callable[..., subprocess.Popen[str]]
) -> None:
    populate(pg_store)
    [dead] = [e.id for e in pg_store.effects("order-saga", "o-dead")]
    port = free_port()
    proc = spawn("--app", "tests.ops_apps:both", "web", "--port", str(port))
    wait_until(answers(port, "/"), "the web view", proc)
    status, html = http(port, "/instances/order-saga/o-dead")
    assert status == 200 and "gateway exploded" in html
    assert http(port, f"/dead-letters/{dead}/retry", method="POST")[0] == 403
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0


def test_the_web_command_runs_actions_with_allow_actions_and_authorize(
    pg_store: PostgresStore, spawn: Callable[..., subprocess.Popen[str]]
) -> None:
    populate(pg_store)
    [dead] = [e.id for e in pg_store.effects("order-saga", "o-dead")]
    port = free_port()
    proc = spawn(
        "--app",
        "tests.ops_apps:both",
        "web",
        "--port",
        str(port),
        "--allow-actions",
        "--authorize",
        "tests.ops_apps:allow_all",
    )
    wait_until(answers(port, "/"), "the web view", proc)
    status, _ = http(port, f"/dead-letters/{dead}/retry", method="POST")
    assert status == 200  # redirected to the list
    assert [e.status for e in pg_store.effects("order-saga", "o-dead")] == ["pending"]
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0
    assert "web_action" in (proc.stderr.read() if proc.stderr else "")


def test_web_needs_an_app_and_a_loadable_authorize_hook(spawn: Callable[..., subprocess.Popen[str]]) -> None:
    proc = spawn("--app", "tests.ops_apps:both", "web", "--authorize", "tests.ops_apps:nope")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert err.strip().splitlines()[-1].startswith("error: --authorize tests.ops_apps:nope")


def test_inspect_show_and_the_path_diagram_of_a_terminated_instance(pg_url: str, pg_store: PostgresStore) -> None:
    """The history holds the engine's `ironflow.terminated/1`, which `evolve` never sees: both commands must
    fold it the engine's way instead of crashing on it."""
    service = WorkflowService(pg_store, workflows=[OrderSagaWorkflow])
    service.execute(StartCheckout(ORDER, 1_500))
    service.terminate("order-saga", ORDER, "duplicate order")
    env = {**os.environ, "IRONFLOW_DATABASE_URL": pg_url, "IRONFLOW_SCHEMA": pg_store.schema}
    base = [sys.executable, "-m", "ironflow_py", "--app", "tests.ops_apps:saga"]
    show = subprocess.run(
        [*base, "inspect", "show", "order-saga", ORDER], env=env, capture_output=True, text=True, check=False
    )
    assert show.returncode == 0, show.stderr
    assert f"order-saga {ORDER}: terminated in state" in show.stdout
    path = subprocess.run(
        [*base, "diagram", "order-saga", "--instance", ORDER], env=env, capture_output=True, text=True, check=False
    )
    assert path.returncode == 0, path.stderr
    assert "charging --> terminated: #2 ironflow.terminated/1" in path.stdout
    assert path.stdout.rstrip().endswith("terminated --> [*]")
