"""A primary and a streaming replica of the test's own: a `ThrowawayCluster` and a hot standby made from it
with `pg_basebackup -R` (streaming over TCP on loopback), on free loopback ports. Used by the read-replica
tests and by `python -m benchmarks replica`.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time

import psycopg

from tests.reliability.throwaway_pg import PASSWORD, USER, ThrowawayCluster, _free_port, available

__all__ = ["ReplicaPair", "available"]


class ReplicaPair:
    """`primary` (a ThrowawayCluster) and a hot standby streaming from it; `close()` removes both."""

    def __init__(self) -> None:
        self.primary = ThrowawayCluster()
        self.replica_data = self.primary.root / "replica"
        self.replica_port = _free_port()
        try:
            self._run(
                "pg_basebackup",
                "-D",
                str(self.replica_data),
                "-d",
                f"host=127.0.0.1 port={self.primary.port} user={USER} password={PASSWORD}",
                "-R",  # standby.signal and primary_conninfo: start as a streaming standby
                "-X",
                "stream",
                "-c",
                "fast",
            )
            with (self.replica_data / "postgresql.conf").open("a") as f:
                f.write(f"port = {self.replica_port}\nhot_standby = on\nhot_standby_feedback = on\n")
            self.start_replica()
            self._wait_streaming()
        except BaseException:
            self.primary.close()
            raise

    def _run(self, tool: str, *args: str) -> None:
        cmd = [str(self.primary.bin / tool), *args]
        if os.getuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, timeout=300)

    def start_replica(self) -> None:
        """Start the standby and wait until it accepts connections."""
        log = self.primary.root / "replica.log"
        self._run("pg_ctl", "-D", str(self.replica_data), "-l", str(log), "-w", "-t", "120", "start")

    def _wait_streaming(self) -> None:
        """Until the primary lists the standby's WAL sender as streaming (at most 60 s)."""
        deadline = time.monotonic() + 60
        with psycopg.connect(self.primary.admin_url, autocommit=True) as conn:
            while time.monotonic() < deadline:
                row = conn.execute("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'").fetchone()
                if row is not None and row[0] > 0:
                    return
                time.sleep(0.05)
        raise RuntimeError("the standby did not start streaming within 60 s")

    @property
    def primary_url(self) -> str:
        """The primary, over TCP, as the password user."""
        return self.primary.url()

    @property
    def replica_url(self) -> str:
        """The standby, over TCP, as the password user (the role came over with the base backup)."""
        return f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{self.replica_port}/postgres"

    def pause_replay(self) -> None:
        """Stop applying WAL on the standby (it keeps receiving it): reads there stay where they are."""
        with psycopg.connect(self.replica_url, autocommit=True) as conn:
            conn.execute("SELECT pg_wal_replay_pause()")

    def resume_replay(self) -> None:
        """Apply WAL again."""
        with psycopg.connect(self.replica_url, autocommit=True) as conn:
            conn.execute("SELECT pg_wal_replay_resume()")

    def close(self) -> None:
        """Stop the standby, then the primary, and delete their files."""
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run("pg_ctl", "-D", str(self.replica_data), "-m", "immediate", "-w", "-t", "60", "stop")
        self.primary.close()
