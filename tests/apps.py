"""Apps the CLI tests load with --app."""

from ironflow_py import App
from ironflow_py.examples.orders import OrderWorkflow

orders = App(workflows=[OrderWorkflow])
nothing = object()
