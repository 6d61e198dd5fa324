"""Projections: read models fed every committed event once, in a gap-free global order, by leader-elected workers."""

from typing import TYPE_CHECKING

from ironflow_py import _lazy
from ironflow_py.projections._projection import InMemoryProjection, OnError, Projection

if TYPE_CHECKING:
    from ironflow_py.projections._control import ProjectionControl, ProjectionStatus
    from ironflow_py.projections._worker import ProjectionRetry, ProjectionWorker

# These import psycopg: loaded on first use (PEP 562), so declaring a projection (`App`) does not.
_LAZY = {
    "ProjectionControl": "ironflow_py.projections._control",
    "ProjectionStatus": "ironflow_py.projections._control",
    "ProjectionRetry": "ironflow_py.projections._worker",
    "ProjectionWorker": "ironflow_py.projections._worker",
}


def __getattr__(name: str) -> object:
    """PEP 562: import the projection worker and control on first use."""
    return _lazy.load(__name__, _LAZY, name, globals())


__all__ = [
    "InMemoryProjection",
    "OnError",
    "Projection",
    "ProjectionControl",
    "ProjectionRetry",
    "ProjectionStatus",
    "ProjectionWorker",
]
