"""Open event streams under the web server are written straight to their connections
(live.py, wire.py): a round is one ``transport.write`` per stream, no task woken per stream.
What must hold: the body is framed as HTTP says (chunked for HTTP/1.1, plain for HTTP/1.0),
each chunk whole events; every post reaches every stream once; keep-alives still come; a
reader too slow to take what it is sent is cut off instead of growing a buffer; the server
stopping ends the streams at once."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from floorstream.config import parse_mapping
from floorstream.daemon import Daemon
from floorstream.model import Event, utcnow
from floorstream.plugins import build_plugins
from floorstream.processing import Envelope
from floorstream.web.live import Hub, Subscriber
from floorstream.web.wire import BUFFER_LIMIT, Wire, frame
from support import DaemonRunner, wait_for

from .websupport import TOKEN, web_mapping


class RawStream:
    """An event-stream client on a bare socket, so the test sees the body's bytes as they
    are on the wire (chunk sizes and all)."""

    def __init__(self, port: int, version: str = "1.1") -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.sendall(f"GET /events?scope=team&team=maintenance HTTP/{version}\r\n"
                          f"Host: test\r\nAuthorization: Bearer {TOKEN}\r\n\r\n".encode())
        self.raw = b""
        while b"\r\n\r\n" not in self.raw:
            self._recv()
        head, _, self.raw = self.raw.partition(b"\r\n\r\n")
        self.head = head.decode().lower()
        self.eof = False

    def _recv(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            self.eof = True
        self.raw += chunk

    def read_until(self, done: Callable[[bytes], bool], timeout: float = 20) -> None:
        """Read the body until ``done(self.raw)`` (or the connection ends)."""
        self.sock.settimeout(0.2)
        deadline = time.monotonic() + timeout
        while not done(self.raw) and not self.eof:
            assert time.monotonic() < deadline, self.raw[-500:]
            with suppress(TimeoutError):
                self._recv()

    def chunks(self) -> list[bytes]:
        """The chunked body's chunks, checked strictly (size line, bytes, CRLF)."""
        found, rest = [], self.raw
        while rest:
            size_line, sep, rest = rest.partition(b"\r\n")
            assert sep, rest
            size = int(size_line, 16)
            if size == 0:
                break
            assert len(rest) >= size + 2, "a chunk cut short"
            found.append(rest[:size])
            assert rest[size:size + 2] == b"\r\n"
            rest = rest[size + 2:]
        return found

    def close(self) -> None:
        self.sock.close()


def direct(hub: Hub) -> int:
    """Open streams written to directly (their backlog out, no task waiting per round)."""
    with hub._lock:
        return sum(s.transport is not None for s in hub._subscribers)


def posts(body: bytes) -> list[str]:
    """The summaries of the post events in a body (its events whole)."""
    found = []
    for block in body.split(b"\n\n"):
        lines = dict(line.split(b": ", 1) for line in block.split(b"\n")
                     if b": " in line and not line.startswith(b":"))
        if lines.get(b"event") == b"post":
            found.append(json.loads(lines[b"data"])["activity"]["summary"])
    return found


@contextmanager
def daemon_with_web(tmp: Path) -> Iterator[Daemon]:
    config = parse_mapping(web_mapping(f"sqlite:///{tmp}/fs.db", port=0, poll_ms=50),
                           build_plugins())
    with DaemonRunner(config) as runner:
        runner.start()
        assert runner.daemon is not None and runner.daemon.web is not None
        yield runner.daemon


def publish(daemon: Daemon, *names: str) -> None:
    daemon.pipeline.run_now([Envelope("presses", event=Event.create(
        type="machine.state_changed", source="presses", subject=f"press-{name}",
        position=name, occurred_at=utcnow(), fields={"summary": name})) for name in names])


def test_streams_are_written_directly_framed_as_their_http_version_says(
        tmp_path: Path) -> None:
    with daemon_with_web(tmp_path) as daemon:
        web = daemon.web
        hub: Hub = web.app.state.web.hub
        new, old = RawStream(web.port), RawStream(web.port, "1.0")
        try:
            assert "transfer-encoding: chunked" in new.head
            assert "transfer-encoding" not in old.head
            wait_for(lambda: direct(hub) == 2, 5, "the two streams written directly")
            names = [f"p{n}" for n in range(12)]
            publish(daemon, *names[:5])
            publish(daemon, *names[5:])
            new.read_until(lambda raw: b'"p11"' in raw and raw.endswith(b"\n\n\r\n"))
            old.read_until(lambda raw: b'"p11"' in raw and raw.endswith(b"\n\n"))
            chunks = new.chunks()
            assert chunks[0] == b"retry: 1000\n\n"
            assert all(chunk.endswith(b"\n\n") for chunk in chunks)  # whole events a chunk
            body = b"".join(chunks)
            assert old.raw.startswith(b"retry: 1000\n\n")  # HTTP/1.0: the bytes alone
            assert posts(body) == posts(old.raw) == names  # each once, in order
        finally:
            new.close()
            old.close()
        wait_for(lambda: hub.subscribers == 0, 5, "both gone")


def test_direct_streams_get_keep_alives_and_end_when_the_hub_stops(tmp_path: Path) -> None:
    with daemon_with_web(tmp_path) as daemon:
        web = daemon.web
        hub: Hub = web.app.state.web.hub
        hub.keep_alive_s = 0.3
        stream = RawStream(web.port)
        try:
            wait_for(lambda: direct(hub) == 1, 5, "the stream written directly")
            stream.read_until(lambda raw: raw.count(b": keep-alive\n\n") >= 2, 10)
            stopped = time.monotonic()
            hub.stop()  # what WebServer.stop does first
            stream.read_until(lambda raw: False, 5)  # until the connection ends
            assert stream.eof
            assert time.monotonic() - stopped < 4  # at once, not at the graceful timeout
        finally:
            stream.close()


def test_a_reader_too_slow_is_cut_off_at_the_buffer_limit() -> None:
    """A peer that reads nothing: once its transport holds more than BUFFER_LIMIT unsent,
    the stream is cut off (its browser would resume from the store), not buffered on."""

    async def scenario() -> tuple[bool, int, bool]:
        loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair()
        theirs.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        transport, _ = await loop.connect_accepted_socket(asyncio.Protocol, ours)
        assert isinstance(transport, asyncio.Transport)
        subscriber = Subscriber(lambda _p: True, loop)
        subscriber.go_direct(Wire(transport, chunked=True), [])
        event = b"data: " + b"x" * 65_000 + b"\n\n"
        written = 0
        while not subscriber.cut_off and written < 4 * BUFFER_LIMIT:
            subscriber.take([], event)
            written += len(frame(event, True))
            await asyncio.sleep(0)
        await asyncio.sleep(0.05)
        closing = transport.is_closing()
        theirs.close()
        return subscriber.cut_off, written, closing

    cut_off, written, closing = asyncio.run(scenario())
    assert cut_off and closing
    assert BUFFER_LIMIT < written < 3 * BUFFER_LIMIT  # the limit, plus what the kernel took
