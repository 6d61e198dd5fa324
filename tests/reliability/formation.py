"""A pg_auto_failover formation of the test's own: a monitor, a primary and a synchronous secondary on loopback.

Built with the system's `pg_autoctl` (Debian packages `pg-auto-failover-cli` and `postgresql-N-auto-failover`)
in a temporary folder, never touching the shared server. pg_autoctl refuses to run as root, so as root every
command runs as the `postgres` user. Each node's keeper (`pg_autoctl run`) is a child process of the test;
`kill_node` SIGKILLs a node's keeper processes and its postmaster, as if its machine had died.

The monitor's failure detection is shortened (`MONITOR_SETTINGS`): with pg_auto_failover's defaults a
promotion takes about 50 s (20 s to call the primary unhealthy, then 30 s `primary_demote_timeout`), which
is a property of the formation, not of ironflow_py. design/failover.md gives both figures.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

PG_AUTOCTL = shutil.which("pg_autoctl") or "/usr/bin/pg_autoctl"

#: Monitor settings (milliseconds) that make a dead primary be noticed and replaced within seconds.
MONITOR_SETTINGS = {
    "pgautofailover.health_check_period": 1000,
    "pgautofailover.health_check_timeout": 1000,
    "pgautofailover.health_check_max_retries": 1,
    "pgautofailover.health_check_retry_delay": 500,
    "pgautofailover.node_considered_unhealthy_timeout": 2000,
    "pgautofailover.primary_demote_timeout": 3000,
}


def _pg_ctl() -> Path | None:
    for version in ("18", "17", "16", "15", "14", "13"):
        extension = Path(f"/usr/share/postgresql/{version}/extension/pgautofailover.control")
        pg_ctl = Path(f"/usr/lib/postgresql/{version}/bin/pg_ctl")
        if extension.exists() and pg_ctl.exists():
            return pg_ctl
    return None


def missing() -> str | None:
    """Why a formation cannot be built here (None when it can)."""
    if not Path(PG_AUTOCTL).exists():
        return "needs pg_auto_failover's pg_autoctl (Debian package pg-auto-failover-cli)"
    if _pg_ctl() is None:
        return "needs the pg_auto_failover extension (Debian package postgresql-15-auto-failover)"
    if os.getuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "pg_autoctl refuses root and there is no postgres user to run it as"
    return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _children(pid: int) -> list[int]:
    """Every descendant of `pid` (read from /proc), deepest last."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(entry.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


