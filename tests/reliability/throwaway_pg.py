"""A PostgreSQL cluster of the test's own, on a free loopback port, that the test may stop and restart.

Made with the system's `initdb`/`pg_ctl` (the Debian packages' /usr/lib/postgresql/N/bin), never the shared
server. Host connections need a password (scram-sha-256), so a wrong password really is refused. As root
the server runs as the `postgres` user, as PostgreSQL requires.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import psycopg

USER = "ironflow_test"
PASSWORD = "s3cret-Pa55"


def _bin_dir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def available() -> bool:
    """Whether this machine can make a throwaway cluster (the system PostgreSQL binaries exist)."""
    return _bin_dir() is not None and (os.getuid() != 0 or _has_user("postgres"))


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ThrowawayCluster:
    """initdb + pg_ctl start on a free port; `stop()`/`start()` for outages; `close()` removes it all."""

    def __init__(self) -> None:
        bin_dir = _bin_dir()
        assert bin_dir is not None
        self.bin = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="ironflow-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self._as_postgres = os.getuid() == 0
        if self._as_postgres:
            entry = pwd.getpwnam("postgres")
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth-local=trust", "--auth-host=scram-sha-256")
        conf = [
            f"port = {self.port}",
            "listen_addresses = '127.0.0.1'",
            f"unix_socket_directories = '{self.root}'",
            "fsync = off",
            "max_connections = 50",
        ]
        with (self.data / "postgresql.conf").open("a") as f:
            f.write("\n".join(conf) + "\n")
        self.start()
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f"CREATE ROLE {USER} LOGIN SUPERUSER PASSWORD '{PASSWORD}'")

    def _run(self, tool: str, *args: str) -> None:
        cmd = [str(self.bin / tool), *args]
        if self._as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)

    @property
    def admin_url(self) -> str:
        """Trusted superuser over the cluster's Unix socket (for setting up roles)."""
        return f"host={self.root} port={self.port} user=postgres dbname=postgres"

    def url(self, password: str = PASSWORD) -> str:
        """A TCP URL for the password user."""
        return f"postgresql://{USER}:{password}@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "log"), "-w", "-t", "60", "start")

    def stop(self) -> None:
        """Fast shutdown (every session is ended), waiting until the server is down."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop")

    def close(self) -> None:
        """Stop the server if it runs and delete its files."""
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
