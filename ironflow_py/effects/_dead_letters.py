"""Dead-lettered effects: list, count, retry (with a fresh attempt count) and discard them."""

from __future__ import annotations

from collections.abc import Sequence

from ironflow_py.clock import Clock, SystemClock
from ironflow_py.errors import NotFound
from ironflow_py.records import EffectInfo
from ironflow_py.store import postgres_admin
from ironflow_py.store.postgres import PostgresStore


class DeadLetters:
    """Operations on the outbox rows whose status is `dead` (PostgreSQL; see design/effects.md)."""

    def __init__(self, store: PostgresStore, *, clock: Clock | None = None) -> None:
        self.store = store
        self.clock: Clock = clock or SystemClock()

    def list(self, *, limit: int = 100, after_id: int = 0) -> Sequence[EffectInfo]:
        """Dead letters oldest first, starting after `after_id` (keyset pagination)."""
        return postgres_admin.dead_letters(self.store, limit=limit, after_id=after_id)

    def count(self) -> int:
        return postgres_admin.count_dead_letters(self.store)

    def retry(self, effect_id: int) -> None:
        """Make a dead effect pending again with zero attempts; a worker picks it up at once."""
        if not postgres_admin.retry_dead_letter(self.store, effect_id, self.clock.now()):
            raise NotFound(f"effect {effect_id} is not a dead letter")

    def discard(self, effect_id: int) -> None:
        """Delete a dead effect for good."""
        if not postgres_admin.discard_dead_letter(self.store, effect_id):
            raise NotFound(f"effect {effect_id} is not a dead letter")
