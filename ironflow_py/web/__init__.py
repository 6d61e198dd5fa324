"""The web admin view (extra `ironflow_py[web]`): overview, instances and their stuck ones, one instance's
diagnosis, timeline, state, effects, timers and path, dead letters and projections.

Start it with `ironflow-py --app module:app web` (127.0.0.1 by default), or build the ASGI app with
`create_app(service)` and serve or mount it yourself. Read-only unless actions are allowed and authorized.
"""

from ironflow_py.web._app import AdminView, Authorize, create_app, serve

__all__ = ["AdminView", "Authorize", "create_app", "serve"]
