"""An open event stream is light for the cyclic collector: once its headers went out it is
streamed from ``StreamParking``, outside routing, FastAPI's dependencies and exception
wrappers, and without an anyio task group (docs/web.md, *Measured*: 200 streams' objects made
each of the daemon's full collections ~30 ms longer). A browser that leaves is let go at
once, not at the next keep-alive; the stream's headers still pass the app's middleware."""

from __future__ import annotations

import gc
import socket
import time
import types
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from floorstream.web.live import Hub
from floorstream.web.server import WebServer
from support import wait_for

from .websupport import TOKEN, web_config

STREAMS = 40


@contextmanager
def serving(tmp: Path) -> Iterator[WebServer]:
    web = WebServer(web_config(tmp, port=0), create=True)
    web.start()
    try:
        yield web
    finally:
        web.stop()


def open_stream(port: int) -> tuple[socket.socket, bytes]:
    """A raw event-stream client (no client objects in this process to speak of); returns
    once the stream's first bytes (headers and ``retry``) came."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(b"GET /events?scope=all HTTP/1.1\r\nHost: test\r\n"
                 b"Authorization: Bearer " + TOKEN.encode() + b"\r\n\r\n")
    got = b""
    while b"retry: 1000" not in got:
        chunk = sock.recv(65536)
        assert chunk, got
        got += chunk
    return sock, got


def tracked() -> int:
    gc.collect()
    return len(gc.get_objects())


def coroutines_of(qualname: str) -> int:
    return sum(1 for o in gc.get_objects()
               if isinstance(o, types.CoroutineType) and o.cr_code.co_qualname == qualname)


def test_open_streams_leave_the_app_stack_and_weigh_little(tmp_path: Path) -> None:
    with serving(tmp_path) as web, ExitStack() as closing:
        assert web.port is not None
        hub: Hub = web.app.state.web.hub
        first, head = open_stream(web.port)  # warms the app (validators, routes)
        closing.callback(first.close)
        assert b"200 OK" in head and b"text/event-stream" in head
        assert b"x-content-type-options: nosniff" in head.lower()  # through the middleware
        wait_for(lambda: hub.subscribers == 1, 5, "the first stream")
        before = tracked()
        for _ in range(STREAMS):
            sock, _ = open_stream(web.port)
            closing.callback(sock.close)
        wait_for(lambda: hub.subscribers == STREAMS + 1, 10, "the streams")
        per_stream = (tracked() - before) / STREAMS
        # no frame of routing, dependencies or exception handling stays with a stream
        assert coroutines_of("ExceptionMiddleware.__call__") <= 1  # (the lifespan's)
        assert coroutines_of("APIRoute.handle") == 0
        assert coroutines_of("SecurityHeaders.__call__") <= 1
        # measured: 93 (Starlette's StreamingResponse in FastAPI's stack: 222)
        assert per_stream < 160, per_stream


def test_a_browser_that_leaves_is_let_go_at_once(tmp_path: Path) -> None:
    with serving(tmp_path) as web:
        assert web.port is not None
        hub: Hub = web.app.state.web.hub
        kept, _ = open_stream(web.port)
        leaving = [open_stream(web.port)[0] for _ in range(3)]
        wait_for(lambda: hub.subscribers == 4, 5, "the streams")
        for sock in leaving:
            sock.close()
        gone_at = time.monotonic()
        # at once, not at the next keep-alive (15 s)
        wait_for(lambda: hub.subscribers == 1, 3, "the three gone")
        assert time.monotonic() - gone_at < 3
        kept.close()
        wait_for(lambda: hub.subscribers == 0, 3, "the last one gone")


def test_the_app_is_warmed_at_start(tmp_path: Path) -> None:
    """FastAPI builds its routing's lazy parts (~5,000 objects) at the first request: the
    server makes one at start, so a daemon's ``settle_process`` freezes them with the rest
    of its start instead of every full collection walking them."""
    with serving(tmp_path) as web:
        assert web.port is not None
        hub: Hub = web.app.state.web.hub
        before = tracked()
        sock, _ = open_stream(web.port)
        sock.close()
        wait_for(lambda: hub.subscribers == 0, 5, "the stream gone")
        # measured: ~370 (the stream's queries compiled); 5,500 without the warm-up
        assert tracked() - before < 1500
