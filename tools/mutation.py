"""`python -m tools.mutation`: break each guarantee on purpose and check that some test notices.

Every mutation below is a small edit to the SQL or to a key Python line that holds a guarantee (a fence
condition, a lock, SKIP LOCKED, a NOTIFY, the projection cursor, the input-key check, the snapshot rules).
The tool copies the repository to a temporary folder once, then for each mutation: applies the edit to the
copy, runs only the tests mapped to it (with a timeout), and puts the file back. A mutation is *killed* when
a test fails (or the run times out), and *survives* when every selected test passes: a surviving mutation of
a guarantee is a missing test. It prints one table at the end (see tools/README.md).

Run it by hand like a benchmark, never in the test suite. The database is IRONFLOW_TEST_DATABASE_URL (or
IRONFLOW_DATABASE_URL), else an embedded server in .ironflow/mutation-postgres started once for the run.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import attrs

ROOT = Path(__file__).resolve().parents[1]
SQL = "ironflow_py/**/*.sql"
NAME_LINE = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


@attrs.frozen
class Edit:
    """Replace `old` by `new` where it occurs exactly once: in the files matching `files` (a glob relative to
    the repository), and within the `-- name: query` block of a .sql file when `query` is given."""

    files: str
    old: str
    new: str
    query: str | None = None


@attrs.frozen
class Mutation:
    name: str
    #: what kind of guarantee it breaks: fence, lock, skip-locked, notify, cursor, key, snapshot, claim, upcast, stall
    kind: str
    #: (an edit of a migration must target the definition in force: a later migration may replace it)
    edits: tuple[Edit, ...]
    #: pytest arguments selecting the tests that must notice (paths, node ids; missing paths are dropped)
    tests: tuple[str, ...]
    #: a pytest `-k` expression narrowing the selection
    keyword: str | None = None


class NotApplicable(Exception):
    """The code no longer contains the text a mutation edits: the mutation list needs updating."""


# -- the test selections ---------------------------------------------------------------------------------------

#: the contract files about claimed rows (the whole contract folder is several minutes per mutation)
CONTRACT = (
    "tests/contract/test_outbox_contract.py",
    "tests/contract/test_settle_contract.py",
    "tests/contract/test_settled_rows.py",
)
DECISIONS = ("tests/contract/test_store_contract.py", "tests/contract/test_decide_agreement.py")
EFFECTS = ("tests/integration/test_effects_runtime.py", "tests/integration/test_claims.py")
TIMERS = ("tests/integration/test_timers.py", "tests/integration/test_claims.py")
DECIDER = ("tests/integration/test_decider_postgres.py",)
LOCK_KEYS = ("tests/integration/test_lock_keys.py",)
PROJECTIONS = ("tests/integration/projections",)
LEASES = ("tests/reliability/test_projection_leases.py",)
SNAPSHOTS = ("tests/contract/test_snapshots.py", "tests/integration/test_state_cache.py")
GENERATION = ("tests/contract/test_snapshot_generation.py",)
UPCASTING = ("tests/unit/test_upcasting.py", "tests/contract/test_upcasting.py")
VERSIONING = ("tests/contract/test_evolve_change.py", "tests/integration/test_versioning.py")
VERSIONS = ("tests/contract/test_versions_contract.py", "tests/integration/test_versions_worker.py")
RUNS = ("tests/contract/test_continue_as_new.py",)
CRASH = ("tests/reliability/test_worker_processes.py",)
REPLICA = ("tests/contract/test_replica_reads.py", "tests/reliability/test_read_replica.py")
BUCKETS = ("tests/integration/test_buckets.py",)
CHILDREN = (
    "tests/unit/test_composition.py",
    "tests/contract/test_children_contract.py",
    "tests/integration/test_children.py",
)
CHILDREN_CRASH = ("tests/reliability/test_children_crash.py",)
STALLS = ("tests/integration/test_stall_deadline.py",)
STALL_PROXY = ("tests/reliability/test_stalls.py",)
RETENTION = (
    "tests/contract/test_prune_contract.py",
    "tests/integration/test_retention.py",
    "tests/reliability/test_prune_kill.py",
)


def _sql(query: str, old: str, new: str = "") -> Edit:
    return Edit(SQL, old, new, query)


def _py(path: str, old: str, new: str) -> Edit:
    return Edit(path, old, new)


def _m018(old: str, new: str) -> Edit:
    """An edit of migration 018: instance_lock_key and lock_and_load (the definition in force; 016's is replaced)."""
    return Edit("ironflow_py/**/migrations/018_schema_lock_keys.sql", old, new)


def _m020(old: str, new: str) -> Edit:
    """An edit of migration 020: the lock_and_load in force (it replaces 018's) and the snapshot generation."""
    return Edit("ironflow_py/**/migrations/020_snapshot_generation.sql", old, new)


def _drop(query: str, condition: str) -> Edit:
    """Drop one `AND condition` of a WHERE clause."""
    return _sql(query, f" AND {condition}")


def _m021(old: str, new: str) -> Edit:
    """An edit of migration 021: instance_bucket, which every statement writing a bucket calls."""
    return Edit("ironflow_py/**/migrations/021_written_buckets.sql", old, new)


def _fence(query: str, tests: Sequence[str], *, alias: str = "", token: str = "%(token)s") -> list[Mutation]:
    """The two halves of a claimed-row fence: the owner and the claim token."""
    return [
        Mutation(
            f"{query}: drop {alias}locked_by", "fence", (_drop(query, f"{alias}locked_by = %(worker)s"),), tuple(tests)
        ),
        Mutation(
            f"{query}: drop {alias}claim_token",
            "fence",
            (_drop(query, f"{alias}claim_token = {token}"),),
            tuple(tests),
        ),
    ]


EFFECT_TESTS = (*CONTRACT, *EFFECTS)
TIMER_TESTS = (*CONTRACT, *TIMERS)


def mutations() -> list[Mutation]:
    """Every mutation the tool knows, in the order the table prints them."""
    found: list[Mutation] = [
        # -- fences on claimed effect rows: a worker whose claim was lost must change nothing ---------------
        *_fence("settle_effect_done", EFFECT_TESTS),
        Mutation(
            "settle_effect_done: drop status",
            "fence",
            (_drop("settle_effect_done", "status = 'pending'"),),
            EFFECT_TESTS,
        ),
        *_fence("settle_effect_dead", EFFECT_TESTS),
        Mutation(
            "settle_effect_dead: drop status",
            "fence",
            (_drop("settle_effect_dead", "status = 'pending'"),),
            EFFECT_TESTS,
        ),
        *_fence("complete_effects", EFFECT_TESTS, alias="o.", token="c.token"),
        *_fence("retry_effect_later", EFFECT_TESTS),
        *_fence("release_effects", EFFECT_TESTS, alias="o.", token="c.token"),
        *_fence("heartbeat_effect", EFFECT_TESTS),
        Mutation(
            "heartbeat_effect: write nothing, return a new lease end",
            "fence",
            (
                _sql(
                    "heartbeat_effect",
                    "SET locked_until = coalesce(%(now)s::timestamptz, now()) + %(lease)s,\n"
                    "    available_at = coalesce(%(now)s::timestamptz, now()) + %(lease)s\n",
                    "SET locked_until = locked_until\n",
                ),
                _sql(
                    "heartbeat_effect",
                    "RETURNING locked_until",
                    "RETURNING coalesce(%(now)s::timestamptz, now()) + %(lease)s",
                ),
            ),
            EFFECT_TESTS,
        ),
        Mutation(
            "heartbeat: ignore a lost claim",
            "fence",
            (_py("ironflow_py/effects/_attempt.py", "if until is None:", "if False:"),),
            EFFECT_TESTS,
        ),
        Mutation(
            "settle: never raise LeaseLost",
            "fence",
            (_py("ironflow_py/store/postgres.py", "params).rowcount != 1:", "params).rowcount != 1 and False:"),),
            (*EFFECT_TESTS, *TIMERS),
        ),
        # -- claims ------------------------------------------------------------------------------------------
        Mutation(
            "claim_effects: drop SKIP LOCKED",
            "skip-locked",
            (_sql("claim_effects", "FOR UPDATE SKIP LOCKED", "FOR UPDATE"),),
            EFFECTS,
        ),
        Mutation(
            "claim_effects: drop FOR UPDATE SKIP LOCKED",
            "skip-locked",
            (_sql("claim_effects", "FOR UPDATE SKIP LOCKED", ""),),
            EFFECTS,
        ),
        Mutation(
            "claim_effects: no attempt count",
            "claim",
            (_sql("claim_effects", ", attempts = o.attempts + 1", ""),),
            EFFECT_TESTS,
        ),
        Mutation(
            "claim_effects: lease not pushed to available_at",
            "claim",
            (_sql("claim_effects", ",\n    available_at = coalesce(%(now)s::timestamptz, now()) + %(lease)s", ""),),
            EFFECT_TESTS,
        ),
        Mutation(
            "claim_timers: drop SKIP LOCKED",
            "skip-locked",
            (_sql("claim_timers", "FOR UPDATE SKIP LOCKED", "FOR UPDATE"),),
            TIMERS,
        ),
        Mutation(
            "claim_timers: drop FOR UPDATE SKIP LOCKED",
            "skip-locked",
            (_sql("claim_timers", "FOR UPDATE SKIP LOCKED", ""),),
            TIMERS,
        ),
        Mutation(
            "claim_timers: ignore live leases",
            "claim",
            (_drop("claim_timers", "(locked_until IS NULL OR locked_until <= coalesce(%(now)s::timestamptz, now()))"),),
            TIMER_TESTS,
        ),
        Mutation(
            "claim_timers: no attempt count",
            "claim",
            (_sql("claim_timers", ", attempts = t.attempts + 1", ""),),
            TIMER_TESTS,
        ),
        # -- fences on claimed timers ------------------------------------------------------------------------
        *_fence("settle_timer_fired", TIMER_TESTS),
        Mutation(
            "write_decision: a rescheduled timer keeps its id",
            "fence",
            (_sql("write_decision", "SET id = EXCLUDED.id, due_at", "SET due_at"),),
            (*TIMER_TESTS, "tests/contract/test_store_contract.py"),
        ),
        *_fence("retry_timer_later", TIMER_TESTS),
        *_fence("release_timers", TIMER_TESTS, alias="t.", token="c.token"),
        Mutation(
            "fire_timer: no settle (unfenced firing)",
            "fence",
            (
                _py(
                    "ironflow_py/effects/_attempt.py",
                    "claim.input_type, claim.payload, settle=settle",
                    "claim.input_type, claim.payload, settle=None",
                ),
            ),
            TIMER_TESTS,
        ),
        Mutation(
            "run_effect: returned input applied without the done fence",
            "fence",
            (
                _py(
                    "ironflow_py/effects/_attempt.py",
                    "outcome = self.service.execute(result, settle=settle)",
                    "outcome = self.service.execute(result)",
                ),
            ),
            (*EFFECT_TESTS, *CRASH),
        ),
        # -- locks ---------------------------------------------------------------------------------------------
        Mutation(
            "lock_instance: no-op",
            "lock",
            (_sql("lock_instance", "SELECT pg_advisory_xact_lock(", "SELECT abs("),),
            DECIDER,
        ),
        Mutation(
            "lock_and_load (020): no lock",
            "lock",
            (_m020("PERFORM pg_advisory_xact_lock(", "PERFORM abs("),),
            DECIDER,
        ),
        Mutation(
            "lock_and_load (020): STABLE, so it reads with the snapshot taken before the lock",
            "lock",
            (_m020("LANGUAGE plpgsql VOLATILE", "LANGUAGE plpgsql STABLE"),),
            DECIDER,
        ),
        Mutation(
            "instance_lock_key (018): without the schema, so two schemas' same type and id share one lock",
            "lock",
            (_m018("hashtextextended({schema_name} || chr(31) || p_type", "hashtextextended(p_type"),),
            LOCK_KEYS,
        ),
        Mutation(
            "prune_pick_instances: the instance lock is not tried (prunes under a running decision)",
            "lock",
            (
                _sql(
                    "prune_pick_instances",
                    "WHERE pg_try_advisory_xact_lock(",
                    "WHERE true OR pg_try_advisory_xact_lock(",
                ),
            ),
            LOCK_KEYS,
        ),
        Mutation(
            "migration_lock: no-op",
            "lock",
            (_sql("migration_lock", "SELECT pg_advisory_xact_lock(", "SELECT abs("),),
            ("tests/integration/test_migrations.py",),
        ),
        Mutation(
            "projection_lead: takes a lease that has not ended",
            "lock",
            (_sql("projection_lead", "WHERE l.expires_at <= now()", "WHERE true"),),
            (*LEASES, *PROJECTIONS),
        ),
        Mutation(
            "projection_lead: the lease never ends (judged a day late)",
            "lock",
            (_sql("projection_lead", "WHERE l.expires_at <= now()", "WHERE l.expires_at <= now() - interval '1 day'"),),
            LEASES,
        ),
        Mutation(
            "projection batch: no fence check when it starts",
            "fence",
            (Edit("ironflow_py/projections/_batch.py", "if fence != track.fence:", "if False:"),),
            LEASES,
        ),
        Mutation(
            "projection_save: unfenced checkpoint save",
            "fence",
            (
                _sql(
                    "projection_save",
                    "\n      AND EXISTS (SELECT 1 FROM {schema}.projection_leases l"
                    " WHERE l.name = %(name)s AND l.fence = %(fence)s)",
                    "",
                ),
            ),
            LEASES,
        ),
        Mutation(
            "projection_renew: unfenced renewal",
            "fence",
            (_sql("projection_renew", "WHERE name = %(name)s AND fence = %(fence)s", "WHERE name = %(name)s"),),
            LEASES,
        ),
        Mutation(
            "projection worker: orjson without the long-digit guard (integers past 64 bits become floats)",
            "codec",
            (Edit("ironflow_py/projections/_worker.py", "_loads = json_loads", "_loads = __import__('orjson').loads"),),
            ("tests/integration/projections/test_worker.py",),
        ),
        Mutation(
            "projection_checkpoint_for_update: no row lock",
            "lock",
            (_sql("projection_checkpoint_for_update", "\nFOR UPDATE", ""),),
            (*PROJECTIONS, "tests/integration/test_projections_cli.py"),
        ),
        # -- wake-ups ------------------------------------------------------------------------------------------
        Mutation(
            "write_decision: no NOTIFY",
            "notify",
            (
                _sql(
                    "write_decision",
                    "CASE WHEN %(notify)s THEN pg_notify(%(channel)s, '') END IS NULL",
                    "%(notify)s::text || %(channel)s IS NULL",
                ),
            ),
            (*EFFECTS, *TIMERS),
        ),
        Mutation(
            "event append trigger: no NOTIFY",
            "notify",
            (
                Edit(
                    "ironflow_py/**/migrations/*.sql",
                    "PERFORM pg_notify(channel, '');",
                    "PERFORM 1;",
                ),
            ),
            PROJECTIONS,
        ),
        Mutation(
            "projection_save: no NOTIFY",
            "notify",
            (_sql("projection_save", "SELECT pg_notify(%(channel)s, name) FROM saved", "SELECT name FROM saved"),),
            PROJECTIONS,
        ),
        Mutation(
            "retry_dead_letter: no NOTIFY",
            "notify",
            (
                _sql(
                    "retry_dead_letter",
                    "SELECT id, pg_notify(%(channel)s, '') IS NULL FROM revived",
                    "SELECT id, true FROM revived",
                ),
            ),
            EFFECTS,
        ),
        Mutation(
            "release: no NOTIFY",
            "notify",
            (
                _py(
                    "ironflow_py/store/postgres_outbox.py",
                    "[c.token for c in claims], now)\n        if released:\n            self.notify()\n"
                    "        return released\n\n    def retry_effect_later",
                    "[c.token for c in claims], now)\n        return released\n\n    def retry_effect_later",
                ),
            ),
            EFFECTS,
        ),
        # -- the projection cursor -----------------------------------------------------------------------------
        Mutation(
            "projection_read: horizon xmin -> xmax",
            "cursor",
            (
                _sql(
                    "projection_read",
                    "e.tx_id < pg_snapshot_xmin(pg_current_snapshot())",
                    "e.tx_id < pg_snapshot_xmax(pg_current_snapshot())",
                ),
            ),
            (*PROJECTIONS, "tests/reliability/test_projection_soak.py"),
        ),
        Mutation(
            "projection_read: no horizon",
            "cursor",
            (_drop("projection_read", "e.tx_id < pg_snapshot_xmin(pg_current_snapshot())"),),
            (*PROJECTIONS, "tests/reliability/test_projection_soak.py"),
        ),
        Mutation(
            "projection_read: cursor > becomes >=",
            "cursor",
            (_sql("projection_read", "WHERE (e.tx_id, e.position) > (", "WHERE (e.tx_id, e.position) >= ("),),
            PROJECTIONS,
        ),
        Mutation(
            "projection_read: order by position only",
            "cursor",
            (_sql("projection_read", "ORDER BY e.tx_id, e.position", "ORDER BY e.position"),),
            (*PROJECTIONS, "tests/reliability/test_projection_soak.py"),
        ),
        Mutation(
            "projection_held_back: never says events are waiting",
            "cursor",
            (_sql("projection_held_back", "WHERE (e.tx_id, e.position) > (c.tx_id, c.position)", "WHERE false"),),
            PROJECTIONS,
        ),
        Mutation(
            "projection worker: a failed batch is not narrowed (its first event takes the blame)",
            "cursor",
            (_py("ironflow_py/projections/_worker.py", "if failure.narrow:", "if False:"),),
            ("tests/integration/projections/test_batch.py",),
        ),
        # -- every named query is checked against the schema ----------------------------------------------------
        Mutation(
            "next_due: a column that does not exist",
            "query",
            (_sql("next_due", "SELECT available_at FROM", "SELECT available_after FROM"),),
            ("tests/integration/test_migrations.py",),
        ),
        # -- input keys ------------------------------------------------------------------------------------------
        Mutation(
            "lock_and_load (018): never finds the key",
            "key",
            (
                Edit(
                    "ironflow_py/**/migrations/018_schema_lock_keys.sql",
                    "AND k.input_key = p_key",
                    "AND k.input_key = p_key AND false",
                ),
            ),
            (*DECISIONS, *DECIDER),
        ),
        Mutation(
            "decider: drop the input-key check",
            "key",
            (
                _py(
                    "ironflow_py/decider.py",
                    "        if key_status is not None:\n            return unchanged(",
                    "        if False:\n            return unchanged(",
                ),
            ),
            (*DECISIONS, *DECIDER),
        ),
        # -- delayed start (design/schedules.md) -----------------------------------------------------------------
        Mutation(
            "decider.delay: drop the scheduling-key check",
            "key",
            (
                _py(
                    "ironflow_py/decider.py",
                    "if key_status is not None:  # this key was scheduled before",
                    "if False:  # this key was scheduled before",
                ),
            ),
            ("tests/contract/test_delayed_start.py",),
        ),
        Mutation(
            "delayed start: delay counted on the caller's clock, not the store's",
            "clock",
            (
                _py(
                    "ironflow_py/_command_handler.py",
                    "(base if base is not None else tx.now()) + delay",
                    "(base if base is not None else now) + delay",
                ),
            ),
            ("tests/integration/test_delayed_start.py",),
        ),
        Mutation(
            "fire_timer: the delayed input runs without its input key",
            "key",
            (
                _py(
                    "ironflow_py/service.py",
                    'delayed, settle, data.get("input_key"))',
                    "delayed, settle, None)",
                ),
            ),
            ("tests/contract/test_delayed_start.py",),
        ),
        # -- schedules, pure (design/schedules.md) ---------------------------------------------------------------
        Mutation(
            "schedule: a wall time in the spring-forward gap is not skipped",
            "schedule",
            (
                _py(
                    "ironflow_py/schedule.py",
                    "continue  # in the spring-forward gap",
                    "pass  # in the spring-forward gap",
                ),
            ),
            ("tests/unit/test_schedule.py",),
        ),
        Mutation(
            "schedule: the repeated autumn hour fires at its second occurrence",
            "schedule",
            (
                _py(
                    "ironflow_py/schedule.py",
                    "naive.replace(tzinfo=zone, fold=0)",
                    "naive.replace(tzinfo=zone, fold=1)",
                ),
            ),
            ("tests/unit/test_schedule.py",),
        ),
        Mutation(
            "schedule: catchup one starts every recent fire time (a burst)",
            "schedule",
            (_py("ironflow_py/schedule.py", "fire = tuple(recent[-1:])", "fire = tuple(recent)"),),
            ("tests/unit/test_schedule.py",),
        ),
        Mutation(
            "schedule: catch-up ignores the window",
            "schedule",
            (_py("ironflow_py/schedule.py", "        if at < horizon:\n", "        if False:\n"),),
            ("tests/unit/test_schedule.py",),
        ),
        Mutation(
            "schedule: overlap skip does not skip",
            "schedule",
            (_py("ironflow_py/schedule.py", 'if policy == "skip":', 'if policy == "never":'),),
            ("tests/unit/test_schedule.py",),
        ),
        Mutation(
            "schedule: jitter not seeded by the schedule's name",
            "schedule",
            (_py("ironflow_py/schedule.py", 'seed = f"{schedule.name}\\x1f', 'seed = f"\\x1f'),),
            ("tests/unit/test_schedule.py",),
        ),
        # -- messages and children (design/composition.md) ------------------------------------------------------
        Mutation(
            "close_relations: a closing child queues no notice",
            "children",
            (_sql("close_relations", "AND parent_id IS NOT NULL", "AND parent_id IS NOT NULL AND false"),),
            CHILDREN,
        ),
        Mutation(
            "close_relations: a closing parent leaves its unstarted children to start",
            "children",
            (_sql("close_relations", "SET status = 'cancelled'", "SET status = status"),),
            CHILDREN,
        ),
        Mutation(
            "close_relations: a closing parent queues no sweep",
            "children",
            (_sql("close_relations", "WHERE EXISTS (SELECT 1 FROM", "WHERE false AND EXISTS (SELECT 1 FROM"),),
            CHILDREN,
        ),
        Mutation(
            "link_parent: a child never records its parent",
            "children",
            (_sql("link_parent", "AND parent_id IS NULL", "AND false"),),
            CHILDREN,
        ),
        Mutation(
            "start_child: an id of another parent is taken over",
            "children",
            (
                _py(
                    "ironflow_py/_command_handler.py",
                    "if owner != (parent.workflow_type, parent.workflow_id):",
                    "if False:",
                ),
            ),
            CHILDREN,
        ),
        Mutation(
            "deliveries: a notice is applied without its row's input key",
            "key",
            (
                _py(
                    "ironflow_py/effects/_relations.py",
                    "\n    key = delivery_key(claim.workflow_type, claim.workflow_id, claim.id)",
                    "\n    key = None  # type: ignore[assignment]",
                ),
            ),
            CHILDREN_CRASH,
        ),
        Mutation(
            "deliveries: a notice's done mark is not in the delivering transaction",
            "fence",
            (
                _py(
                    "ironflow_py/effects/_relations.py",
                    "parent_id, input, input_key=key, settle=settle)",
                    "parent_id, input, input_key=key)",
                ),
            ),
            (*CHILDREN, *CHILDREN_CRASH),
        ),
        Mutation(
            "Join: a repeated key counts twice",
            "children",
            (
                _py(
                    "ironflow_py/composition.py",
                    "return self  # the first resolution of a key wins",
                    "pass  # the first resolution of a key wins",
                ),
            ),
            ("tests/unit/test_composition.py",),
        ),
        Mutation(
            "Join: a race keeps the last",
            "children",
            (
                _py(
                    "ironflow_py/composition.py",
                    "self.resolved[0] if self.resolved",
                    "self.resolved[-1] if self.resolved",
                ),
            ),
            ("tests/unit/test_composition.py",),
        ),
        Mutation(
            "Join: a resolved key is not marked settled in the derived index",
            "children",
            (
                _py(
                    "ironflow_py/composition.py",
                    'object.__setattr__(new, "_settled", settled | 1 << bit)',
                    'object.__setattr__(new, "_settled", settled)',
                ),
            ),
            ("tests/unit/test_composition.py",),
        ),
        Mutation(
            "to_json: the fast path keeps a float in exponent form",
            "values",
            (_py("ironflow_py/values.py", 'r"\\\\u0000|[0-9][eE]|-0\\.0"', 'r"\\\\u0000|-0\\.0"'),),
            ("tests/unit/test_values.py", "tests/contract/test_refused_values.py"),
        ),
        Mutation(
            "terminate: an instance that only waits for its delayed start is not found",
            "children",
            (
                _py(
                    "ironflow_py/_command_handler.py",
                    "exists=rebuilt.seq > 0 or tx.instance() is not None,",
                    "exists=rebuilt.seq > 0,",
                ),
            ),
            ("tests/contract/test_delayed_start.py",),
        ),
        Mutation(
            "cancel: an unstarted instance goes through cancel_input",
            "children",
            (
                _py(
                    "ironflow_py/service.py",
                    "if info.last_seq == 0 or info.closed_at is not None:",
                    "if info.closed_at is not None:",
                ),
            ),
            ("tests/contract/test_delayed_start.py",),
        ),
        Mutation(
            "child start: a rejected first input is never reported to the parent",
            "children",
            (_py("ironflow_py/_command_handler.py", "raise _StartRejected(step.outcome)", "pass"),),
            CHILDREN,
        ),
        Mutation(
            "child start: the rejection notice commits without the start row's done",
            "fence",
            (
                _py(
                    "ironflow_py/effects/_relations.py",
                    "input_key=rejected_key, settle=settle)",
                    "input_key=rejected_key)",
                ),
            ),
            CHILDREN,
        ),
        Mutation(
            "sweep: a request_cancel child without cancel_input is not warned about",
            "children",
            (_py("ironflow_py/effects/_relations.py", "attempts.log.warning(\n", "attempts.log.debug(\n"),),
            CHILDREN,
        ),
        Mutation(
            "reserved rows: a delivery past its attempts is tried again",
            "attempts",
            (_py("ironflow_py/effects/_relations.py", "if claim.attempt > max_attempts:", "if False:"),),
            ("tests/contract/test_children_contract.py",),
        ),
        Mutation(
            "worker: a handler-less worker claims no engine row",
            "children",
            (
                _py(
                    "ironflow_py/effects/_runtime.py",
                    "limit = min(room - len(timers), self.batch_size)\n",
                    "limit = min(room - len(timers), self.batch_size) if self._claim_types is None else 0\n",
                ),
            ),
            ("tests/integration/test_children.py",),
        ),
        Mutation(
            "claim_effects: the type filter is ignored",
            "children",
            (_sql("claim_effects", "effect_type = ANY(%(types)s::text[])", "true"),),
            ("tests/contract/test_children_contract.py",),
        ),
        Mutation(
            "schedule workflow: a stale tick is not ignored",
            "schedule",
            (_py("ironflow_py/schedule_workflow.py", "if state.paused or fire_time != state.next_fire:", "if False:"),),
            ("tests/unit/test_schedule_workflow.py", "tests/unit/test_schedule_scenario.py"),
        ),
        Mutation(
            "schedule workflow: reconcile replans an unchanged schedule",
            "schedule",
            (
                _py(
                    "ironflow_py/schedule_workflow.py",
                    "if state.fingerprint == fingerprint and (state.next_fire is not None or state.paused):",
                    "if False:",
                ),
            ),
            ("tests/unit/test_schedule_workflow.py", "tests/unit/test_schedule_scenario.py"),
        ),
        Mutation(
            "schedule workflow: the run id is not the fire time's",
            "schedule",
            (
                _py(
                    "ironflow_py/schedule_workflow.py",
                    "self.start(ScheduledRun(name, at, run_id_for(name, at), reason))",
                    "self.start(ScheduledRun(name, at, run_id_for(name, self.now), reason))",
                ),
            ),
            (
                "tests/unit/test_schedule_workflow.py",
                "tests/unit/test_schedule_scenario.py",
                "tests/integration/test_schedules.py",
            ),
        ),
        Mutation(
            "schedule workflow: a closed run does not free the overlap slot",
            "schedule",
            (
                _py(
                    "ironflow_py/schedule_workflow.py",
                    "open_runs=tuple(r for r in state.open_runs if r != run_id),",
                    "open_runs=state.open_runs,",
                ),
            ),
            ("tests/unit/test_schedule_workflow.py", "tests/unit/test_schedule_scenario.py"),
        ),
        Mutation(
            "schedules: StopRuns cancels nothing",
            "schedule",
            (_py("ironflow_py/scheduling/_control.py", "if child.workflow_id not in wanted:", "if True:"),),
            ("tests/unit/test_schedule_scenario.py",),
        ),
        # -- snapshots -------------------------------------------------------------------------------------------
        Mutation(
            "decider: an ignored snapshot is not marked for replacement",
            "snapshot",
            (
                _py(
                    "ironflow_py/decider.py",
                    "Origin(attrs.evolve(start, replace_snapshot=True), None",
                    "Origin(start, None",
                ),
            ),
            SNAPSHOTS,
        ),
        Mutation(
            "decider: snapshot version not checked",
            "snapshot",
            (_py("ironflow_py/decider.py", "if snap.state_version != self.workflow.state_version:", "if False:"),),
            SNAPSHOTS,
        ),
        Mutation(
            "lock_and_load (020): snapshot never read",
            "snapshot",
            (_m020("AND s.seq > p_after;", "AND s.seq > p_after AND false;"),),
            SNAPSHOTS,
        ),
        Mutation(
            "lock_and_load (020): the generation ignored, so a warm decision reads the snapshot every time",
            "snapshot",
            (_m020("AND (p_gen IS NULL OR v_gen IS NULL OR p_gen <> v_gen", "AND (true OR p_gen <> v_gen"),),
            GENERATION,
        ),
        Mutation(
            "lock_and_load (020): a changed generation does not read the snapshot (a second load instead)",
            "snapshot",
            (_m020("OR p_gen <> v_gen OR p_after", "OR p_after"),),
            GENERATION,
        ),
        Mutation(
            "lock_and_load (020): the snapshot skipped for a cached state from before the run start",
            "snapshot",
            (_m020("OR p_gen <> v_gen OR p_after < v_run_start - 1)", "OR p_gen <> v_gen)"),),
            ("tests/contract/test_continue_as_new.py",),
        ),
        Mutation(
            "write_decision: a decision's snapshot not counted in the generation",
            "snapshot",
            (
                _sql(
                    "write_decision",
                    "snapshot_gen = i.snapshot_gen + EXCLUDED.snapshot_gen",
                    "snapshot_gen = i.snapshot_gen",
                ),
            ),
            GENERATION,
        ),
        Mutation(
            "terminate_instance: the instance's timers stay",
            "lifecycle",
            (_sql("terminate_instance", "DELETE FROM {schema}.timers", "SELECT FROM {schema}.timers"),),
            ("tests/contract/test_lifecycle_contract.py", "tests/integration/test_lifecycle_workers.py"),
            "terminate",
        ),
        Mutation(
            "terminate_instance: pending effects are not cancelled",
            "lifecycle",
            (_sql("terminate_instance", "AND status = 'pending'", "AND false"),),
            ("tests/contract/test_lifecycle_contract.py", "tests/integration/test_lifecycle_workers.py"),
            "terminate",
        ),
        Mutation(
            "store: terminate_instance not run by a terminating decision",
            "lifecycle",
            (
                _py(
                    "ironflow_py/store/postgres.py",
                    "        if w.terminate:\n            self._cur.execute(",
                    "        if False:\n            self._cur.execute(",
                ),
            ),
            ("tests/contract/test_lifecycle_contract.py",),
            "terminate",
        ),
        Mutation(
            "drop_snapshot: the drop not counted in the generation",
            "snapshot",
            (_sql("drop_snapshot", "SET snapshot_gen = i.snapshot_gen + 1", "SET snapshot_gen = i.snapshot_gen"),),
            GENERATION,
        ),
        Mutation(
            "store: a snapshot written without an instance write (verify --drop) not counted",
            "snapshot",
            (_py("ironflow_py/store/postgres.py", "if w.snapshot is not None and gen is None:", "if False:"),),
            ("tests/contract/test_evolve_change.py",),
        ),
        Mutation(
            "command handler: a cached state kept after its snapshot changed",
            "snapshot",
            (
                _py(
                    "ironflow_py/_command_handler.py",
                    "or (cached.snapshot_gen is not None and loaded.snapshot_gen != cached.snapshot_gen",
                    "or (False and loaded.snapshot_gen != cached.snapshot_gen",
                ),
            ),
            GENERATION,
        ),
        Mutation(
            "command handler: a warm decision loads after the cached event (a full replay every time)",
            "snapshot",
            (
                _py(
                    "ironflow_py/_command_handler.py",
                    "(cached.seq - 1, cached.snapshot_gen)",
                    "(cached.seq, cached.snapshot_gen)",
                ),
            ),
            ("tests/contract/test_snapshots.py",),
            "evolve_calls",
        ),
        Mutation(
            "workflow: a snapshot one event later than snapshot_every says",
            "snapshot",
            (_py("ironflow_py/workflow.py", "events_since_snapshot >= every", "events_since_snapshot > every"),),
            ("tests/contract/test_snapshots.py",),
            "evolve_calls",
        ),
        Mutation(
            "decider: a state cached before any event counts as stale (replay and a forced snapshot)",
            "snapshot",
            (_py("ironflow_py/decider.py", "if cached is not None and cached.seq == 0:", "if False:"),),
            ("tests/contract/test_snapshots.py",),
        ),
        Mutation(
            "decider: the cache is never checked against the store",
            "snapshot",
            (_py("ironflow_py/decider.py", "if not events or events[0].seq != cached.seq:", "if False:"),),
            SNAPSHOTS,
        ),
        # -- changing a running workflow (design/versioning.md) ---------------------------------------------------
        Mutation(
            "codec: an old stored name never goes through the upcasters",
            "upcast",
            (_py("ironflow_py/codec.py", "if cls is None and name in self.upcasters:", "if False:"),),
            UPCASTING,
        ),
        Mutation(
            "codec: an outcome stored under an old result name is not upcast",
            "upcast",
            (
                _py(
                    "ironflow_py/codec.py",
                    "if stored_name is not None and stored_name != self.result_name and result is not None:",
                    "if False:",
                ),
            ),
            UPCASTING,
        ),
        Mutation(
            "upcasting: a name both declared and upcast is accepted",
            "upcast",
            (
                _py(
                    "ironflow_py/upcasting.py",
                    "            if name in self.declared:\n                raise",
                    "            if False:\n                raise",
                ),
            ),
            UPCASTING,
        ),
        Mutation(
            "upcasting: declared chains are not checked at registration",
            "upcast",
            (_py("ironflow_py/upcasting.py", "            self._check_chain(name)", "            pass"),),
            UPCASTING,
        ),
        Mutation(
            "projections: old names that upcast to a wanted class are not read",
            "upcast",
            (_py("ironflow_py/projections/_worker.py", "if targets is None or name in targets:", "if False:"),),
            ("tests/integration/test_versioning.py",),
        ),
        Mutation(
            "service.state folds from scratch instead of the decisions' rebuild path",
            "snapshot",
            (
                _py(
                    "ironflow_py/_command_handler.py",
                    "_, rebuilt, _ = self._load(tx, workflow_id, cached)",
                    "rebuilt = self.decider.rebuild(workflow_id, self.decider.origin(workflow_id, tx.load()), "
                    "tx.load().events)",
                ),
            ),
            VERSIONING,
        ),
        Mutation(
            "snapshots verify --drop deletes the stale snapshot instead of replacing it at the last event",
            "snapshot",
            (
                _py(
                    "ironflow_py/upgrade/_snapshots.py",
                    "tx.write(Writes(service.clock.now(), last, snapshot=snapshot))",
                    "tx.drop_snapshot(snap.seq)",
                ),
            ),
            VERSIONING,
        ),
        Mutation(
            "snapshots verify: a stale snapshot passes",
            "snapshot",
            (_py("ironflow_py/upgrade/_snapshots.py", "if fresh == snap.data:", "if True:"),),
            VERSIONING,
        ),
        # -- versions side by side and continue-as-new (design/versioning.md) ----------------------------------
        Mutation(
            "events upgrade: every instance rewritten by the default version's code",
            "version",
            (
                _py(
                    "ironflow_py/upgrade/_events.py",
                    "decider = reg.handler.decider_for(info.version if info else None, workflow_id)",
                    "decider = reg.decider",
                ),
            ),
            ("tests/contract/test_versioned_maintenance.py",),
        ),
        Mutation(
            "instance report (inspect show, web view): the state named and judged by the default version",
            "version",
            (
                _py(
                    "ironflow_py/inspection.py",
                    "decider = reg.version_of(info.version if info is not None else None)",
                    "decider = reg.decider",
                ),
            ),
            ("tests/contract/test_versioned_maintenance.py", "tests/integration/test_versioning.py"),
        ),
        Mutation(
            "CLI wait: the outcome encoded by the default version (its result name)",
            "version",
            (
                _py(
                    "ironflow_py/cli/_lifecycle.py",
                    "reg.instance_decider(service.store, outcome.workflow_id).codec if outcome.workflow_id",
                    "reg.codec if True",
                ),
            ),
            ("tests/integration/test_versioning.py",),
        ),
        Mutation(
            "web view: an instance's path drawn with the default version's workflow",
            "version",
            (
                _py(
                    "ironflow_py/web/_app.py",
                    "wf, codec = report.decider.workflow, report.decider.codec",
                    "wf, codec = self.service.registration(wtype).workflow, report.decider.codec",
                ),
            ),
            ("tests/integration/test_versioning.py",),
        ),
        Mutation(
            "snapshots verify: every instance folded by the default version's code",
            "version",
            (
                _py(
                    "ironflow_py/upgrade/_snapshots.py",
                    "decider = reg.handler.decider_for(recorded.version if recorded else None, workflow_id)",
                    "decider = reg.decider",
                ),
            ),
            ("tests/contract/test_versioned_maintenance.py",),
        ),
        Mutation(
            "versions: every instance decided by the default version (the recorded one ignored)",
            "version",
            (
                _py(
                    "ironflow_py/_command_handler.py",
                    "self.decider_for(version or loaded.version, workflow_id)",
                    "self.decider_for(version, workflow_id)",
                ),
            ),
            VERSIONS,
        ),
        Mutation(
            "write_decision: a new instance records version 1 whatever decided",
            "version",
            (
                _sql(
                    "write_decision", "THEN %(now)s::timestamptz END, %(version)s", "THEN %(now)s::timestamptz END, '1'"
                ),
            ),
            VERSIONS,
        ),
        Mutation(
            "versions: a state cached by another version's code is used",
            "version",
            (
                _py(
                    "ironflow_py/_command_handler.py",
                    "cached.version != decider.workflow.version\n            or (",
                    "False\n            or (",
                ),
            ),
            VERSIONS,
        ),
        Mutation(
            "versions: the worker starts without a version that has open instances",
            "version",
            (_py("ironflow_py/service.py", "if version not in reg.versions", "if False"),),
            VERSIONS,
        ),
        Mutation(
            "lock_and_load (020): a continued run's snapshot is read only if the workflow snapshots",
            "runs",
            (_m020("IF (p_snapshot OR v_run_start > 1)", "IF (p_snapshot)"),),
            RUNS,
        ),
        Mutation(
            "read_load: a continued run's snapshot is read only if the workflow snapshots",
            "runs",
            (
                _sql(
                    "read_load",
                    "AND (%(with_snapshot)s OR coalesce((SELECT run_start FROM inst), 1) > 1)",
                    "AND %(with_snapshot)s",
                ),
            ),
            RUNS,
        ),
        Mutation(
            "memory load: a continued run's snapshot is read only if the workflow snapshots",
            "runs",
            (
                _py(
                    "ironflow_py/store/memory.py",
                    "if (with_snapshot or run_start > 1) and not unchanged",
                    "if with_snapshot and not unchanged",
                ),
            ),
            RUNS,
        ),
        Mutation(
            "continue_run: the run is not moved",
            "runs",
            (_sql("continue_run", "SET run = run + 1, run_start = %(last_seq)s + 1", "SET run = run"),),
            RUNS,
        ),
        Mutation(
            "decider: a continuing decision writes no snapshot",
            "runs",
            (_py("ironflow_py/decider.py", "        if not continued:\n", "        if True:\n"),),
            RUNS,
        ),
        Mutation(
            "decider: the run marker is folded by evolve",
            "runs",
            (_py("ironflow_py/decider.py", "if isinstance(event, RunContinued | VersionMigrated):", "if False:"),),
            RUNS,
        ),
        Mutation(
            "prune_run_events: the run marker goes too",
            "retention",
            (_sql("prune_run_events", "AND e.seq < d.u", "AND e.seq <= d.u"),),
            RUNS,
        ),
        Mutation(
            "prune_pick_runs: a named projection without a checkpoint holds nothing",
            "retention",
            (_drop("prune_pick_runs", "NOT %(held)s"),),
            RUNS,
        ),
        Mutation(
            "prune_pick_runs: the newest marker, not the newest one past its retention",
            "retention",
            (
                _sql(
                    "prune_pick_runs",
                    "AND e.recorded_at < coalesce",
                    "AND e.recorded_at > '-infinity' OR e.recorded_at < coalesce",
                ),
            ),
            RUNS,
        ),
        Mutation(
            "wait(follow_runs=False) never stops at a continued run",
            "runs",
            (
                _py(
                    "ironflow_py/service.py", "if run is not None and info is not None and info.run > run:", "if False:"
                ),
            ),
            RUNS,
        ),
        # -- retention (design/retention.md) ----------------------------------------------------------------
        Mutation(
            "prune_pick_instances: past the slowest projection's checkpoint",
            "retention",
            (_sql("prune_pick_instances", "ON (e.tx_id, e.position) > (c.tx_id, c.position)", "ON false"),),
            RETENTION,
        ),
        Mutation(
            "prune_pick_instances: a named projection without a checkpoint holds nothing",
            "retention",
            (_drop("prune_pick_instances", "NOT %(held)s"),),
            RETENTION,
        ),
        Mutation(
            "load_tombstone: a tombstone is never read (later inputs decide on a fresh state)",
            "retention",
            (_sql("load_tombstone", "AND pruned_at IS NOT NULL", "AND false"),),
            RETENTION,
        ),
        Mutation(
            "decider: a tombstone is not a closed instance",
            "retention",
            (_py("ironflow_py/decider.py", "if tomb is not None and not events:", "if False:"),),
            RETENTION,
        ),
        Mutation(
            "prune_tombstone_instances: the row is deleted instead of kept",
            "retention",
            (
                _sql(
                    "prune_tombstone_instances",
                    "UPDATE {schema}.instances x SET pruned_at = coalesce(%(now)s::timestamptz, now())\n"
                    "FROM unnest(%(types)s::text[], %(ids)s::text[]) AS d(t, i)",
                    "DELETE FROM {schema}.instances x USING unnest(%(types)s::text[], %(ids)s::text[]) AS d(t, i)",
                ),
            ),
            RETENTION,
        ),
        Mutation(
            "prune_pick_instances: an instance with a pending effect is pruned",
            "retention",
            (_sql("prune_pick_instances", "AND (o.status = 'pending'\n", "AND (false\n"),),
            RETENTION,
        ),
        Mutation(
            "prune_instance_effects: dead letters go with their instance",
            "retention",
            (_sql("prune_instance_effects", "AND (x.status <> 'dead'\n", "AND (true\n"),),
            RETENTION,
        ),
        Mutation(
            'names: a single string is read as its characters (pruner("fast") names f, a, s, t)',
            "retention",
            (_py("ironflow_py/_names.py", "(value,) if isinstance(value, str) else tuple(value)", "tuple(value)"),),
            ("tests/integration/test_retention.py", "tests/unit/test_projection.py"),
        ),
        Mutation(
            "prune_lock: two pruners at once",
            "retention",
            (_sql("prune_lock", "SELECT pg_try_advisory_xact_lock(", "SELECT true OR pg_try_advisory_xact_lock("),),
            RETENTION,
        ),
        Mutation(
            "outbox_health: scan every finished row again",
            "retention",
            (_sql("outbox_health", "    WHERE status = 'pending'\n) p", "    WHERE status <> 'done'\n) p"),),
            ("tests/integration/test_retention.py",),
            keyword="index",
        ),
        Mutation(
            "claim_effects: no byte bound",
            "retention",
            (_sql("claim_effects", "OR running <= %(max_bytes)s::bigint", "OR true"),),
            ("tests/contract/test_prefetch_bytes_contract.py", "tests/reliability/test_prefetch_bytes.py"),
        ),
        # -- read replicas and buckets (design/scale-out.md) --------------------------------------------------
        Mutation(
            "replay_reached: never wait for the replica",
            "replica",
            (
                _sql(
                    "replay_reached",
                    "coalesce(pg_last_wal_replay_lsn() >= %(min_lsn)s::pg_lsn, NOT pg_is_in_recovery())",
                    "true",
                ),
            ),
            REPLICA,
        ),
        Mutation(
            "replay_reached: a primary waits for replay too",
            "replica",
            (_sql("replay_reached", ", NOT pg_is_in_recovery())", ", false)"),),
            REPLICA,
        ),
        Mutation(
            "service.state: a replica read takes the primary's locked path",
            "replica",
            (
                _py(
                    "ironflow_py/service.py",
                    "handler.read_unlocked(reads, workflow_id) if self.reads_replica else handler.read(workflow_id)",
                    "handler.read(workflow_id)",
                ),
            ),
            REPLICA,
        ),
        Mutation(
            "execute: no wal_position with a read store",
            "replica",
            (
                _py(
                    "ironflow_py/service.py",
                    "        if self.reads_replica:\n            outcome = attrs.evolve(outcome, wal_position=",
                    "        if False:\n            outcome = attrs.evolve(outcome, wal_position=",
                ),
            ),
            REPLICA,
        ),
        Mutation(
            "read_load: events from the start as well as the snapshot",
            "replica",
            (
                _sql(
                    "read_load",
                    "AND e.seq > greatest(coalesce((SELECT seq FROM snap), %(after_seq)s), coalesce((SELECT run_start",
                    "AND e.seq > greatest(%(after_seq)s, coalesce((SELECT run_start",
                ),
            ),
            REPLICA,
        ),
        Mutation(
            "021: 512 buckets",
            "bucket",
            (_m021("& 1023)::integer", "& 511)::integer"),),
            BUCKETS,
        ),
        Mutation(
            "write_decision: events get another bucket than their instance",
            "bucket",
            (
                _sql(
                    "write_decision",
                    "%(base_seq)s + n, t, p::jsonb, %(now)s, k.b",
                    "%(base_seq)s + n, t, p::jsonb, %(now)s, k.b + 1",
                ),
            ),
            BUCKETS,
        ),
        Mutation(
            "close_relations: a close notice gets another bucket than its instance",
            "bucket",
            (
                _sql(
                    "close_relations",
                    "%(now)s, %(now)s, %(trace_context)s, bucket",
                    "%(now)s, %(now)s, %(trace_context)s, bucket + 1",
                ),
            ),
            ("tests/integration/test_children.py",),
            "bucket",
        ),
        Mutation(
            "close_relations: the parent-close sweep row bucketed by id and type swapped",
            "bucket",
            (
                _sql(
                    "close_relations",
                    "%(trace_context)s, {schema}.instance_bucket(%(workflow_type)s, %(workflow_id)s)",
                    "%(trace_context)s, {schema}.instance_bucket(%(workflow_id)s, %(workflow_type)s)",
                ),
            ),
            ("tests/integration/test_children.py",),
            "bucket",
        ),
        Mutation(
            "hold_instance: a pause/resume key bucketed by id and type swapped",
            "bucket",
            (
                _sql(
                    "hold_instance",
                    "{schema}.instance_bucket(%(workflow_type)s, %(workflow_id)s)",
                    "{schema}.instance_bucket(%(workflow_id)s, %(workflow_type)s)",
                ),
            ),
            ("tests/integration/test_children.py",),
            "bucket",
        ),
        Mutation(
            "prune_archive_events: archived events change bucket",
            "bucket",
            (_sql("prune_archive_events", "now()), e.bucket", "now()), e.bucket + 1"),),
            BUCKETS,
        ),
        # -- stalls: every wait for the server is bounded (design/reliability.md, "Stalls") ----------------------
        Mutation(
            "watchdog: never cuts a stalled wait",
            "stall",
            (_py("ironflow_py/store/_watchdog.py", "if not entry.fired and entry.deadline <= now:", "if False:"),),
            (*STALLS, *STALL_PROXY),
            keyword="statement_without_an_answer or idle_worker",
        ),
        Mutation(
            "pool: plain connections, not guarded ones",
            "stall",
            (_py("ironflow_py/store/postgres.py", "connection_class=GuardedConnection,", ""),),
            STALLS,
        ),
        Mutation(
            "heartbeat_effect: no half-lease deadline",
            "stall",
            (
                _py(
                    "ironflow_py/store/postgres_outbox.py",
                    '"lease": lease}\n        with self.store.connection(within=lease.total_seconds() / 2)',
                    '"lease": lease}\n        with self.store.connection()',
                ),
            ),
            (*STALLS, *STALL_PROXY),
            keyword="heartbeat or another_worker_finished",
        ),
        Mutation(
            "claim_effects: no half-lease deadline",
            "stall",
            (
                _py(
                    "ironflow_py/store/postgres_outbox.py",
                    "        }\n        with self.store.connection(within=lease.total_seconds() / 2)",
                    "        }\n        with self.store.connection()",
                ),
            ),
            STALLS,
            keyword="claim_blocked",
        ),
        Mutation(
            "claim_timers: no half-lease deadline",
            "stall",
            (
                _py(
                    "ironflow_py/store/postgres_outbox.py",
                    '"worker": self.worker}\n        with self.store.connection(within=lease.total_seconds() / 2)',
                    '"worker": self.worker}\n        with self.store.connection()',
                ),
            ),
            STALLS,
            keyword="claim_blocked",
        ),
        Mutation(
            "outbox settles (complete, retry, dead, release): no half-lease deadline",
            "stall",
            (
                _py(
                    "ironflow_py/store/postgres_outbox.py",
                    "self.within = None if lease is None else lease.total_seconds() / 2",
                    "self.within = None",
                ),
            ),
            STALLS,
        ),
        Mutation(
            "feedback transaction: no local idle_in_transaction_session_timeout",
            "stall",
            (
                _py(
                    "ironflow_py/store/postgres.py",
                    'conn.execute(self.q["local_idle_timeout"], {"ms": str(idle_ms)})',
                    "pass",
                ),
            ),
            (*STALLS, *STALL_PROXY),
            keyword="feedback",
        ),
        Mutation(
            "feedback transaction: no client deadline",
            "stall",
            (
                _py(
                    "ironflow_py/store/postgres.py",
                    "within = None if settle is None else settle.deadline",
                    "within = None",
                ),
            ),
            STALLS,
            keyword="feedback",
        ),
        Mutation(
            "worker: feedback transaction without a deadline",
            "stall",
            (
                _py(
                    "ironflow_py/effects/_attempt.py",
                    "return self.lease.total_seconds() / 2",
                    "return None  # type: ignore[return-value]",
                ),
            ),
            STALL_PROXY,
            keyword="feedback",
        ),
        Mutation(
            "projection batch: no local idle_in_transaction_session_timeout",
            "stall",
            (
                _py(
                    "ironflow_py/projections/_worker.py", "self._applied, int(self.lease * 1000)", "self._applied, None"
                ),
            ),
            STALL_PROXY,
            keyword="inside",
        ),
        Mutation(
            "projection worker: its connection is not guarded",
            "stall",
            (
                _py(
                    "ironflow_py/projections/_worker.py", "self.store.guard(conn, self.store.bound(self.lease))", "pass"
                ),
            ),
            STALL_PROXY,
            keyword="leader and idle",
        ),
        Mutation(
            "sessions: no client_connection_check_interval",
            "stall",
            (
                _py(
                    "ironflow_py/store/postgres.py",
                    "CASE WHEN current_setting('client_connection_check_interval', true) IN ('0', '0ms')",
                    "CASE WHEN false",
                ),
            ),
            ("tests/reliability/test_poolers.py", *STALLS),
            keyword="direct_store or statement_without_an_answer",
        ),
        Mutation(
            "connection: a session on a read-only node goes back to the pool",
            "failover",
            (
                _py(
                    "ironflow_py/store/postgres.py",
                    "conn.close()\n                        elif conn.broken:",
                    "pass\n                        elif conn.broken:",
                ),
            ),
            ("tests/integration/test_multi_host.py",),
            keyword="read_only",
        ),
        Mutation(
            "session_unusable: a read-only session is the projection handler's fault",
            "failover",
            (
                _py(
                    "ironflow_py/store/postgres.py",
                    "return connection_lost(conn, exc) or read_only(exc)",
                    "return connection_lost(conn, exc)",
                ),
            ),
            ("tests/integration/projections/test_isolation.py",),
            keyword="read_only",
        ),
        Mutation(
            "connection: a lost session leaves the other dead ones in the pool",
            "failover",
            (_py("ironflow_py/store/postgres.py", "elif conn.broken:", "elif False:"),),
            ("tests/integration/test_multi_host.py",),
            keyword="lost_session",
        ),
        Mutation(
            "_getconn: a waiting caller asks the pool once",
            "failover",
            (_py("ironflow_py/store/postgres.py", "min(POOL_WAIT_SLICE, left)", "left"),),
            ("tests/reliability/test_outages.py",),
            keyword="waiting",
        ),
    ]
    return found


# -- applying ----------------------------------------------------------------------------------------------------


def _query_span(text: str, query: str) -> tuple[int, int] | None:
    """Start and end offsets of the `-- name: query` block in a .sql file's text."""
    marks = list(NAME_LINE.finditer(text))
    for i, mark in enumerate(marks):
        if mark[1] == query:
            end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
            return mark.end(), end
    return None


def _in_comment(path: Path, text: str, offset: int) -> bool:
    """Whether `offset` is inside a comment: edits change code, never the prose that explains it."""
    line = text[text.rfind("\n", 0, offset) + 1 : offset]
    return ("--" if path.suffix == ".sql" else "#") in line


def apply(root: Path, mutation: Mutation) -> dict[Path, str]:
    """Apply every edit of `mutation` under `root`; returns the original text of each changed file.

    Raises:
        NotApplicable: an edit's text is not found exactly once (the file is left unchanged).
    """
    originals: dict[Path, str] = {}
    try:
        for edit in mutation.edits:
            hits: list[tuple[Path, int, int]] = []
            for path in sorted(root.glob(edit.files)):
                text = path.read_text("utf-8")
                lo, hi = 0, len(text)
                if edit.query is not None:
                    span = _query_span(text, edit.query)
                    if span is None:
                        continue
                    lo, hi = span
                start = text.find(edit.old, lo, hi)
                while start != -1:
                    if not _in_comment(path, text, start):
                        hits.append((path, start, start + len(edit.old)))
                    start = text.find(edit.old, start + 1, hi)
            if len(hits) != 1:
                where = f"query {edit.query!r}" if edit.query else edit.files
                raise NotApplicable(f"{edit.old!r} occurs {len(hits)} times in {where}")
            path, start, end = hits[0]
            text = path.read_text("utf-8")
            originals.setdefault(path, text)
            path.write_text(text[:start] + edit.new + text[end:], "utf-8")
    except BaseException:
        restore(originals)
        raise
    return originals


def restore(originals: dict[Path, str]) -> None:
    for path, text in originals.items():
        path.write_text(text, "utf-8")


# -- running -----------------------------------------------------------------------------------------------------


@attrs.frozen
class Result:
    mutation: Mutation
    outcome: str  # killed, killed (timeout), SURVIVED, n/a, error
    tests: int
    seconds: float
    detail: str = ""


_SUMMARY = re.compile(r"(\d+) (passed|failed|error|errors|skipped|xfailed|xpassed)")
_INTERFERENCE = re.compile(r"terminating connection due to administrator command|AdminShutdown")
_FAILED = re.compile(r"^(?:FAILED|ERROR) (\S+)", re.MULTILINE)


def _selection(copy: Path, mutation: Mutation) -> list[str]:
    args = [t for t in mutation.tests if (copy / t.split("::", 1)[0]).exists()]
    args = list(dict.fromkeys(args))
    if args and mutation.keyword:
        args += ["-k", mutation.keyword]
    return args


def run_tests(copy: Path, args: list[str], env: dict[str, str], timeout: float) -> tuple[int | None, str]:
    """Run pytest in `copy`; returns (exit code or None on timeout, output)."""
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-rfE", "-p", "no:cacheprovider", *args]
    proc = subprocess.Popen(
        command, cwd=copy, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
        return proc.returncode, out
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the whole group: worker processes the tests started too
        out, _ = proc.communicate()
        return None, out
    except BaseException:  # interrupted: leave no test run behind
        os.killpg(proc.pid, signal.SIGKILL)
        raise


def _count(out: str) -> int:
    tail = out.strip().splitlines()[-1] if out.strip() else ""
    return sum(int(n) for n, what in _SUMMARY.findall(tail) if what in ("passed", "failed", "error", "errors"))


def run_one(copy: Path, mutation: Mutation, env: dict[str, str], timeout: float, log: Path | None = None) -> Result:
    args = _selection(copy, mutation)
    if not args or args[0] == "-k":
        return Result(mutation, "error", 0, 0.0, "none of its test paths exist")
    started = time.monotonic()
    try:
        originals = apply(copy, mutation)
    except NotApplicable as exc:
        return Result(mutation, "n/a", 0, 0.0, str(exc))
    try:
        code, out = run_tests(copy, args, env, timeout)
        if code == 1 and _INTERFERENCE.search(out):
            # Another session on a shared server terminated our backends: that kill proves nothing.
            code, out = run_tests(copy, args, env, timeout)
    finally:
        restore(originals)
    seconds = time.monotonic() - started
    if log is not None:
        log.write_text(out, "utf-8")
    if code is None:
        return Result(mutation, "killed (timeout)", _count(out), seconds, f"no result within {timeout:.0f} s")
    if code == 0:
        return Result(mutation, "SURVIVED", _count(out), seconds)
    if code == 1:
        failed = _FAILED.findall(out)
        return Result(mutation, "killed", _count(out), seconds, failed[0] if failed else "")
    return Result(mutation, "error", _count(out), seconds, f"pytest exit {code}: {out.strip().splitlines()[-1:]}")


def _copy_repository(into: Path) -> Path:
    copy = into / "repo"
    ignore = shutil.ignore_patterns(
        ".git", ".venv", ".ironflow", "__pycache__", ".mypy_cache", ".ruff_cache", "*.egg-info"
    )
    shutil.copytree(ROOT, copy, ignore=ignore)
    return copy


def _environment(copy: Path) -> dict[str, str]:
    env = dict(os.environ)
    url = env.get("IRONFLOW_TEST_DATABASE_URL") or env.get("IRONFLOW_DATABASE_URL")
    if not url:
        sys.path.insert(0, str(ROOT))
        from ironflow_py import _database

        url = _database.start_embedded(ROOT / ".ironflow" / "mutation-postgres").url
    env["IRONFLOW_TEST_DATABASE_URL"] = url
    env["PYTHONPATH"] = str(copy)  # the copy's package shadows the editable install (appended finder)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _check_shadowing(copy: Path, env: dict[str, str]) -> None:
    probe = subprocess.run(
        [sys.executable, "-c", "import ironflow_py; print(ironflow_py.__file__)"],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    if not probe.stdout.strip().startswith(str(copy)):
        raise SystemExit(f"the copy does not shadow the installed package: {probe.stdout.strip()}")


def _table(results: Sequence[Result]) -> Iterator[str]:
    header = ["mutation", "kind", "tests run", "result", "time (s)", "killed by / why"]
    rows = [
        [r.mutation.name, r.mutation.kind, str(r.tests), r.outcome, f"{r.seconds:.1f}", r.detail[:90]] for r in results
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    yield "| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |"
    yield "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    for row in rows:
        yield "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"


def _check(copy: Path, chosen: Sequence[Mutation]) -> int:
    stale = 0
    for m in chosen:
        try:
            restore(apply(copy, m))
        except NotApplicable as exc:
            stale += 1
            print(f"n/a  {m.name}: {exc}")
    print(f"{len(chosen) - stale} of {len(chosen)} mutations apply")
    return 1 if stale else 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.mutation", description=__doc__.splitlines()[0])
    parser.add_argument("only", nargs="*", help="run only mutations whose name contains one of these")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per mutation (default 300)")
    parser.add_argument("--list", action="store_true", help="list the mutations and their tests, run nothing")
    parser.add_argument("--check", action="store_true", help="only check that every edit still applies")
    parser.add_argument(
        "--logs", type=Path, default=ROOT / ".ironflow" / "mutation-logs", help="where each run's pytest output goes"
    )
    parser.add_argument("--no-baseline", action="store_true", help="skip the unmutated run of every selection")
    options = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)  # clean up the copy and the test run on `kill` too
    chosen = [m for m in mutations() if not options.only or any(s in m.name for s in options.only)]
    if options.list:
        for m in chosen:
            print(f"{m.name} [{m.kind}]: {' '.join(m.tests)}" + (f" -k {m.keyword!r}" if m.keyword else ""))
        return 0
    with tempfile.TemporaryDirectory(prefix="ironflow-mutation-") as tmp:
        copy = _copy_repository(Path(tmp))
        if options.check:
            return _check(copy, chosen)
        env = _environment(copy)
        _check_shadowing(copy, env)
        if not options.no_baseline:
            paths = sorted({t for m in chosen for t in m.tests if (copy / t.split("::", 1)[0]).exists()})
            print(f"# baseline: the {len(paths)} selections unmutated", flush=True)
            code, out = run_tests(copy, paths, env, options.timeout * 4)
            if code != 0:
                print(out)
                print("# the unmutated tests do not pass: fix that first")
                return 2
        results = []
        options.logs.mkdir(parents=True, exist_ok=True)
        for i, m in enumerate(chosen, start=1):
            slug = re.sub(r"\W+", "-", m.name).strip("-")
            result = run_one(copy, m, env, options.timeout, options.logs / f"{i:02d}-{slug}.log")
            print(f"# {result.outcome:<17} {m.name} ({result.seconds:.1f} s) {result.detail}", flush=True)
            results.append(result)
    print("\n## Mutations\n")
    for line in _table(results):
        print(line)
    survived = [r for r in results if r.outcome in ("SURVIVED", "n/a", "error")]
    killed = len(results) - len(survived)
    print(f"\n{killed} of {len(results)} killed; {len(survived)} survived or could not run.")
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
