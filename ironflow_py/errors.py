"""The exceptions ironflow_py raises: one root, a small flat hierarchy, messages that name what went wrong."""

from __future__ import annotations


class IronflowError(Exception):
    """Root of every error ironflow_py raises; driver errors are translated into one of these."""


class ConfigurationError(IronflowError):
    """A workflow, type table or service is declared inconsistently (duplicate names, missing types)."""


class UnknownInputType(IronflowError):
    """An input was executed whose class no registered workflow declares; nothing was written.

    Args:
        input_class: The class of the input.
    """

    def __init__(self, input_class: type) -> None:
        self.input_class = input_class
        super().__init__(
            f"no registered workflow accepts inputs of type {input_class.__module__}.{input_class.__qualname__}"
        )


class WorkflowError(IronflowError):
    """An error tied to one workflow instance; carries its type and id, and names them in the message.

    Args:
        message: What went wrong.
        workflow_type: The instance's workflow type.
        workflow_id: The instance's id (None when the error happened before it was known).
    """

    def __init__(self, message: str, *, workflow_type: str, workflow_id: str | None) -> None:
        self.workflow_type = workflow_type
        self.workflow_id = workflow_id
        where = f"workflow {workflow_type!r}" + (f" instance {workflow_id!r}" if workflow_id is not None else "")
        super().__init__(f"{where}: {message}")


class InvalidWorkflowId(WorkflowError):
    """`workflow_id(input)` returned something that cannot identify an instance (empty, not a string)."""


class DecideFailed(WorkflowError):
    """User code (`decide`, `evolve`, `is_terminal`, `input_key`) raised; nothing was written."""


class CodecError(WorkflowError):
    """A value could not be encoded to, or decoded from, its stored JSON form.

    Args:
        message: What went wrong.
        workflow_type: The instance's workflow type.
        workflow_id: The instance's id (None if not known).
        type_name: The stored type name involved, if any.
        seq: The event's sequence, for a stored event.
        path: Where in the payload the bad value sits (`$.lines[2].sku`), when known.
    """

    def __init__(
        self,
        message: str,
        *,
        workflow_type: str,
        workflow_id: str | None,
        type_name: str | None = None,
        seq: int | None = None,
        path: str | None = None,
    ) -> None:
        self.type_name = type_name
        self.seq = seq
        #: Where in the payload the bad value sits (`$.lines[2].sku`), when known.
        self.path = path
        detail = message
        if type_name is not None:
            detail += f" (type {type_name!r}"
            detail += f", sequence {seq})" if seq is not None else ")"
        if path is not None:
            detail += f" at {path}"
        super().__init__(detail, workflow_type=workflow_type, workflow_id=workflow_id)


class EncodeError(CodecError):
    """An event, effect, timer input or state could not be serialized; nothing was written."""


class DecodeError(CodecError):
    """A stored payload no longer matches its class (renamed field, wrong type); nothing was written."""


class UnknownTypeName(DecodeError):
    """A stored row names a type that the code no longer declares."""


class StoreError(IronflowError):
    """The database failed (connection lost, server down, timeout); the transaction was rolled back.

    An outage: retrying later can succeed. A value the database refused is `ValueRefused` instead, and a
    connection lost while COMMIT was in flight is `CommitUnknown`. Driver errors are translated into these
    types at the store's boundary.

    Args:
        message: What failed ("ExceptionType: detail" of the driver error).
        workflow_type: The instance's workflow type, when the call was about one.
        workflow_id: The instance's id, when the call was about one.
    """

    def __init__(self, message: str, *, workflow_type: str | None = None, workflow_id: str | None = None) -> None:
        self.workflow_type = workflow_type
        self.workflow_id = workflow_id
        where = ""
        if workflow_type is not None:
            where = f"workflow {workflow_type!r}" + (f" instance {workflow_id!r}" if workflow_id else "") + ": "
        super().__init__(where + message)


