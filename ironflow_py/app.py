"""`App`: what a service declares once (workflows, converter, projections) for the CLI and workers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import cattrs

from ironflow_py.clock import Clock
from ironflow_py.effects._registry import EffectRegistry
from ironflow_py.errors import ConfigurationError
from ironflow_py.projections._projection import Projection
from ironflow_py.retention import RetentionPolicy
from ironflow_py.schedule import Schedule
from ironflow_py.service import WorkflowService
from ironflow_py.store.base import Store
from ironflow_py.telemetry._observer import Observer
from ironflow_py.workflow import AnyWorkflow


@attrs.frozen
class App:
    """What an application declares once, so the CLI and workers can build on it.

    A declaration, not a connection: `ironflow-py --app module:app` loads it and supplies the store.

    Attributes:
        workflows: Workflow classes (instantiated with no arguments) or instances.
        converter: The cattrs converter for payloads; None: `make_converter()`.
        effects: The effect handlers `ironflow-py worker` runs; None: the worker fires timers and delivers
            only the engine's own rows (messages, children, notices), running no handler.
        projections: The read models `ironflow-py projections run` keeps.
        schedules: `Schedule` declarations; a worker reconciles them when it starts (design/schedules.md).
        tracer_provider: An OpenTelemetry `TracerProvider` the CLI's daemons trace with (extra `otel`);
            None: no traces.
        retention: How long finished rows are kept: `ironflow-py worker` prunes by it every
            `retention.interval`, and `ironflow-py prune` uses it unless options override it
            (design/retention.md). None: the worker never prunes.
        default_version: Workflow type -> the version new instances get, for types registered in several
            versions (``{"order": "2"}``; design/versioning.md). A type not named defaults to the version
            listed last in `workflows`.
    """

    workflows: Sequence[AnyWorkflow | type[AnyWorkflow]]
    converter: cattrs.Converter | None = None
    effects: EffectRegistry | None = None
    projections: Sequence[Projection] = ()
    schedules: Sequence[Schedule] = ()
    tracer_provider: Any = None
    retention: RetentionPolicy | None = None
    default_version: Mapping[str, str] = attrs.field(factory=dict)

    def service(
        self,
        store: Store,
        *,
        clock: Clock | None = None,
        logger: Any = None,
        observer: Observer | None = None,
        read_store: Store | None = None,
    ) -> WorkflowService:
        """A `WorkflowService` over `store` with this app's workflows and converter.

        Args:
            store: Where instances live (`PostgresStore` or `MemoryStore`).
            clock: The clock `decide` reads as `now`; None: the wall clock in UTC.
            logger: A structlog-style logger; None: `structlog.get_logger("ironflow_py")`.
            observer: Where metrics, traces and liveness go (`ironflow_py.telemetry.Observer`); None: nowhere.
            read_store: A store on a streaming replica that serves the reads (`WorkflowService`); None: `store`.

        Returns:
            The service, with every workflow (and the schedules' workflow) registered.

        Raises:
            ConfigurationError: A workflow is declared inconsistently (see `WorkflowService.register`).
        """
        return WorkflowService(
            store,
            workflows=self.workflows,
            clock=clock,
            converter=self.converter,
            logger=logger,
            observer=observer,
            schedules=self.schedules,
            read_store=read_store,
            default_version=self.default_version,
        )

    def select_projections(self, names: Sequence[str] = ()) -> list[Projection]:
        """The projections called `names`, in that order (all of them when `names` is empty).

        Args:
            names: Projection names.

        Returns:
            The selected projections.

        Raises:
            ConfigurationError: A name is not one of this app's projections.
        """
        if not names:
            return list(self.projections)
        by_name = {p.name: p for p in self.projections}
        unknown = [n for n in names if n not in by_name]
        if unknown:
            raise ConfigurationError(f"unknown projections {unknown}; this app has {sorted(by_name)}")
        return [by_name[n] for n in names]
