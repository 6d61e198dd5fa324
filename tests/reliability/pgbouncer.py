"""A real PgBouncer of the test's own (Debian's `pgbouncer` package), on a free loopback port, in front of the
test database, in transaction pooling mode unless told otherwise.

As root it runs as another user (PgBouncer refuses to run as root): the owner of the server's Unix-socket
folder when the URL names one (the embedded server's), else `postgres`. Clients connect without a
password (`auth_type = trust`); PgBouncer logs in to the server with the test URL's user and password.
"""

from __future__ import annotations

import contextlib
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

from psycopg.conninfo import conninfo_to_dict, make_conninfo

BINARY = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"


def available() -> bool:
    """Whether the pgbouncer binary is installed (and, as root, a `postgres` user exists to run it)."""
    if not os.path.exists(BINARY):
        return False
    if os.getuid() != 0:
        return True
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return False
    return True


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PgBouncer:
    """pgbouncer started on a free port in front of `server_url`; `url` is the client URL, `close()` stops it.

    Args:
        server_url: The PostgreSQL server (its host, port, user, password and database are used).
        pool_mode: `transaction` (the mode that breaks session state), `session` or `statement`.
        pool_size: Server connections per (database, user) pair.
    """

    def __init__(self, server_url: str, *, pool_mode: str = "transaction", pool_size: int = 8) -> None:
        params = {k: str(v) for k, v in conninfo_to_dict(server_url).items()}
        self.user = params.get("user", "postgres")
        self.dbname = params.get("dbname", self.user)
        host = params.get("host", "127.0.0.1")
        port = params.get("port", "5432")
        self.root = Path(tempfile.mkdtemp(prefix="ironflow-pgbouncer-"))
        self.port = _free_port()
        password = params.get("password", "")
        (self.root / "users.txt").write_text(f'"{self.user}" "{password}"\n')
        server = f"host={host} port={port} dbname={self.dbname}"
        (self.root / "pgbouncer.ini").write_text(
            "\n".join(
                [
                    "[databases]",
                    f"{self.dbname} = {server}",
                    "[pgbouncer]",
                    "listen_addr = 127.0.0.1",
                    f"listen_port = {self.port}",
                    "unix_socket_dir =",
                    "auth_type = trust",
                    f"auth_file = {self.root / 'users.txt'}",
                    f"pool_mode = {pool_mode}",
                    f"default_pool_size = {pool_size}",
                    "max_client_conn = 2000",
                    f"logfile = {self.root / 'pgbouncer.log'}",
                    f"pidfile = {self.root / 'pgbouncer.pid'}",
                    "",
                ]
            )
        )
        cmd = [BINARY, str(self.root / "pgbouncer.ini")]
        as_user: dict[str, Any] = {}
        if os.getuid() == 0:
            # A socket folder is often private to the server's user (0700): run as that user to reach it.
            entry = pwd.getpwuid(os.stat(host).st_uid) if host.startswith("/") else pwd.getpwnam("postgres")
            for path in [self.root, *self.root.iterdir()]:
                os.chown(path, entry.pw_uid, entry.pw_gid)
            # The process itself switches user (no `runuser` in between), so `close()` signals PgBouncer.
            as_user = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
        self.process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **as_user)
        self._wait_listening()

    def _wait_listening(self) -> None:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"pgbouncer exited with {self.process.returncode}: {self.log()}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return
            time.sleep(0.05)
        raise RuntimeError(f"pgbouncer did not listen on port {self.port}: {self.log()}")

    @property
    def url(self) -> str:
        """The client URL: the test database through this PgBouncer."""
        return make_conninfo("", host="127.0.0.1", port=self.port, user=self.user, dbname=self.dbname)

    def log(self) -> str:
        """PgBouncer's log so far (for failure messages)."""
        path = self.root / "pgbouncer.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def close(self) -> None:
        """Stop PgBouncer (SIGINT: immediate shutdown) and delete its files."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.root, ignore_errors=True)