class Formation:
    """`pg_autoctl create monitor` plus two `pg_autoctl create postgres` nodes, each run by a keeper process."""

    def __init__(self, nodes: int = 2) -> None:
        pg_ctl = _pg_ctl()
        assert pg_ctl is not None
        self.pg_ctl = pg_ctl
        self.root = Path(tempfile.mkdtemp(prefix="ironflow-paf-"))
        self._user = "postgres" if os.getuid() == 0 else None
        if self._user is not None:
            entry = pwd.getpwnam(self._user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "XDG_CONFIG_HOME": str(self.root / "config"),
            "XDG_DATA_HOME": str(self.root / "share"),
            "XDG_RUNTIME_DIR": str(self.root / "run"),
            "LANG": "C.UTF-8",
        }
        self.keepers: dict[str, subprocess.Popen[bytes]] = {}
        self.ports: dict[str, int] = {}
        self.monitor_port = free_port()
        try:
            self._create_monitor()
            for i in range(1, nodes + 1):
                self._add_node(f"node{i}")
                self.wait_for_states(
                    {f"node{j}": ("primary" if j == 1 else "secondary") for j in range(1, i + 1)}
                    if i > 1
                    else {"node1": "single"}
                )
        except BaseException:
            self.close()
            raise

    # -- running pg_autoctl ------------------------------------------------------------------------------

    def _command(self, *args: str) -> list[str]:
        cmd = [PG_AUTOCTL, *args]
        if self._user is not None:
            cmd = ["runuser", "-u", self._user, "--", "env", *(f"{k}={v}" for k, v in self.env.items()), *cmd]
        return cmd

    def _run(self, *args: str, timeout: float = 120.0) -> str:
        done = subprocess.run(
            self._command(*args),
            check=False,
            env=self.env,
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if done.returncode != 0:
            raise RuntimeError(f"pg_autoctl {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def _keeper(self, name: str, *args: str) -> None:
        log = (self.root / f"{name}.log").open("ab")
        self.keepers[name] = subprocess.Popen(
            self._command(*args), env=self.env, cwd=self.root, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()

    def pgdata(self, name: str) -> Path:
        """The data folder of node `name` (or of `monitor`)."""
        return self.root / name

    @property
    def monitor_url(self) -> str:
        """The monitor's database, as the `postgres` superuser over TCP (trust on loopback)."""
        return f"host=127.0.0.1 port={self.monitor_port} user=postgres dbname=pg_auto_failover"

    def _create_monitor(self) -> None:
        self._run(
            "create", "monitor", "--pgctl", str(self.pg_ctl), "--pgdata", str(self.pgdata("monitor")),
            "--pgport", str(self.monitor_port), "--hostname", "127.0.0.1", "--auth", "trust", "--no-ssl",
        )  # fmt: skip
        self._keeper("monitor", "run", "--pgdata", str(self.pgdata("monitor")))
        deadline = time.monotonic() + 60
        while True:
            try:
                with psycopg.connect(self.monitor_url, autocommit=True, connect_timeout=2) as conn:
                    for name, value in MONITOR_SETTINGS.items():
                        conn.execute(f"ALTER SYSTEM SET {name} = {int(value)}")
                    conn.execute("SELECT pg_reload_conf()")
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)  # the monitor's postgres is starting

    def _add_node(self, name: str) -> None:
        port = free_port()
        self.ports[name] = port
        monitor = f"postgres://autoctl_node@127.0.0.1:{self.monitor_port}/pg_auto_failover?sslmode=disable"
        self._run(
            "create", "postgres", "--pgctl", str(self.pg_ctl), "--pgdata", str(self.pgdata(name)),
            "--pgport", str(port), "--hostname", "127.0.0.1", "--listen", "127.0.0.1", "--name", name,
            "--monitor", monitor, "--auth", "trust", "--no-ssl",
        )  # fmt: skip
        self._keeper(name, "run", "--pgdata", str(self.pgdata(name)))

    # -- looking at it -----------------------------------------------------------------------------------

    def uri(self) -> str:
        """The formation's URI exactly as `pg_autoctl show uri --formation default` prints it."""
        return self._run("show", "uri", "--formation", "default", "--pgdata", str(self.pgdata("monitor"))).strip()

    def states(self) -> dict[str, tuple[str, str]]:
        """Node name -> (reported state, assigned state), from `pg_autoctl show state --json`."""
        out = self._run("show", "state", "--json", "--pgdata", str(self.pgdata("monitor")))
        rows: list[dict[str, Any]] = json.loads(out)
        return {r["nodename"]: (r["current_group_state"], r["assigned_group_state"]) for r in rows}

    def wait_for_states(self, wanted: dict[str, str], timeout: float = 180.0) -> None:
        """Block until each named node reports (and is assigned) the wanted state."""
        deadline = time.monotonic() + timeout
        while True:
            states = self.states()
            if all(states.get(name) == (state, state) for name, state in wanted.items()):
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"formation did not reach {wanted}: {states}")
            time.sleep(0.3)  # polling the monitor, bounded by the deadline

    def primary(self) -> str:
        """The name of the node that is the writable primary, as reported to and assigned by the monitor.

        A dead primary keeps its last reported state ("primary") while its assigned state moves on.
        """
        for name, (reported, assigned) in self.states().items():
            if reported == assigned and reported in ("single", "primary", "wait_primary"):
                return name
        raise AssertionError(f"no primary: {self.states()}")

    def postmaster_pid(self, name: str) -> int:
        """The pid of node `name`'s postmaster, from its postmaster.pid."""
        return int((self.pgdata(name) / "postmaster.pid").read_text().split("\n", 1)[0])

    def backend_pids(self, name: str) -> set[int]:
        """The pids of the client backends on node `name` right now."""
        url = f"host=127.0.0.1 port={self.ports[name]} user=postgres dbname=postgres"
        with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
            rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE backend_type = 'client backend'").fetchall()
        return {int(r[0]) for r in rows}

    # -- breaking it -------------------------------------------------------------------------------------

    def kill_node(self, name: str) -> tuple[float, float]:
        """SIGKILL node `name`'s keeper processes, then its postmaster: the node is gone, nothing restarts it.

        Returns:
            `time.monotonic()` just after the postmaster was killed, and once every process it had (the
            backends, which exit when they see their postmaster is gone) has exited: from then on no
            session can be answered by this node.
        """
        postmaster = self.postmaster_pid(name)
        backends = _children(postmaster)
        keeper = self.keepers[name]
        for pid in [keeper.pid, *_children(keeper.pid)]:
            if pid != postmaster and pid not in backends:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        os.kill(postmaster, signal.SIGKILL)
        killed = time.monotonic()
        deadline = killed + 60
        while any(Path(f"/proc/{pid}").exists() for pid in [postmaster, *backends]):
            assert time.monotonic() < deadline, "the killed node's backends did not exit"
            time.sleep(0.005)  # polling the process table, bounded
        gone = time.monotonic()
        keeper.wait(10)
        return killed, gone

    def close(self) -> None:
        """Stop every keeper still running (fast shutdown of its postgres), then delete the folder."""
        for name, keeper in reversed(list(self.keepers.items())):
            if keeper.poll() is None:
                with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                    self._run("stop", "--pgdata", str(self.pgdata(name)), timeout=60)
                try:
                    keeper.wait(60)
                except subprocess.TimeoutExpired:
                    for pid in [*_children(keeper.pid), keeper.pid]:
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(pid, signal.SIGKILL)
                    keeper.wait(10)
        shutil.rmtree(self.root, ignore_errors=True)
