"""Dead-lettered effects: list, count, retry (with a fresh attempt count) and discard them."""

from __future__ import annotations

from collections.abc import Sequence

from ironflow_py.clock import Clock, SystemClock
from ironflow_py.errors import NotFound
from ironflow_py.records import EffectInfo
from ironflow_py.store import postgres_admin
from ironflow_py.store.postgres import PostgresStore


class DeadLetters:
    """Operations on effects that failed for good (outbox rows whose status is `dead`; design/effects.md).

    Args:
        store: The PostgreSQL store holding the outbox.
        clock: The clock a retried effect becomes due by (default: the wall clock in UTC); use the effect
            workers' clock.
    """

    def __init__(self, store: PostgresStore, *, clock: Clock | None = None) -> None:
        self.store = store
        self.clock: Clock = clock or SystemClock()

    def list(self, *, limit: int = 100, after_id: int = 0) -> Sequence[EffectInfo]:
        """Dead effects, oldest first, starting after `after_id` (keyset pagination).

        Args:
            limit: At most this many.
            after_id: Only effects whose outbox id is greater (0: from the start); pass the last id seen.

        Returns:
            The rows with their last error and attempt count.

        Raises:
            StoreError: The database could not be reached or refused the query.
        """
        return postgres_admin.dead_letters(self.store, limit=limit, after_id=after_id)

    def count(self) -> int:
        """How many effects are dead.

        Returns:
            The count.

        Raises:
            StoreError: The database could not be reached or refused the query.
        """
        return postgres_admin.count_dead_letters(self.store)

    def retry(self, effect_id: int) -> None:
        """Make a dead effect pending again with zero attempts, due now; a worker picks it up at once.

        Its idempotency key is unchanged, so the downstream service can still recognise a repeat.

        Args:
            effect_id: The outbox id of the dead effect.

        Raises:
            NotFound: No dead effect has that id.
            StoreError: The database could not be reached or refused the statement.
        """
        if not postgres_admin.retry_dead_letter(self.store, effect_id, self.clock.now()):
            raise NotFound(f"effect {effect_id} is not a dead letter")

    def discard(self, effect_id: int) -> None:
        """Delete a dead effect for good.

        Args:
            effect_id: The outbox id of the dead effect.

        Raises:
            NotFound: No dead effect has that id.
            StoreError: The database could not be reached or refused the statement.
        """
        if not postgres_admin.discard_dead_letter(self.store, effect_id):
            raise NotFound(f"effect {effect_id} is not a dead letter")
