"""A tiny HTTP health endpoint for the daemon: ``GET /healthz`` → JSON, 200 or 503.

Load balancers, systemd watchdogs and Kubernetes probes all speak HTTP; one stdlib server
thread is enough for them and costs nothing when nobody asks.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["HealthServer"]


class HealthServer:
    """Serves ``report()`` on ``/healthz``; ``status`` other than "ok" answers 503."""

    def __init__(self, host: str, port: int, report: Callable[[], dict[str, Any]]) -> None:
        self.host, self.port = host, port
        self._report = report
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        report = self._report

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?")[0] not in ("/healthz", "/health"):
                    self.send_error(404)
                    return
                body = report()
                data = json.dumps(body, default=str).encode()
                self.send_response(200 if body.get("status") == "ok" else 503)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # probes every few seconds would drown the daemon's own log

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="floorstream-health", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
