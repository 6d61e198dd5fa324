"""Projections: read models fed every committed event once, in a gap-free global order, by leader-elected workers."""

from ironflow_py.projections._control import ProjectionControl, ProjectionStatus
from ironflow_py.projections._projection import InMemoryProjection, OnError, Projection
from ironflow_py.projections._worker import ProjectionRetry, ProjectionWorker

__all__ = [
    "InMemoryProjection",
    "OnError",
    "Projection",
    "ProjectionControl",
    "ProjectionRetry",
    "ProjectionStatus",
    "ProjectionWorker",
]
