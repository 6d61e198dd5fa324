"""A prefetched claim is checked before its handler starts (issue #11 item 3), on real PostgreSQL.

The issue's example: a stalled worker ran a queued claim for an effect another worker had finished 18 s
earlier. Here a worker with one handler slot is stuck on a blocking effect while a second effect waits,
claimed, in its queue; its lease ends (seen on the database's clock) and another worker takes the row and
finishes it. When the first worker gets to the queued claim, it must not run the handler again.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from ironflow_py import EffectRuntime, PostgresStore, WorkflowService
from tests.effect_app import Job, Start, make_registry


def wait_for(condition: Any, what: str, rounds: int = 3000) -> None:
    pause = threading.Event()
    for _ in range(rounds):
        if condition():
            return
        pause.wait(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_queued_claim_that_expired_and_was_finished_elsewhere_is_not_run_again(
    pg_store: PostgresStore, admin: psycopg.Connection[Any], schema: str, tmp_path: Path
) -> None:
    service = WorkflowService(pg_store, workflows=[Job])
    service.execute(Start("stuck", 1, "block_first"))  # attempt 1 waits for the file "never"
    service.execute(Start("queued", 1, "reply_traced"))
    slow = EffectRuntime(
        service, make_registry(tmp_path), handle_signals=False, concurrency=1, lease=2.0, listen=False, worker_id="slow"
    )
    thread = threading.Thread(target=slow.run)
    thread.start()
    outbox = sql.Identifier(schema)
    try:
        wait_for((tmp_path / "started.log").exists, "the blocking handler to start")

        def queued_lease_over() -> bool:
            row = admin.execute(
                sql.SQL(
                    "SELECT locked_by = 'slow' AND locked_until < clock_timestamp() FROM {}.outbox"
                    " WHERE workflow_id = 'queued'"
                ).format(outbox)
            ).fetchone()
            return bool(row and row[0])

        wait_for(queued_lease_over, "the queued claim's lease to end")  # it was claimed, is still queued
        other = EffectRuntime(service, make_registry(tmp_path), handle_signals=False, worker_id="other", listen=False)
        assert other.run_once() == 2  # takes the queued row, and the stuck one (its attempt 2 returns)
        assert service.state("job", "queued").recorded == (0,)
        (tmp_path / "never").touch()  # the stuck handler returns; the slow worker reaches its queued claim
        wait_for(lambda: not slow._inflight, "the slow worker to drain its queue")
    finally:
        (tmp_path / "never").touch()
        slow.stop()
        thread.join(30)
    returned = (tmp_path / "returned.log").read_text().splitlines()
    assert len(returned) == 1, returned  # the handler ran once, on the other worker
    assert service.state("job", "queued").recorded == (0,)  # applied once
