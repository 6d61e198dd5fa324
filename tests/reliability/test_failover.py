"""Automatic failover (issue 17 §1): a pg_auto_failover formation of the test's own (monitor, primary,
synchronous secondary on loopback ports), the primary killed with SIGKILL while 4 writer threads, an effect
worker, a projection worker and a waiter run against the formation's multi-host URI.

What a user relies on, checked after the secondary was promoted:
- every input a writer saw acknowledged is in the history exactly once (synchronous replication keeps an
  acknowledged commit; a write in flight raises `StoreError` or `CommitUnknown` and the writer retries it
  with the same input key, which is duplicate-safe);
- every effect was handled and its feedback applied exactly once, and none went dead;
- the projection's read model equals the fold of the history;
- every daemon came back by itself: the effect worker, the projection worker and the waiters' LISTEN
  connection are on the new primary, and a waiter started before the kill is woken by a close after it.

Prints the time from the kill to the first success on the new primary, per client. Takes about a minute
(building the formation is most of it). Skipped where pg_autoctl or the extension is missing.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from ironflow_py import (
    CommitUnknown,
    Completed,
    EffectRuntime,
    OutcomeStatus,
    PostgresStore,
    ProjectionWorker,
    StoreError,
    WorkflowService,
)
from tests.ledger_app import Close, Deposit, Handled, Ledger, create_read_model, ledger_projection, read_model
from tests.reliability import formation as paf

pytestmark = pytest.mark.skipif(paf.missing() is not None, reason=paf.missing() or "")

SCHEMA = "failover"
WRITERS = 4
ACCOUNTS = 6
#: Inputs each writer has acknowledged before the kill, and after its first success on the new primary.
BEFORE, AFTER = 25, 25
#: Bound on every wait below: generous, only there so a broken build fails instead of hanging.
PATIENCE = 180.0


@pytest.fixture(scope="module")
def formation() -> Iterator[paf.Formation]:
    made = paf.Formation()
    try:
        yield made
    finally:
        made.close()


def wait_for(condition: Any, what: str, timeout: float = PATIENCE) -> None:
    """Poll a real condition, bounded."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        pause.wait(0.05)


class Writer(threading.Thread):
    """Executes keyed deposits one after the other; an outage or unknown commit is retried with the same key."""

    def __init__(self, number: int, service: WorkflowService, stop: threading.Event) -> None:
        super().__init__(name=f"writer-{number}", daemon=True)
        self.number = number
        self.service = service
        self.stop = stop
        #: (account, key, monotonic time the successful call started, and when it returned)
        self.acked: list[tuple[str, str, float, float]] = []
        self.errors: collections.Counter[str] = collections.Counter()
        self.failure: BaseException | None = None

    def run(self) -> None:
        try:
            i = 0
            while not self.stop.is_set():
                account, key = f"acct-{(self.number + i) % ACCOUNTS}", f"w{self.number}-{i}"
                while True:  # the same input, with the same key, until it is acknowledged
                    started = time.monotonic()
                    try:
                        outcome = self.service.execute(Deposit(account, key, 1 + i % 7))
                    except (StoreError, CommitUnknown) as exc:
                        self.errors[type(exc).__name__] += 1
                        self.stop.wait(0.05)  # a client's pause between retries, not an ordering device
                        continue
                    assert outcome.status in (OutcomeStatus.ACCEPTED, OutcomeStatus.DUPLICATE), outcome
                    if outcome.status is OutcomeStatus.DUPLICATE:
                        self.errors["duplicate on retry"] += 1
                    self.acked.append((account, key, started, time.monotonic()))
                    break
                i += 1
        except BaseException as exc:  # surfaced by the test
            self.failure = exc

    def on_new_primary(self, gone: float) -> list[tuple[str, float]]:
        """(key, time returned) of the calls made on the new primary: started once the old primary's last
        process had exited (`gone`), so no other node could have answered them."""
        return [(key, done) for _, key, started, done in self.acked if started > gone]


