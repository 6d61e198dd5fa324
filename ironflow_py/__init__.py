"""ironflow_py: durable workflows written as two pure functions, made durable on PostgreSQL."""

from ironflow_py.app import App
from ironflow_py.clock import Clock, ManualClock, SystemClock
from ironflow_py.codec import make_converter
from ironflow_py.decision import Decision, Timer
from ironflow_py.effects import DeadLetters, EffectContext, EffectRegistry, EffectRuntime, RetryPolicy
from ironflow_py.errors import (
    CodecError,
    ConcurrencyConflict,
    ConfigurationError,
    DecideFailed,
    DecodeError,
    EncodeError,
    InvalidWorkflowId,
    IronflowError,
    LeaseLost,
    MigrationError,
    NotFound,
    Permanent,
    ProjectionError,
    ProjectionGap,
    ProjectionHandlerFailed,
    Retryable,
    StoreError,
    UnknownInputType,
    UnknownTypeName,
    WorkflowError,
)
from ironflow_py.projections import (
    InMemoryProjection,
    OnError,
    Projection,
    ProjectionControl,
    ProjectionRetry,
    ProjectionStatus,
    ProjectionWorker,
)
from ironflow_py.records import (
    EffectInfo,
    InstanceInfo,
    InstanceStatus,
    Outcome,
    OutcomeStatus,
    RecordedEvent,
)
from ironflow_py.service import WorkflowService
from ironflow_py.store.memory import MemoryStore
from ironflow_py.store.postgres import PostgresStore
from ironflow_py.workflow import Workflow

__all__ = [
    "App",
    "Clock",
    "CodecError",
    "ConcurrencyConflict",
    "ConfigurationError",
    "DeadLetters",
    "DecideFailed",
    "Decision",
    "DecodeError",
    "EffectContext",
    "EffectInfo",
    "EffectRegistry",
    "EffectRuntime",
    "EncodeError",
    "InMemoryProjection",
    "InstanceInfo",
    "InstanceStatus",
    "InvalidWorkflowId",
    "IronflowError",
    "LeaseLost",
    "ManualClock",
    "MemoryStore",
    "MigrationError",
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
    "RecordedEvent",
    "RetryPolicy",
    "Retryable",
    "StoreError",
    "SystemClock",
    "Timer",
    "UnknownInputType",
    "UnknownTypeName",
    "Workflow",
    "WorkflowError",
    "WorkflowService",
    "make_converter",
]
