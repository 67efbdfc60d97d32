"""Real local servers and small builders for the delivery tests."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from floorstream.config import Config, parse_config
from floorstream.model import Post, Severity, event_id
from floorstream.plugins import Plugins, build_plugins
from floorstream.store.store import CommitBatch, Store


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Recorder:
    """What the HTTP server received, and what it answers next."""

    requests: list[Request] = field(default_factory=list)
    status: int = 200
    retry_after: str | None = None
    reply: Callable[[Request], tuple[int, dict[str, str], bytes]] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    refused: int = 0  # requests answered with an error

    def ok(self) -> list[Request]:
        return [r for r in self.requests if getattr(r, "accepted", False)]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms stalls
    recorder: Recorder

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        request = Request(self.path, {k.lower(): v for k, v in self.headers.items()}, body,
                          time.time())
        rec = self.recorder
        with rec.lock:
            if rec.reply is not None:
                status, headers, payload = rec.reply(request)
            else:
                status, headers, payload = rec.status, {}, b"{}"
                if rec.retry_after is not None:
                    headers["Retry-After"] = rec.retry_after
            request.accepted = 200 <= status < 300  # type: ignore[attr-defined]
            if not request.accepted:  # type: ignore[attr-defined]
                rec.refused += 1
            rec.requests.append(request)
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def http_server() -> Iterator[tuple[str, Recorder]]:
    """A real HTTP server on a free local port; yields (base URL, recorder)."""
    recorder = Recorder()
    handler = type("Handler", (_Handler,), {"recorder": recorder})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", recorder
    finally:
        server.shutdown()
        server.server_close()


def plugins() -> Plugins:
    return build_plugins(load_entry_points=False)


def config(text: str, environ: dict[str, str] | None = None) -> tuple[Config, Plugins]:
    found = plugins()
    return parse_config(text, found, environ=environ or {}), found


T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


def make_post(n: int, team: str, *, severity: Severity = Severity.WARNING,
              subject: str = "press-07", clears: str | None = None,
              created_at: datetime | None = None) -> Post:
    return Post(id=event_id("test", subject, str(n), f"t.{team}"), type="machine.state_changed",
                source="test", subject=subject, summary=f"{team} post {n}", severity=severity,
                teams=(team,), occurred_at=T0 + timedelta(seconds=n), clears=clears,
                created_at=created_at or datetime.now(UTC))


def commit(store: Store, posts: list[Post], sinks: dict[str, list[str]]) -> None:
    """Commit posts with one outbox row per (post, team sink), as the pipeline does."""
    batch = CommitBatch(posts=list(posts))
    for post in posts:
        for team in post.teams:
            for sink in sinks.get(team, []):
                batch.deliveries.append((post.id, team, sink))
    store.commit(batch)


def wait_for(condition: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what or condition}")