class ValueRefused(IronflowError):
    """The database refused a value (a constraint, a size limit, an encoding); nothing was written.

    SQLSTATE classes 22, 23 and 54. Permanent: the same input fails the same way, so it is never retried.

    Args:
        message: What was refused ("ExceptionType: detail" of the driver error).
        workflow_type: The instance's workflow type, when the call was about one.
        workflow_id: The instance's id, when the call was about one.
        sqlstate: The PostgreSQL error code (`22P05`, `23505`, `54000`), or None when the driver refused
            the value before sending it (NUL in a text parameter, a lone surrogate).
    """

    def __init__(
        self,
        message: str,
        *,
        workflow_type: str | None = None,
        workflow_id: str | None = None,
        sqlstate: str | None = None,
    ) -> None:
        self.workflow_type = workflow_type
        self.workflow_id = workflow_id
        self.sqlstate = sqlstate
        where = ""
        if workflow_type is not None:
            where = f"workflow {workflow_type!r}" + (f" instance {workflow_id!r}" if workflow_id else "") + ": "
        code = f" (SQLSTATE {sqlstate})" if sqlstate else ""
        super().__init__(f"{where}the database refused a value{code}: {message}")


class CommitUnknown(IronflowError):
    """The connection was lost while COMMIT was in flight: the input may or may not have been applied.

    Retrying is safe only with an input key (`workflow.input_key`, or `execute(..., input_key=...)`): the
    retry then either applies the input or reports `duplicate`. Without a key a retry may apply it twice.

    Args:
        message: The driver error seen while committing.
        workflow_type: The instance's workflow type, when the call was about one.
        workflow_id: The instance's id, when the call was about one.
    """

    def __init__(self, message: str, *, workflow_type: str | None = None, workflow_id: str | None = None) -> None:
        self.workflow_type = workflow_type
        self.workflow_id = workflow_id
        where = ""
        if workflow_type is not None:
            where = f"workflow {workflow_type!r}" + (f" instance {workflow_id!r}" if workflow_id else "") + ": "
        super().__init__(f"{where}the commit's outcome is unknown (the connection was lost during COMMIT): {message}")


class ReplicaBehind(StoreError):
    """A read asked for `min_lsn` and the replica had not replayed that far within the timeout.

    Retryable: the replica is lagging or its replication stopped; nothing was read. Read from the primary
    (a service without `read_store`) when the answer cannot wait (design/scale-out.md, "Read replicas").

    Args:
        min_lsn: The WAL position asked for (`Outcome.wal_position`, PostgreSQL `pg_lsn` text).
        replayed: The replica's replay position when it gave up (None: it reported none).
        timeout: How long it waited, in seconds (monotonic clock).
        workflow_type: The instance's workflow type, when the read was about one.
        workflow_id: The instance's id, when the read was about one.
    """

    def __init__(
        self,
        *,
        min_lsn: str,
        replayed: str | None,
        timeout: float,
        workflow_type: str | None = None,
        workflow_id: str | None = None,
    ) -> None:
        self.min_lsn = min_lsn
        self.replayed = replayed
        self.timeout = timeout
        super().__init__(
            f"the replica had replayed WAL up to {replayed or 'nothing'} after {timeout:g} s, not yet {min_lsn}",
            workflow_type=workflow_type,
            workflow_id=workflow_id,
        )


class StoreStalled(StoreError):
    """The database gave no answer within the store's bound, so the store cut the connection.

    A stall, not a refusal: the network, a proxy or a pooler froze (or the server hung) while a statement
    waited for its answer. The watchdog of `PostgresStore` shut the connection down after `stall_timeout`
    seconds (`PostgresStore.connect`), or after half the lease for a worker's claims, heartbeats and settles;
    the transaction was rolled back and the connection discarded. Retryable like any `StoreError`. A stall
    while COMMIT was in flight is `CommitUnknown` instead (design/reliability.md, "Stalls").

    Args:
        message: What stalled and for how long.
        workflow_type: The instance's workflow type, when the call was about one.
        workflow_id: The instance's id, when the call was about one.
    """