class Waiter(threading.Thread):
    """A caller waiting for `account` to close; `wait` raises StoreError when a re-read meets the outage, and
    waiting again is safe. It re-reads only when woken (poll_interval an hour): it returns through the
    store's LISTEN connection."""

    def __init__(self, service: WorkflowService, account: str) -> None:
        super().__init__(name="waiter", daemon=True)
        self.service, self.account = service, account
        self.outages = 0
        self.outcome: Any = None
        self.at = 0.0

    def run(self) -> None:
        while True:
            try:
                self.outcome = self.service.wait("ledger", self.account, timeout=PATIENCE, poll_interval=3600)
            except StoreError:
                self.outages += 1
                time.sleep(0.05)  # a client's pause between retries, not an ordering device
                continue
            self.at = time.monotonic()
            return


class Clients:
    """The writers (on the URI as `pg_autoctl show uri` prints it), an effect worker and a projection worker
    (on the key=value form of the same), each with its own store, as separate processes would have."""

    def __init__(self, uri: str, stack: ExitStack) -> None:
        writer_url = uri.replace("postgres://", "postgres://postgres@", 1)
        self.daemon_url = daemon_url = make_conninfo("", **{**conninfo_to_dict(uri), "user": "postgres"})
        assert "host=127.0.0.1,127.0.0.1" in daemon_url and "target_session_attrs=read-write" in daemon_url
        self.store = stack.enter_context(PostgresStore.connect(writer_url, schema=SCHEMA, max_size=WRITERS + 2))
        self.store.migrate()
        with self.store.connection() as conn:
            create_read_model(conn, SCHEMA)
        self.service = WorkflowService(self.store, workflows=[Ledger])
        self.handled = Handled()
        worker_store = stack.enter_context(PostgresStore.connect(daemon_url, schema=SCHEMA, max_size=6))
        self.runtime = EffectRuntime(
            WorkflowService(worker_store, workflows=[Ledger]),
            self.handled.registry(),
            handle_signals=False,
            lease=5.0,
            poll_interval=1.0,
            concurrency=4,
        )
        self.projected: list[tuple[str, float]] = []
        projection_store = stack.enter_context(PostgresStore.connect(daemon_url, schema=SCHEMA, max_size=2))
        self.projections = ProjectionWorker(
            WorkflowService(projection_store, workflows=[Ledger]),
            [ledger_projection(SCHEMA, self.projected)],
            poll_interval=1.0,
            lease=5.0,
        )
        self.stop_writers = threading.Event()
        self.writers = [Writer(n, self.service, self.stop_writers) for n in range(WRITERS)]
        self.threads: list[threading.Thread] = [
            threading.Thread(target=self.runtime.run, name="effects", daemon=True),
            threading.Thread(target=self.projections.run, name="projections", daemon=True),
            *self.writers,
        ]
        stack.callback(self.stop)
        for thread in self.threads:
            thread.start()

    def stop_writing(self) -> None:
        """Stop the writers; each finishes the input it has in hand (until it is acknowledged)."""
        self.stop_writers.set()
        for w in self.writers:
            w.join(PATIENCE)
            assert w.failure is None, w.failure

    def stop(self) -> None:
        self.stop_writers.set()
        self.runtime.stop()
        self.projections.stop()
        for thread in self.threads:
            thread.join(60)
        for w in self.writers:
            assert w.failure is None, w.failure

    def acked(self) -> list[tuple[str, str]]:
        return [(account, key) for w in self.writers for account, key, _, _ in w.acked]

    def written_on_new_primary(self, gone: float) -> set[str]:
        """Keys of the deposits written on the new primary."""
        return {key for w in self.writers for key, _ in w.on_new_primary(gone)}

    def folds(self, accounts: list[str]) -> dict[str, Any]:
        return {a: self.service.state("ledger", a) for a in accounts}

    def settled(self, accounts: list[str]) -> bool:
        """Every deposit's feedback applied, and the read model equal to the fold."""
        states = self.folds(accounts)
        if any(set(s.acked) != set(s.keys) for s in states.values()):
            return False
        with self.store.connection() as conn:
            model = read_model(conn, SCHEMA)
        return model == {a: (s.total, len(s.keys), len(s.acked)) for a, s in states.items()}


def writable_after(url: str, killed: float) -> float:
    """Seconds from the kill until a fresh session on `url` can write: the promotion as a client sees it."""
    while True:
        try:
            with psycopg.connect(url, autocommit=True, connect_timeout=2) as conn:
                conn.execute("SELECT txid_current()")  # refused on a standby (25006)
                return time.monotonic() - killed
        except psycopg.Error:
            time.sleep(0.02)  # polling the formation, as fast as a client could


