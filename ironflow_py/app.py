"""`App`: what a service declares once (workflows, converter) so the CLI and workers can build on it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
import cattrs

from ironflow_py.clock import Clock
from ironflow_py.effects import EffectRegistry
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

    def service(self, store: Store, *, clock: Clock | None = None, logger: Any = None) -> WorkflowService:
        return WorkflowService(store, workflows=self.workflows, clock=clock, converter=self.converter, logger=logger)