class ConcurrencyConflict(StoreError):
    """Two writers produced the same instance sequence; only possible if the instance lock was bypassed."""


class MigrationError(StoreError):
    """The schema could not be migrated, or the database holds migrations this code does not know."""


class SchemaNotMigrated(MigrationError):
    """The schema lacks migrations this code needs (never migrated, or migrated by an older version).

    Args:
        schema: The schema name.
        missing: The versions of the migrations not applied yet.
    """

    def __init__(self, schema: str, missing: list[int]) -> None:
        self.schema = schema
        self.missing = missing
        super().__init__(f"schema {schema!r} is not migrated (missing {missing}): run `ironflow-py migrate`")


class NotFound(IronflowError):
    """A workflow type, instance, event or row that was asked for does not exist.

    Args:
        message: What was not found.
        workflow_type: The workflow type involved, if any.
        workflow_id: The instance's id, if any.
    """

    def __init__(self, message: str, *, workflow_type: str | None = None, workflow_id: str | None = None) -> None:
        self.workflow_type = workflow_type
        self.workflow_id = workflow_id
        super().__init__(message)


class WorkflowOutcomeError(WorkflowError):
    """`unwrap()` of an outcome that is not `Completed`; `outcome` is the outcome itself.

    Args:
        message: How the instance ended.
        outcome: The outcome value (`Failed`, `Cancelled`, `TimedOut` or `Terminated`).
        workflow_type: The instance's workflow type.
        workflow_id: The instance's id.
    """

    def __init__(self, message: str, *, outcome: object, workflow_type: str, workflow_id: str | None) -> None:
        self.outcome = outcome
        super().__init__(message, workflow_type=workflow_type, workflow_id=workflow_id)


class WorkflowFailed(WorkflowOutcomeError):
    """The instance ended `Failed`; `outcome.code` and `outcome.detail` say why."""


class WorkflowCancelled(WorkflowOutcomeError):
    """The instance ended `Cancelled`."""


class WorkflowTimedOut(WorkflowOutcomeError):
    """The instance ended `TimedOut`: its own deadline passed (not a caller's `WaitTimedOut`)."""


class WorkflowTerminated(WorkflowOutcomeError):
    """An operator terminated the instance."""


class WaitTimedOut(WorkflowError):
    """A caller's `wait` gave up before the instance closed; the instance itself is still running.

    Args:
        workflow_type: The instance's workflow type.
        workflow_id: The instance's id.
        timeout: How long the caller waited, in seconds.
    """

    def __init__(self, *, workflow_type: str, workflow_id: str, timeout: float) -> None:
        self.timeout = timeout
        super().__init__(
            f"still running after waiting {timeout:g} s", workflow_type=workflow_type, workflow_id=workflow_id
        )


class NotCancellable(WorkflowError):
    """`cancel_input` returned None: this workflow (in this state) does not accept cancel requests."""


class InstanceClosed(WorkflowError):
    """The operation needs an open instance (pause, resume, terminate) and this one has closed."""


class InvalidDelay(WorkflowError):
    """A delayed start's time is unusable (naive `not_before`, negative `delay`, or both); nothing was written."""


class VersionNotLoaded(WorkflowError):
    """An instance runs a `Workflow.version` this process has not registered; nothing was read or written.

    Register the class of that version beside the others (same `type`), or move the instance with
    `WorkflowService.migrate_version` (design/versioning.md).

    Args:
        message: What went wrong.
        workflow_type: The instance's workflow type.
        workflow_id: The instance's id.
        version: The version the instance records.
        loaded: The versions of that type this process has registered.
    """

    def __init__(
        self, message: str, *, workflow_type: str, workflow_id: str | None, version: str, loaded: tuple[str, ...]
    ) -> None:
        self.version = version
        self.loaded = loaded
        super().__init__(message, workflow_type=workflow_type, workflow_id=workflow_id)


