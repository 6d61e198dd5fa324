"""`HealthServer`: `/metrics`, `/healthz` and `/readyz` for a worker or projection daemon, on a port of its own.

A stdlib HTTP server on a daemon thread; each request is answered on its own thread, so a slow database
check never blocks a liveness probe. `/healthz` says whether the daemon's loop turned recently; `/readyz`
whether the database answers and is fully migrated; `/metrics` is the Prometheus text format of the
`Metrics` registry (404 without one).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ironflow_py._log import get_log
from ironflow_py.store.postgres_ops import Readiness
from ironflow_py.telemetry._observer import Observer

_log = get_log("telemetry")


class HealthServer:
    """Serves `/metrics`, `/healthz` and `/readyz` until `close()`.

    Args:
        observer: the observer the daemon reports to (its loop ticks and its metrics registry).
        loop: the loop whose liveness `/healthz` reports (`effects` or `projections`).
        ready: the readiness check, e.g. `StoreOps(store).readiness`.
        port: TCP port (0: any free port; read `port` after start).
        host: interface to bind (default loopback only).
        stale_after: seconds without a loop turn after which `/healthz` answers 503.
    """

    def __init__(
        self,
        observer: Observer,
        *,
        loop: str,
        ready: Callable[[], Readiness],
        port: int = 0,
        host: str = "127.0.0.1",
        stale_after: float = 30.0,
    ) -> None:
        self.observer = observer
        self.loop = loop
        self.ready = ready
        self.stale_after = stale_after
        self._server = ThreadingHTTPServer((host, port), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="ironflow-health", daemon=True)

    @property
    def port(self) -> int:
        """The TCP port the server listens on."""
        return int(self._server.server_address[1])

    def start(self) -> HealthServer:
        """Start answering on a daemon thread.

        Returns:
            This server.
        """
        self._thread.start()
        _log.info("health_server_started", port=self.port)
        return self

    def close(self) -> None:
        """Stop answering and free the port."""
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> HealthServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the answers --------------------------------------------------------------------------------------

    def healthz(self) -> tuple[int, dict[str, Any]]:
        """The `/healthz` answer.

        Returns:
            (200 when the loop turned within `stale_after` seconds, else 503; a JSON-ready body with the age).
        """
        age = self.observer.last_tick(self.loop)
        alive = age is not None and age <= self.stale_after
        body: dict[str, Any] = {"loop": self.loop, "alive": alive, "last_turn_seconds_ago": age}
        return (200 if alive else 503), body

    def readyz(self) -> tuple[int, dict[str, Any]]:
        """The `/readyz` answer.

        Returns:
            (200 when the database is reachable and migrated, else 503; a JSON-ready body with the reason).
        """
        readiness = self.ready()
        return (200 if readiness.ready else 503), {"ready": readiness.ready, "reason": readiness.reason}

    def metrics(self) -> tuple[int, bytes, str]:
        """The `/metrics` answer.

        Returns:
            (status, body, content type): the Prometheus text exposition of the observer's registry, or 404
            when the observer has no metrics.
        """
        metrics = self.observer.metrics
        if metrics is None:
            return 404, b"metrics are not enabled (install ironflow_py[metrics])\n", "text/plain; charset=utf-8"
        from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

        return 200, generate_latest(metrics.registry), CONTENT_TYPE_LATEST


def _handler(server: HealthServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            try:
                if path == "/metrics":
                    status, body, content_type = server.metrics()
                elif path in ("/healthz", "/readyz"):
                    code, data = server.healthz() if path == "/healthz" else server.readyz()
                    status, body, content_type = code, json.dumps(data).encode(), "application/json"
                else:
                    status, body, content_type = 404, b"not found\n", "text/plain; charset=utf-8"
            except Exception as exc:  # never let a probe hang on a bug: answer 500 and log it
                _log.error("health_request_failed", path=path, exc_info=exc)
                status, body, content_type = 500, b"internal error\n", "text/plain; charset=utf-8"
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            _log.debug("health_request", request=format % args)

    return Handler
