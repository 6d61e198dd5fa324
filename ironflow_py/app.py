"""`App`: what a service declares once (workflows, converter, projections) so the CLI and workers can
build on it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
import cattrs

from ironflow_py.clock import Clock
from ironflow_py.effects._registry import EffectRegistry
from ironflow_py.errors import ConfigurationError
from ironflow_py.projections._projection import Projection
from ironflow_py.service import WorkflowService
from ironflow_py.store.base import Store
from ironflow_py.workflow import AnyWorkflow


@attrs.frozen
class App:
    """A declaration, not a connection: `ironflow-py --app module:app` loads it and supplies the store."""

    workflows: Sequence[AnyWorkflow | type[AnyWorkflow]]
    converter: cattrs.Converter | None = None
    #: the effect handlers `ironflow-py worker` runs; None: the worker only fires timers
    effects: EffectRegistry | None = None
    #: the read models `ironflow-py projections run` keeps
    projections: Sequence[Projection] = ()

    def service(self, store: Store, *, clock: Clock | None = None, logger: Any = None) -> WorkflowService:
        return WorkflowService(store, workflows=self.workflows, clock=clock, converter=self.converter, logger=logger)

    def select_projections(self, names: Sequence[str] = ()) -> list[Projection]:
        """The projections called `names` (all of them when empty); an unknown name is an error."""
        if not names:
            return list(self.projections)
        by_name = {p.name: p for p in self.projections}
        unknown = [n for n in names if n not in by_name]
        if unknown:
            raise ConfigurationError(f"unknown projections {unknown}; this app has {sorted(by_name)}")
        return [by_name[n] for n in names]