class VersionsMissing(IronflowError):
    """A worker's code lacks versions that still have open instances, so it refuses to start.

    Args:
        missing: (workflow type, version, open instances) for each version with no registered class.
    """

    def __init__(self, missing: list[tuple[str, str, int]]) -> None:
        self.missing = missing
        listed = ", ".join(f"{t!r} version {v!r} ({n} open)" for t, v, n in missing)
        super().__init__(
            f"this code has no class for workflow versions that still have open instances: {listed}; register "
            "those classes, or move the instances with migrate_version"
        )


class ChildConflict(WorkflowError):
    """A child could not be started: its id already belongs to another instance (another parent, or none).

    Permanent: the start row is dead-lettered and the parent's `dead_letter_input` is told. The message
    names the child (`workflow_type`, `workflow_id`) and the parent that asked.
    """


class LeaseLost(IronflowError):
    """A worker's claim on an outbox row or timer no longer holds; the change it wanted was not applied.

    The lease was taken over, the timer cancelled or replaced, or the row released; anything the change
    carried (an effect's feedback input, a timer's input) was not applied either.

    Args:
        what: ``"effect"`` or ``"timer"``.
        row_id: The outbox or timer row's id.
        worker: The worker id whose claim was lost.
    """

    def __init__(self, what: str, row_id: int, worker: str) -> None:
        self.what = what
        self.row_id = row_id
        self.worker = worker
        super().__init__(f"{what} {row_id}: worker {worker!r} no longer holds its claim; nothing was applied")


class Retryable(IronflowError):
    """Raised by an effect handler: this attempt failed, try again later under the effect's RetryPolicy.

    Any other unexpected exception is treated the same way.
    """


class Permanent(IronflowError):
    """Raised by an effect handler: retrying cannot help; dead-letter the effect at once."""


class ProjectionError(IronflowError):
    """A projection could not move forward; its checkpoint and read model are unchanged.

    Args:
        message: What went wrong.
        projection: The projection's name.
    """

    def __init__(self, message: str, *, projection: str) -> None:
        self.projection = projection
        super().__init__(f"projection {projection!r}: {message}")


class ProjectionGap(ProjectionError):
    """An instance's events did not arrive contiguous; the worker stops rather than apply a gap.

    Args:
        projection: The projection's name.
        workflow_type: The instance's workflow type.
        workflow_id: The instance's id.
        expected_seq: The sequence the projection expected next for that instance.
        seq: The sequence that arrived.
        position: The arriving event's global position.
    """

    def __init__(
        self,
        *,
        projection: str,
        workflow_type: str,
        workflow_id: str,
        expected_seq: int,
        seq: int,
        position: int,
    ) -> None:
        self.workflow_type = workflow_type
        self.workflow_id = workflow_id
        self.expected_seq = expected_seq
        self.seq = seq
        self.position = position
        super().__init__(
            f"workflow {workflow_type!r} instance {workflow_id!r}: expected sequence {expected_seq}, "
            f"got {seq} at position {position}; nothing applied",
            projection=projection,
        )


class ProjectionHandlerFailed(ProjectionError):
    """A projection's handler (or the decoding of its event) kept failing on one event.

    Args:
        message: The handler's last error.
        projection: The projection's name.
        workflow_type: The event's workflow type.
        workflow_id: The event's instance.
        seq: The event's sequence within its instance.
        position: The event's global position.
        attempts: How many times the batch holding it failed.
    """

    def __init__(
        self,
        message: str,
        *,
        projection: str,
        workflow_type: str,
        workflow_id: str,
        seq: int,
        position: int,
        attempts: int,
    ) -> None:
        self.workflow_type = workflow_type
        self.workflow_id = workflow_id
        self.seq = seq
        self.position = position
        self.attempts = attempts
        super().__init__(
            f"workflow {workflow_type!r} instance {workflow_id!r} sequence {seq} (position {position}), "
            f"attempt {attempts}: {message}",
            projection=projection,
        )