def check_history(clients: Clients, acked: list[tuple[str, str]]) -> None:
    """Each acknowledged input once in the history, each effect's feedback once, the read model the fold."""
    accounts = sorted({account for account, _ in acked})
    wait_for(lambda: clients.settled(accounts), "every effect's feedback and the projection to catch up")
    states = clients.folds(accounts)
    in_history = collections.Counter(key for s in states.values() for key in s.keys)
    assert {key: in_history[key] for _, key in acked} == {key: 1 for _, key in acked}
    assert set(in_history) == {key for _, key in acked}  # nothing that was never asked for
    # Every effect handled (at least once: delivery is at-least-once), its feedback applied exactly once.
    feedback = collections.Counter(key for s in states.values() for key in s.acked)
    assert feedback == collections.Counter({key: 1 for _, key in acked})
    assert all(clients.handled.runs[key] >= 1 for _, key in acked)
    with clients.store.connection() as conn:
        assert read_model(conn, SCHEMA) == {a: (s.total, len(s.keys), len(s.acked)) for a, s in states.items()}


def test_a_killed_primary_is_replaced_and_nothing_acknowledged_is_lost_or_doubled(
    formation: paf.Formation,
) -> None:
    uri = formation.uri()  # postgres://h1:p1,h2:p2/postgres?target_session_attrs=read-write&sslmode=prefer
    with ExitStack() as stack:
        clients = Clients(uri, stack)
        service, writers, handled = clients.service, clients.writers, clients.handled
        # A waiter on an instance that closes only after the failover: its LISTEN connection must follow.
        service.execute(Deposit("waited", "waited-0", 1))
        assert clients.store.listening(30.0)
        waiter = Waiter(service, "waited")
        waiter.start()
        wait_for(lambda: all(len(w.acked) >= BEFORE for w in writers), "the writers' first inputs")
        wait_for(lambda: handled.times and clients.projected, "the effect and projection workers to work")

        old_primary = formation.primary()
        killed, gone = formation.kill_node(old_primary)
        promoted_s = writable_after(clients.daemon_url, killed)

        wait_for(lambda: all(w.on_new_primary(gone) for w in writers), "every writer to succeed again")
        first_writes = sorted(min(done for _, done in w.on_new_primary(gone)) - killed for w in writers)
        # Their effects and events exist only on the new primary: the workers claimed and read them there.
        after = clients.written_on_new_primary(gone)
        wait_for(lambda: any(k in after for k, _ in handled.times), "an effect of the new primary handled")
        wait_for(lambda: any(k in after for k, _ in clients.projected), "an event of the new primary projected")
        service.execute(Close("waited"))
        waiter.join(PATIENCE)
        assert isinstance(waiter.outcome, Completed), waiter.outcome
        new_primary = formation.primary()
        assert new_primary != old_primary
        # The waiters' LISTEN connection is on the new primary.
        assert clients.store.listening(30.0)
        assert clients.store.listener_pid in formation.backend_pids(new_primary)

        wait_for(lambda: all(len(w.on_new_primary(gone)) >= AFTER for w in writers), "the writers' later inputs")
        clients.stop_writing()
        acked = [*clients.acked(), ("waited", "waited-0")]
        check_history(clients, acked)

        errors = sum((w.errors for w in writers), collections.Counter[str]())
        effect_s = min(t for k, t in handled.times if k in after) - killed
        projection_s = min(t for k, t in clients.projected if k in after) - killed
        print(
            "\n| failover (SIGKILL of the primary's keeper and postmaster) | seconds after the kill |\n|---|---|\n"
            f"| a fresh session can write (the promotion, seen by a client polling every 20 ms) | {promoted_s:.2f} |\n"
            f"| first writer success on the new primary | {first_writes[0]:.2f} |\n"
            f"| all {WRITERS} writers succeeded again | {first_writes[-1]:.2f} |\n"
            f"| effect worker: first effect written on the new primary handled | {effect_s:.2f} |\n"
            f"| projection worker: first event written on the new primary projected | {projection_s:.2f} |\n"
            f"| waiter woken by a close after the failover | {waiter.at - killed:.2f} |\n"
            f"writer errors retried: {dict(errors)}; waiter outages: {waiter.outages}; "
            f"handler re-runs: {sum(n - 1 for n in handled.runs.values())}; inputs acknowledged: {len(acked)}; "
            f"old primary {old_primary}, new {new_primary}"
        )
