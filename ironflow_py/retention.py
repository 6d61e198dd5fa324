"""Retention: how long finished rows are kept, and what a prune removed (design/retention.md).

Pure values: the policy a pruner follows (`RetentionPolicy`), what to do with a closed instance
(`ClosedMode`), and the count of what one prune removed (`PruneReport`). The pruning itself is a store port
(`store.base.Pruner`): `ironflow-py prune`, `PostgresStore.pruner(...)` and `EffectRuntime(retention=...)`.
"""

from __future__ import annotations

import enum
from datetime import timedelta
from typing import Any

import attrs


class ClosedMode(enum.StrEnum):
    """What pruning does to a closed instance once its retention has passed.

    - `tombstone`: its events, input keys, timers, snapshot and finished effects are deleted; the instance
      row and its outcome stay (marked `pruned_at`), so a later input still gets `already_completed` and
      `service.result` still answers. The id is never reused.
    - `archive`: as `tombstone`, but its events and input keys are first copied to `events_archive` and
      `input_keys_archive` (PostgreSQL tables in the same schema), for audits and replays by hand.
    - `delete`: everything goes, the instance row too; the id may then start a fresh instance, which never
      meets a key, timer, effect or snapshot of the old one. Instances with a dead effect are kept unless
      the policy allows dead effects to be pruned.
    """

    TOMBSTONE = "tombstone"
    ARCHIVE = "archive"
    DELETE = "delete"


def _non_negative(_: Any, attribute: attrs.Attribute[Any], value: timedelta | None) -> None:
    if value is not None and (not isinstance(value, timedelta) or value < timedelta(0)):
        raise ValueError(f"RetentionPolicy.{attribute.name} must be a timedelta >= 0 or None, not {value!r}")


def _positive(_: Any, attribute: attrs.Attribute[Any], value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"RetentionPolicy.{attribute.name} must be an int >= 1, not {value!r}")


def _positive_interval(_: Any, attribute: attrs.Attribute[Any], value: timedelta) -> None:
    if not isinstance(value, timedelta) or value <= timedelta(0):
        raise ValueError(f"RetentionPolicy.{attribute.name} must be a timedelta > 0, not {value!r}")


@attrs.frozen
class RetentionPolicy:
    """How long finished rows are kept before a pruner removes them.

    Every duration is counted from the row's close time on the store's clock (PostgreSQL: the database
    server's `now()`; a `ManualClock` in tests): an effect's `completed_at`, an instance's `closed_at`.
    None keeps those rows forever. Fired and cancelled timers, and superseded snapshots, are never kept
    (the deciding transaction deletes or replaces them), so they need no duration of their own; a closed
    instance's remaining timers and its last snapshot go with the instance.

    Attributes:
        done_effects: Keep `done` and `cancelled` outbox rows this long (default 7 days).
        dead_effects: Keep dead-lettered effects this long; None (the default) keeps them until an operator
            retries or discards them, since dead letters are what operators inspect.
        closed_instances: Keep a closed instance's history (events, input keys, timers, snapshot, finished
            effects) this long after it closed (default 30 days); then apply `closed_mode`.
        closed_mode: What pruning does to a closed instance: tombstone (the default), archive or delete.
        previous_runs: Keep the events of an open instance's earlier runs (`Decision.continue_as_new`) this
            long after the run that ended them (default 30 days); then delete them (archive mode: move them
            to `events_archive`), up to the marker that ended that run. None keeps them forever.
        batch_size: At most this many rows of each kind (effects, dead effects, instances) per batch; one
            batch is one transaction.
        interval: How often an `EffectRuntime` given this policy prunes (default 5 minutes).

    Raises:
        ValueError: A duration is negative or not a timedelta, `batch_size` is below 1, `interval` is not
            positive.
    """

    done_effects: timedelta | None = attrs.field(default=timedelta(days=7), validator=_non_negative)
    dead_effects: timedelta | None = attrs.field(default=None, validator=_non_negative)
    closed_instances: timedelta | None = attrs.field(default=timedelta(days=30), validator=_non_negative)
    closed_mode: ClosedMode = attrs.field(default=ClosedMode.TOMBSTONE, converter=ClosedMode)
    previous_runs: timedelta | None = attrs.field(default=timedelta(days=30), validator=_non_negative)
    batch_size: int = attrs.field(default=500, validator=_positive)
    interval: timedelta = attrs.field(default=timedelta(minutes=5), validator=_positive_interval)


@attrs.frozen
class PruneReport:
    """What one prune removed, by kind of row; reports add up (`a + b`).

    Attributes:
        effects: `done` and `cancelled` outbox rows deleted (on their own, or with their instance).
        dead_effects: dead outbox rows deleted.
        instances: closed instances pruned (tombstoned, archived or deleted).
        events: events deleted (in archive mode: moved to `events_archive`).
        input_keys: input keys deleted (in archive mode: moved to `input_keys_archive`).
        timers: timers of pruned instances deleted.
        snapshots: snapshots of pruned instances deleted.
        runs: open instances whose earlier runs' events were pruned (their events count in `events`).
        batches: transactions committed.
        busy: True when another pruner held the prune lock, so this one did nothing.
    """

    effects: int = 0
    dead_effects: int = 0
    instances: int = 0
    events: int = 0
    input_keys: int = 0
    timers: int = 0
    snapshots: int = 0
    batches: int = 0
    busy: bool = False
    runs: int = 0

    @property
    def rows(self) -> int:
        """Every row removed, of every kind (an instance row that stays as a tombstone counts once)."""
        return (
            self.effects
            + self.dead_effects
            + self.instances
            + self.events
            + self.input_keys
            + self.timers
            + self.snapshots
        )

    def full(self, policy: RetentionPolicy) -> bool:
        """Whether this batch hit `policy.batch_size` for some kind of row, so another batch may find more.

        Args:
            policy: The policy the batch ran with.

        Returns:
            True when effects, dead effects, instances or runs reached the batch size.
        """
        return max(self.effects, self.dead_effects, self.instances, self.runs) >= policy.batch_size

    def __add__(self, other: PruneReport) -> PruneReport:
        """The sum of two reports (`busy` if either was).

        Args:
            other: The report to add.

        Returns:
            A new report with every count added.
        """
        return PruneReport(
            self.effects + other.effects,
            self.dead_effects + other.dead_effects,
            self.instances + other.instances,
            self.events + other.events,
            self.input_keys + other.input_keys,
            self.timers + other.timers,
            self.snapshots + other.snapshots,
            self.batches + other.batches,
            self.busy or other.busy,
            self.runs + other.runs,
        )
