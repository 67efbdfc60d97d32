"""The daemon's HTTP endpoint: ``/healthz``, ``/readyz`` and ``/metrics``.

Load balancers, systemd watchdogs, Kubernetes probes and Prometheus all speak HTTP; one stdlib
server thread is enough for them and costs nothing when nobody asks.

- ``GET /healthz`` (also ``/health``): liveness, the process and its pipeline thread. 200 while
  they run, 503 when the pipeline died; the JSON body is the whole report (sources, store,
  sinks, open alerts), so a person reading it sees what is wrong even when it is 200.
- ``GET /readyz``: readiness, every enabled source connected and the store reachable; 503
  otherwise, with ``reasons`` saying which.
- ``GET /metrics``: Prometheus text format.

Nothing here touches a database: the reports are built from what the pipeline, the adapters,
the delivery workers and the monitor thread already know, so a probe never hangs on an outage.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from http.server import ThreadingHTTPServer

__all__ = ["HealthServer", "iso"]


def iso(value: float | datetime | None) -> str | None:
    """ISO 8601 UTC with milliseconds and a ``Z`` (``2026-11-25T06:00:00.000Z``), from an
    aware datetime or epoch seconds; None stays None."""
    if value is None:
        return None
    when = value if isinstance(value, datetime) else datetime.fromtimestamp(value, UTC)
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class HealthServer:
    """Serves ``report()`` on ``/healthz`` (status other than "ok": 503), ``ready()`` on
    ``/readyz`` (status other than "ready": 503) and ``metrics()`` on ``/metrics``."""

    def __init__(self, host: str, port: int, report: Callable[[], dict[str, Any]], *,
                 ready: Callable[[], dict[str, Any]] | None = None,
                 metrics: Callable[[], tuple[bytes, str]] | None = None) -> None:
        self.host, self.port = host, port
        self._report = report
        self._ready = ready
        self._metrics = metrics
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        # imported here: http.server (and the email parser it loads) is ~0.9 MB of RSS that a
        # daemon without a health port never uses (issue 16)
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        report, ready, metrics = self._report, self._ready, self._metrics

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                if path in ("/healthz", "/health"):
                    body = report()
                    self._json(200 if body.get("status") == "ok" else 503, body)
                elif path == "/readyz" and ready is not None:
                    body = ready()
                    self._json(200 if body.get("status") == "ready" else 503, body)
                elif path == "/metrics" and metrics is not None:
                    data, content_type = metrics()
                    self._send(200, content_type, data)
                else:
                    self.send_error(404)

            def _json(self, code: int, body: dict[str, Any]) -> None:
                data = json.dumps(body, default=str, indent=1).encode()
                self._send(code, "application/json", data)

            def _send(self, code: int, content_type: str, data: bytes) -> None:
                # a prober that gave up (its timeout) left nobody to tell: no traceback
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.send_response(code)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(data)))
                    self.send_header("Cache-Control", "no-store")
                    self.end_headers()
                    self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # probes every few seconds would drown the daemon's own log

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="floorstream-health", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
