"""Event-stream clients for ``bench/web.py``: many cheap ones in one process.

The bench's clients run on the same cores as the server, so they must cost as little as the
measurement allows, or the bench measures them: 500 clients at 100 posts/s read 50,000 events
(some 100 MB) a second. So there is no HTTP library and no event parser here: each client is
an asyncio ``Protocol`` on a raw socket, and the whole events of each batch of bytes it
receives are searched — one compiled regular expression for the publish stamp of each post
(``bench <monotonic> <n>`` in its summary, as ``bench/web.py``'s publisher writes it), plain
searches for the newest event id and the ``event: more`` count. (A multi-line regular
expression for every event id cost 6 us an event, and made the clients the bottleneck.)
Run several processes of them for more cores.

    python bench/web_clients.py PORT CLIENTS TOKEN [PATH]

prints ``ready`` once every stream has answered 200, and on SIGTERM one JSON line: the
publish → seen latencies as a histogram (ms → count), per-client counts (every client should
see every post exactly once), the lowest last event id and this process's CPU seconds.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import sys
import time
from collections import Counter

#: a post's stamp, once per event: in its activity's ``floorstream:fields``
STAMP = re.compile(rb'"floorstream:fields": ?\{"summary": ?"bench ([0-9.]+) ([0-9]+)"')


class Totals:
    """What all clients of this process saw."""

    def __init__(self) -> None:
        self.latency_ms: Counter[int] = Counter()
        self.opened = 0
        self.failed: list[str] = []
        self.clients: list[Client] = []


class Client(asyncio.Protocol):
    """One event stream: the request on connect, then bytes searched as they come."""

    def __init__(self, request: bytes, totals: Totals, ready: asyncio.Event,
                 expected: int) -> None:
        self.request, self.totals, self.ready, self.expected = request, totals, ready, expected
        self.buffer = b""
        self.started = False
        #: the publisher's post numbers seen (a post seen twice counts in ``repeats``)
        self.numbers: set[int] = set()
        self.repeats = 0
        self.more = 0
        self.posts = 0
        self.last_id = 0
        self.bytes = 0
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        self.bytes += len(data)
        buffer = self.buffer + data if self.buffer else data
        if not self.started:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                self.buffer = buffer
                return
            status = buffer.split(b" ", 2)[1]
            if status != b"200":
                self.totals.failed.append(status.decode())
            self.started = True
            self.totals.opened += 1
            if self.totals.opened + len(self.totals.failed) >= self.expected:
                self.ready.set()
            buffer = buffer[end + 4:]
        # only whole events (a round's events arrive as one chunk, but a read may split it)
        cut = buffer.rfind(b"\n\n")
        if cut < 0:
            self.buffer = buffer
            return
        block, self.buffer = buffer[:cut], buffer[cut + 2:]
        for stamp, number in STAMP.findall(block):
            self.totals.latency_ms[int((now - float(stamp)) * 1000)] += 1
            n = int(number)
            if n in self.numbers:
                self.repeats += 1
            else:
                self.numbers.add(n)
        self.more += block.count(b"event: more")
        self.posts += block.count(b"event: post")
        # the newest id only (a multi-line regex over every event cost 6 us an event)
        at = block.rfind(b"id: ")
        if at >= 0 and (at == 0 or block[at - 1] == 10):
            end = block.find(b"\n", at)
            self.last_id = max(self.last_id, int(block[at + 4:end if end >= 0 else None]))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True


async def run(port: int, count: int, token: str, path: str) -> None:
    loop = asyncio.get_running_loop()
    totals = Totals()
    ready = asyncio.Event()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    request = (f"GET {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}\r\n"
               f"Accept: text/event-stream\r\n\r\n").encode()
    for _ in range(count):
        _, client = await loop.create_connection(
            lambda: Client(request, totals, ready, count), "127.0.0.1", port)
        totals.clients.append(client)
    await asyncio.wait_for(ready.wait(), 120)
    print("ready" if not totals.failed else f"failed {totals.failed[:5]}", flush=True)
    await stop.wait()
    clients = totals.clients
    print(json.dumps({
        "clients": count, "opened": totals.opened, "failed": len(totals.failed),
        "latency_ms": {str(k): v for k, v in sorted(totals.latency_ms.items())},
        "posts_seen": sum(len(c.numbers) for c in clients),
        "distinct_per_client_min": min(len(c.numbers) for c in clients),
        "distinct_per_client_max": max(len(c.numbers) for c in clients),
        "repeats": sum(c.repeats for c in clients),
        "more": sum(c.more for c in clients),
        "post_events": sum(c.posts for c in clients),
        "lowest_last_id": min(c.last_id for c in clients),
        "closed_early": sum(c.closed for c in clients),
        "bytes": sum(c.bytes for c in clients),
        "cpu_s": round(time.process_time(), 3)}), flush=True)


def main() -> None:
    port, count, token = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    path = sys.argv[4] if len(sys.argv) > 4 else "/events?scope=team&team=team-0"
    asyncio.run(run(port, count, token, path))


if __name__ == "__main__":
    main()
