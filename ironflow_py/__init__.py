"""ironflow_py: durable workflows written as two pure functions, made durable on PostgreSQL.

The names whose modules import psycopg (`PostgresStore`, `EffectRuntime`, `DeadLetters`, the projection
worker and control) load on first use (PEP 562), so the in-memory path never imports the driver.
"""

from typing import TYPE_CHECKING

from ironflow_py import _lazy
from ironflow_py.app import App
from ironflow_py.clock import Clock, ManualClock, SystemClock
from ironflow_py.codec import make_converter
from ironflow_py.composition import ChildRef, Join, Resolution
from ironflow_py.decision import ChildStart, Decision, Message, Timer
from ironflow_py.effects import EffectContext, EffectRegistry, RetryPolicy
from ironflow_py.errors import (
    ChildConflict,
    CodecError,
    CommitUnknown,
    ConcurrencyConflict,
    ConfigurationError,
    DecideFailed,
    DecodeError,
    EncodeError,
    InstanceClosed,
    InvalidDelay,
    InvalidWorkflowId,
    IronflowError,
    LeaseLost,
    MigrationError,
    NotCancellable,
    NotFound,
    Permanent,
    ProjectionError,
    ProjectionGap,
    ProjectionHandlerFailed,
    ReplicaBehind,
    Retryable,
    SchemaNotMigrated,
    StoreError,
    StoreStalled,
    UnknownInputType,
    UnknownTypeName,
    ValueRefused,
    VersionNotLoaded,
    VersionsMissing,
    WaitTimedOut,
    WorkflowCancelled,
    WorkflowError,
    WorkflowFailed,
    WorkflowOutcomeError,
    WorkflowTerminated,
    WorkflowTimedOut,
)
from ironflow_py.lifecycle import (
    Cancelled,
    CancelRequest,
    Completed,
    ContinuedAsNew,
    Failed,
    RunOutcome,
    Terminated,
    TimedOut,
)
from ironflow_py.projections import InMemoryProjection, OnError, Projection
from ironflow_py.records import (
    EffectInfo,
    InstanceInfo,
    InstanceStatus,
    Outcome,
    OutcomeStatus,
    RecordedEvent,
)
from ironflow_py.retention import ClosedMode, PruneReport, RetentionPolicy
from ironflow_py.schedule import Schedule, ScheduledRun
from ironflow_py.service import WorkflowService
from ironflow_py.store.memory import MemoryStore
from ironflow_py.upcasting import Upcast
from ironflow_py.workflow import Workflow

if TYPE_CHECKING:
    from ironflow_py.effects import DeadLetters, EffectRuntime
    from ironflow_py.projections import ProjectionControl, ProjectionRetry, ProjectionStatus, ProjectionWorker
    from ironflow_py.store.postgres import PostgresStore

_LAZY = {
    "DeadLetters": "ironflow_py.effects",
    "EffectRuntime": "ironflow_py.effects",
    "ProjectionControl": "ironflow_py.projections",
    "ProjectionRetry": "ironflow_py.projections",
    "ProjectionStatus": "ironflow_py.projections",
    "ProjectionWorker": "ironflow_py.projections",
    "PostgresStore": "ironflow_py.store.postgres",
}


def __getattr__(name: str) -> object:
    """PEP 562: import a psycopg-using public name on first use (see the module docstring)."""
    return _lazy.load(__name__, _LAZY, name, globals())


__all__ = [
    "App",
    "CancelRequest",
    "Cancelled",
    "ChildConflict",
    "ChildRef",
    "ChildStart",
    "Clock",
    "ClosedMode",
    "CodecError",
    "CommitUnknown",
    "Completed",
    "ConcurrencyConflict",
    "ConfigurationError",
    "ContinuedAsNew",
    "DeadLetters",
    "DecideFailed",
    "Decision",
    "DecodeError",
    "EffectContext",
    "EffectInfo",
    "EffectRegistry",
    "EffectRuntime",
    "EncodeError",
    "Failed",
    "InMemoryProjection",
    "InstanceClosed",
    "InstanceInfo",
    "InstanceStatus",
    "InvalidDelay",
    "InvalidWorkflowId",
    "IronflowError",
    "Join",
    "LeaseLost",
    "ManualClock",
    "MemoryStore",
    "Message",
    "MigrationError",
    "NotCancellable",
    "NotFound",
    "OnError",
    "Outcome",
    "OutcomeStatus",
    "Permanent",
    "PostgresStore",
    "Projection",
    "ProjectionControl",
    "ProjectionError",
    "ProjectionGap",
    "ProjectionHandlerFailed",
    "ProjectionRetry",
    "ProjectionStatus",
    "ProjectionWorker",
    "PruneReport",
    "RecordedEvent",
    "ReplicaBehind",
    "Resolution",
    "RetentionPolicy",
    "RetryPolicy",
    "Retryable",
    "RunOutcome",
    "Schedule",
    "ScheduledRun",
    "SchemaNotMigrated",
    "StoreError",
    "StoreStalled",
    "SystemClock",
    "Terminated",
    "TimedOut",
    "Timer",
    "UnknownInputType",
    "UnknownTypeName",
    "Upcast",
    "ValueRefused",
    "VersionNotLoaded",
    "VersionsMissing",
    "WaitTimedOut",
    "Workflow",
    "WorkflowCancelled",
    "WorkflowError",
    "WorkflowFailed",
    "WorkflowOutcomeError",
    "WorkflowService",
    "WorkflowTerminated",
    "WorkflowTimedOut",
    "make_converter",
]
