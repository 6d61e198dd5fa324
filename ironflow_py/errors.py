"""The exceptions ironflow_py raises: one root, a small flat hierarchy, messages that name what went wrong."""

from __future__ import annotations


class IronflowError(Exception):
    """Root of every error ironflow_py raises; driver errors are translated into one of these."""


class ConfigurationError(IronflowError):
    """A workflow, type table or service is declared inconsistently (duplicate names, missing types)."""


class UnknownInputType(IronflowError):
    """An input was executed whose class no registered workflow declares."""

    def __init__(self, input_class: type) -> None:
        self.input_class = input_class
        super().__init__(
            f"no registered workflow accepts inputs of type {input_class.__module__}.{input_class.__qualname__}"
        )


class WorkflowError(IronflowError):
    """An error tied to one workflow instance; carries its type and id."""

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
    """A value could not be encoded to, or decoded from, its stored JSON form."""

    def __init__(
        self,
        message: str,
        *,
        workflow_type: str,
        workflow_id: str | None,
        type_name: str | None = None,
        seq: int | None = None,
    ) -> None:
        self.type_name = type_name
        self.seq = seq
        detail = message
        if type_name is not None:
            detail += f" (type {type_name!r}"
            detail += f", sequence {seq})" if seq is not None else ")"
        super().__init__(detail, workflow_type=workflow_type, workflow_id=workflow_id)


class EncodeError(CodecError):
    """An event, effect, timer input or state could not be serialized; nothing was written."""


class DecodeError(CodecError):
    """A stored payload no longer matches its class (renamed field, wrong type); nothing was written."""


class UnknownTypeName(DecodeError):
    """A stored row names a type that the code no longer declares."""


class StoreError(IronflowError):
    """The database failed (connection lost, server error); the transaction was rolled back."""

    def __init__(self, message: str, *, workflow_type: str | None = None, workflow_id: str | None = None) -> None:
        self.workflow_type = workflow_type
        self.workflow_id = workflow_id
        where = ""
        if workflow_type is not None:
            where = f"workflow {workflow_type!r}" + (f" instance {workflow_id!r}" if workflow_id else "") + ": "
        super().__init__(where + message)


class ConcurrencyConflict(StoreError):
    """Two writers produced the same instance sequence; only possible if the instance lock was bypassed."""


class MigrationError(StoreError):
    """The schema could not be migrated, or the database holds migrations this code does not know."""


class SchemaNotMigrated(MigrationError):
    """The schema lacks migrations this code needs (never migrated, or migrated by an older version)."""

    def __init__(self, schema: str, missing: list[int]) -> None:
        self.schema = schema
        self.missing = missing
        super().__init__(f"schema {schema!r} is not migrated (missing {missing}): run `ironflow-py migrate`")


class NotFound(IronflowError):
    """A workflow type or instance that was asked for does not exist."""

    def __init__(self, message: str, *, workflow_type: str | None = None, workflow_id: str | None = None) -> None:
        self.workflow_type = workflow_type
        self.workflow_id = workflow_id
        super().__init__(message)


class WorkflowOutcomeError(WorkflowError):
    """`unwrap()` of an outcome that is not `Completed`; `outcome` is the outcome itself."""

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
    """A caller's `wait` gave up before the instance closed; the instance itself is still running."""

    def __init__(self, *, workflow_type: str, workflow_id: str, timeout: float) -> None:
        self.timeout = timeout
        super().__init__(
            f"still running after waiting {timeout:g} s", workflow_type=workflow_type, workflow_id=workflow_id
        )


class NotCancellable(WorkflowError):
    """`cancel_input` returned None: this workflow (in this state) does not accept cancel requests."""


class InstanceClosed(WorkflowError):
    """The operation needs an open instance (pause, resume, terminate) and this one has closed."""


class LeaseLost(IronflowError):
    """A worker's claim on an outbox row or timer no longer holds (lease taken over, timer cancelled or
    replaced, row released); the change it wanted to make, and anything it carried, was not applied."""

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
    """A projection could not move forward; its checkpoint and read model are unchanged."""

    def __init__(self, message: str, *, projection: str) -> None:
        self.projection = projection
        super().__init__(f"projection {projection!r}: {message}")


class ProjectionGap(ProjectionError):
    """An instance's events did not arrive contiguous; the worker stops rather than apply a gap."""

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
    """A projection's handler (or the decoding of its event) kept failing on one event."""

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
