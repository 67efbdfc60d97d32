"""One real HTTP server for the tests: it records every request and answers as told.

:func:`http_receiver` starts a threaded server on a free local port and yields the
:class:`HttpReceiver`. By default every request is answered ``200`` with ``{}``; a test changes
:attr:`~HttpReceiver.status`, :attr:`~HttpReceiver.body`, :attr:`~HttpReceiver.headers` or
:attr:`~HttpReceiver.retry_after` at any time (a sink going down and coming back), or sets
:attr:`~HttpReceiver.reply` to a function of the request for anything richer (a carrier API
paging by cursor, per-team answers). A webhook target, a forward proxy, a paging carrier API:
all the same server.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["HttpReceiver", "Reply", "Request", "http_receiver"]


@dataclass
class Request:
    """One request as the server received it (header names lower-cased)."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    #: answered with a 2xx status
    accepted: bool = False

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def query(self) -> dict[str, str]:
        """The query string's parameters (the last value of a repeated one)."""
        return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query))


#: (status, headers, body) for a request
Reply = tuple[int, dict[str, str], bytes]


@dataclass
class HttpReceiver:
    """What the server received, and what it answers next."""

    url: str = ""
    requests: list[Request] = field(default_factory=list)
    status: int = 200
    body: bytes = b"{}"
    headers: dict[str, str] = field(default_factory=dict)
    #: sent as ``Retry-After`` with the status when set
    retry_after: str | None = None
    #: decides the answer itself when set (status/body/headers/retry_after are then unused)
    reply: Callable[[Request], Reply] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: requests answered with something else than 2xx
    refused: int = 0

    def ok(self) -> list[Request]:
        """The requests answered with a 2xx status."""
        with self.lock:
            return [r for r in self.requests if r.accepted]

    def answer(self, request: Request) -> Reply:
        with self.lock:
            if self.reply is not None:
                status, headers, payload = self.reply(request)
            else:
                status, headers, payload = self.status, dict(self.headers), self.body
                if self.retry_after is not None:
                    headers["Retry-After"] = self.retry_after
            request.accepted = 200 <= status < 300
            if not request.accepted:
                self.refused += 1
            self.requests.append(request)
        return status, headers, payload


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms stalls
    receiver: HttpReceiver

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length) if length else b""
        request = Request(self.command, self.path,
                          {k.lower(): v for k, v in self.headers.items()}, body, time.time())
        status, headers, payload = self.receiver.answer(request)
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        if not any(k.lower() == "content-type" for k in headers):
            self.send_header("Content-Type", "application/json")
        bodyless = status == 304 or status < 200 or self.command == "HEAD"
        self.send_header("Content-Length", "0" if bodyless else str(len(payload)))
        self.end_headers()
        if not bodyless:
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _handle

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def http_receiver() -> Iterator[HttpReceiver]:
    """A real HTTP server on a free local port, stopped on exit; its URL is ``receiver.url``."""
    receiver = HttpReceiver()
    handler = type("Handler", (_Handler,), {"receiver": receiver})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
