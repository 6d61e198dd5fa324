"""Dead-lettered effects: list, count, retry (with a fresh attempt count) and discard them."""

from __future__ import annotations

from collections.abc import Sequence

from psycopg.rows import args_row

from ironflow_py.clock import Clock, SystemClock
from ironflow_py.errors import NotFound
from ironflow_py.records import EffectInfo
from ironflow_py.store.postgres import PostgresStore


class DeadLetters:
    """Operations on the outbox rows whose status is `dead` (PostgreSQL; see design/effects.md)."""

    def __init__(self, store: PostgresStore, *, clock: Clock | None = None) -> None:
        self.store = store
        self.clock: Clock = clock or SystemClock()

    def list(self, *, limit: int = 100, after_id: int = 0) -> Sequence[EffectInfo]:
        """Dead letters oldest first, starting after `after_id` (keyset pagination)."""
        with self.store.connection() as conn:
            cur = conn.cursor(row_factory=args_row(EffectInfo))
            return cur.execute(self.store.q["dead_letters"], {"limit": limit, "after_id": after_id}).fetchall()

    def count(self) -> int:
        with self.store.connection() as conn:
            row = conn.execute(self.store.q["count_dead_letters"]).fetchone()
        assert row is not None
        return int(row[0])

    def retry(self, effect_id: int) -> None:
        """Make a dead effect pending again with zero attempts; a worker picks it up at once."""
        params = {"id": effect_id, "now": self.clock.now(), "channel": self.store.channel}
        with self.store.connection() as conn:
            if conn.execute(self.store.q["retry_dead_letter"], params).fetchone() is None:
                raise NotFound(f"effect {effect_id} is not a dead letter")

    def discard(self, effect_id: int) -> None:
        """Delete a dead effect for good."""
        with self.store.connection() as conn:
            if conn.execute(self.store.q["discard_dead_letter"], {"id": effect_id}).fetchone() is None:
                raise NotFound(f"effect {effect_id} is not a dead letter")
