"""The in-memory path (MemoryStore, WorkflowSpec, Scenario) never imports psycopg: it runs where the driver is
missing, and the psycopg-using public names load only on first use (PEP 562, ironflow_py/_lazy.py)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import ironflow_py

SCRIPT = textwrap.dedent(
    """
    import sys
    # None in sys.modules makes `import psycopg` raise ImportError: the driver is unimportable.
    sys.modules["psycopg"] = None
    sys.modules["psycopg_pool"] = None

    from datetime import timedelta

    import ironflow_py
    from ironflow_py import EffectRegistry, MemoryStore, WorkflowService
    from ironflow_py.examples.orders import ApproveOrder, OrderWorkflow, PlaceOrder, Line
    from ironflow_py.testing import Scenario, WorkflowSpec

    spec = WorkflowSpec(OrderWorkflow)
    spec.given().when(PlaceOrder("o1", "ada", (Line("beans", 2, 1_000),))).then_state(lambda s: s.status == "placed")

    scenario = Scenario(OrderWorkflow, effects=EffectRegistry())
    scenario.send(PlaceOrder("o1", "ada", (Line("beans", 2, 1_000),)))
    scenario.advance(timedelta(days=2))
    assert scenario.state("order", "o1").status == "cancelled", scenario.state("order", "o1")

    WorkflowService(MemoryStore(), workflows=[OrderWorkflow]).execute(PlaceOrder("o2", "bob", ()))
    try:
        ironflow_py.PostgresStore
    except ImportError:
        print("lazy")
    """
)


def test_the_memory_path_runs_without_psycopg() -> None:
    result = subprocess.run([sys.executable, "-c", SCRIPT], check=False, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    # The one access to a PostgreSQL name is what tried to import the driver.
    assert result.stdout.strip().splitlines()[-1] == "lazy"


def test_lazy_names_are_the_real_classes() -> None:
    from ironflow_py.effects._runtime import EffectRuntime
    from ironflow_py.store.postgres import PostgresStore

    assert ironflow_py.PostgresStore is PostgresStore
    assert ironflow_py.EffectRuntime is EffectRuntime
    assert all(hasattr(ironflow_py, name) for name in ironflow_py.__all__)
