"""Live: one watcher per web process finds new posts and acks, every browser gets them by SSE.

The watcher is a thread of its own. On PostgreSQL it LISTENs on ``floorstream_web`` (a
statement trigger on ``fs_posts`` and ``fs_web_acks`` NOTIFYs at commit, from any daemon or
web process on the store) and wakes at once; elsewhere it polls the newest seq, an index's
last entry, every ``web.poll_ms``. Either way it reads the new rows once, encodes each post's
event (HTML and activity) once, and hands them to every subscriber whose page they belong on
(its team, its filters, what its reader may read).

What a round renders is bounded, whatever the post rate: at most ``LIVE_RATE`` posts a second
(a bucket of ``BUCKET``) — fewer where the feed shares its process with a pipeline (the
daemon, an embedding app): there the posts sent one by one times the open streams stay under
``EMBEDDED_DELIVERIES_PER_S``, so many streams cannot slow the pipeline down. When more
arrived than that (a storm), the round reads no post at all:
it reads the new seqs (the primary key's entries, no rows) and sends every stream one ``more``
event — "up to N new posts" with the range they are in, its id the newest seq — at most one
every ``MORE_EVERY_S``; the page loads them on demand (a reload: the feed's first page, then
"older posts"). So a storm costs the process (and, in the daemon, the pipeline that shares its
GIL) a small query per round instead of a template render per post.

A subscriber is an inbox drained by one server-sent-events response; a reader too
slow to keep up is cut off and its browser reconnects with ``Last-Event-ID``, so it resumes
from the store instead of growing a queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable

from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from floorstream.logs import get_logger
from floorstream.model import Post
from floorstream.web.queries import Ack, FeedQueries
from floorstream.web.wire import BUFFER_LIMIT, Wire, frame, open_wire

__all__ = ["BUCKET", "BURST", "EMBEDDED_DELIVERIES_PER_S", "LIVE_RATE", "MORE_EVERY_S",
           "PARK", "EventStreamResponse", "Hub", "Item", "StreamParking", "Subscriber",
           "event_stream", "more_item"]

log = get_logger("floorstream.web")

CHANNEL = "floorstream_web"
#: items a subscriber may have waiting before it is cut off (its browser then resumes)
QUEUE_LIMIT = 2000
#: how long a seq skipped over is looked for again: a transaction that drew its seq before
#: another one's may commit after it (PostgreSQL sequences; several writers), so the newer post
#: is seen first and the older one must not be missed
GAP_WAIT_S = 30.0
#: the shortest time between two rounds of the watcher (what LISTEN/NOTIFY adds to a post's
#: way at most, in exchange for one write per stream per round instead of per post)
MIN_ROUND_S = 0.05
#: ... and per open stream: a round costs every stream a write (~35 us of the server's CPU
#: with its wake-up, on the development machine), so many streams space the rounds out —
#: 500 streams: 0.2 s — and the writes stay a small share of a core, at the price of that
#: much latency (the target is 1 s), up to MAX_ROUND_S (SQLite's default poll)
ROUND_S_PER_STREAM = 0.0004
MAX_ROUND_S = 0.25
GAP_MAX = 10_000
#: posts rendered and sent one by one per second at most (a plant's pace is ~100/s; each
#: costs ~0.2 ms of CPU, under the daemon's GIL when the web runs in it: ≤ 4 % of a core)
LIVE_RATE = 200.0
#: the bucket: posts one round may render after a quiet while (a second's worth at
#: LIVE_RATE, so a round delayed on a busy machine at a plant's pace still sends posts); more
#: than the bucket holds and the round sends a ``more`` event instead
BUCKET = 200
#: where the feed shares its process (and GIL) with a pipeline: posts sent one by one a second
#: times the streams open, at most (each such delivery costs the process ~2 us of CPU: 5,000 a
#: second are ~1 % of a core; 200 streams then get up to 25 posts a second one by one, and a
#: ``more`` a second beyond that). A ``floorstream web`` process of its own has no such limit
EMBEDDED_DELIVERIES_PER_S = 5000.0
#: ... and writes to streams a second, at most: each write costs ~40 us whatever it carries
#: (a task's wake-up, the ASGI layers, a send), so there 200 streams get a round every
#: 0.5 s (up to 1 s), not every 0.13-0.25 s
EMBEDDED_WRITES_PER_S = 400.0
#: what a reconnect's backlog renders at most (more: one ``more`` event; see api._backlog)
BURST = 50
#: in a storm, the shortest time between two ``more`` events (what a stream gets per second)
MORE_EVERY_S = 1.0
#: a comment line every KEEP_ALIVE_S to every stream, so that proxies keep it open
KEEP_ALIVE = b": keep-alive\n\n"
KEEP_ALIVE_S = 15.0
#: a stream's first bytes: the browser reconnects after a second when the stream ends
RETRY = b"retry: 1000\n\n"


class Item:
    """What a subscriber is sent: a post (``seq`` > 0), an acknowledgement, or ``more`` (no
    post: posts up to ``seq`` that the page loads on demand; every stream gets it). Its event
    text is encoded on first use, once for every subscriber, and never for a post nobody
    watches."""

    __slots__ = ("_data", "_encode", "_text", "ack", "kind", "post", "seq")

    def __init__(self, kind: str, seq: int, post: Post | None, text: str = "",
                 ack: Ack | None = None, encode: Callable[[], str] | None = None) -> None:
        self.kind, self.seq, self.post, self.ack = kind, seq, post, ack
        self._text, self._encode = text, encode
        self._data: bytes | None = None

    @property
    def text(self) -> str:
        """The event as sent (``sse``)."""
        if not self._text and self._encode is not None:
            self._text = self._encode()
        return self._text

    @property
    def data(self) -> bytes:
        """The event's bytes, encoded once for every stream (500 streams each encoding a
        2 KB event was 1 MB of encoding per post)."""
        if self._data is None:
            self._data = self.text.encode()
        return self._data


def more_item(after: int, upto: int, posts: int) -> Item:
    """The ``more`` event: ``posts`` (at most; the store's, not only this page's) committed in
    seqs (``after``, ``upto``] and not sent one by one. Its id is ``upto``: a reconnect resumes
    after them, and the page reaches them by loading the feed."""
    return Item("more", upto, None, text=sse(upto, "more", json.dumps(
        {"after": after, "upto": upto, "posts": posts}, separators=(",", ":"))))


class Subscriber:
    """One open stream's inbox, on its server loop. Slotted, with a list and a future only
    while it waits (not an ``asyncio.Queue``: a queue, its three deques and its event are
    eight more objects per open stream for the collector to walk; see
    :class:`EventStreamResponse`). Once its stream went *direct* (``go_direct``: uvicorn's
    h11 server, see ``wire.py``) a round is written to the connection's transport as it is
    handed over, and nothing waits."""

    __slots__ = ("_inbox", "_waiter", "chunked", "covered", "cut_off", "key", "loop",
                 "pending", "sent", "transport", "wants")

    def __init__(self, wants: Callable[[Post], bool], loop: asyncio.AbstractEventLoop,
                 key: Hashable | None = None) -> None:
        self.wants = wants
        self.loop = loop
        #: subscribers with the same key want the same posts (same scope, filters, readable
        #: teams): the watcher asks ``wants`` once per key and round (None: ask this one)
        self.key = key
        #: items queued and not yet taken by the stream
        self.pending = 0
        self.cut_off = False
        #: rounds not yet taken: their items and bytes joined (one write; the same bytes
        #: object for every stream of the same key); None: the stream ends
        self._inbox: list[tuple[list[Item], bytes] | None] = []
        self._waiter: asyncio.Future[None] | None = None
        #: direct: the connection's transport, the body's framing, and what the backlog sent
        #: (seqs; the newest seq a ``more`` in it covered), not to be sent again
        self.transport: asyncio.Transport | None = None
        self.chunked = True
        self.sent: frozenset[int] = frozenset()
        self.covered = 0

    def _put(self, found: tuple[list[Item], bytes] | None) -> None:
        self._inbox.append(found)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def end(self) -> None:
        """On the subscriber's loop: end the stream (its browser left, or the server stops).
        A direct stream's connection is closed: its task, waiting for the browser to leave,
        then ends (the browser reconnects)."""
        self.cut_off = True  # nothing more is queued for it
        if self.transport is not None:
            self.transport.close()
            return
        self._put(None)

    def take(self, items: list[Item], data: bytes = b"",
             framed: dict[int, bytes] | None = None) -> None:
        """On the subscriber's loop: queue what the watcher found for it (``data``: the
        items' bytes joined; b"": joined when sent), or the end of the stream when it fell
        too far behind (its browser resumes from the store). Direct: write it now
        (``framed``: the round's framed bytes by ``id(data)``, framed once for all)."""
        if self.cut_off:
            return
        if self.transport is not None:
            if self.sent or self.covered:
                items, data = self.unsent(items, data)
            if data:  # the round's own bytes, shared: framed once for all
                self.write(data, framed)
            else:  # joined here, for this stream only (not to be cached by its id)
                self.write(b"".join(item.data for item in items))
            return
        if self.pending + len(items) > QUEUE_LIMIT:
            self.end()
            return
        self.pending += len(items)
        self._put((items, data))

    def unsent(self, items: list[Item], data: bytes) -> tuple[list[Item], bytes]:
        """``items`` but those the backlog sent already (``data``: b"" when some were left
        out). A post that committed late (its seq below one already sent: see GAP_WAIT_S)
        is sent too; the page ignores one it has."""
        kept = [item for item in items if item.kind == "ack"
                or (item.seq not in self.sent and item.seq > self.covered)]
        return (items, data) if len(kept) == len(items) else (kept, b"")

    def write(self, data: bytes, framed: dict[int, bytes] | None = None) -> None:
        """Direct: ``data`` (whole events) to the transport, framed (``framed``: chunks by id
        of their bytes, shared by the streams of one hand-over); a transport that holds more
        than ``BUFFER_LIMIT`` unsent (a reader too slow) is cut off."""
        transport = self.transport
        if not data or transport is None or self.cut_off:
            return
        if transport.is_closing():
            self.cut_off = True
            return
        if transport.get_write_buffer_size() > BUFFER_LIMIT:
            self.cut_off = True
            transport.abort()  # now: what it holds would only delay the reconnect
            return
        if not self.chunked:  # HTTP/1.0: the bytes alone
            transport.write(data)
            return
        out = framed.get(id(data)) if framed is not None else None
        if out is None:
            out = frame(data, True)
            if framed is not None:
                framed[id(data)] = out
        transport.write(out)

    def go_direct(self, wire: Wire, backlog: list[Item]) -> None:
        """On the subscriber's loop, in one go (no round comes in between): write the
        backlog, then the rounds queued meanwhile (without what the backlog sent), and from
        now each round as it is handed over."""
        self.chunked, self.transport = wire.chunked, wire.transport
        for item in backlog:
            self.write(item.data)
        self.sent = frozenset(item.seq for item in backlog)
        # a ``more`` in the backlog covers the posts up to its seq: the live ones too
        self.covered = max((item.seq for item in backlog if item.kind == "more"), default=0)
        inbox, self._inbox = self._inbox, []
        for found in inbox:
            if found is None:  # ended meanwhile (server stopping)
                self.end()
                return
            items, data = found
            self.pending -= len(items)
            items, data = self.unsent(items, data)
            self.write(data or b"".join(item.data for item in items))

    async def next_round(self) -> tuple[list[Item], bytes] | None:
        """The next round: its items and their joined bytes (None: the end)."""
        while not self._inbox:
            waiter = self.loop.create_future()
            self._waiter = waiter
            try:
                await waiter
            finally:
                self._waiter = None
        found = self._inbox.pop(0)
        if found is not None:
            self.pending -= len(found[0])
        return found

    async def next(self) -> list[Item] | None:
        """The next round's items (None: the end)."""
        found = await self.next_round()
        return None if found is None else found[0]


class Hub:
    """The watcher thread and the subscribers of one web process."""

    def __init__(self, queries: FeedQueries, encode: Callable[[str, int, Post, Ack | None], str],
                 *, poll_s: float = 0.25, deliveries_per_s: float | None = None,
                 writes_per_s: float | None = None) -> None:
        self.queries = queries
        self.encode = encode
        self.poll_s = poll_s
        #: posts sent one by one times open streams, a second, at most (None: LIVE_RATE only)
        self.deliveries_per_s = deliveries_per_s
        #: writes to streams a second, at most (None: rounds spaced by round_s alone)
        self.writes_per_s = writes_per_s
        self.listening = False  # LISTEN/NOTIFY is in use (PostgreSQL)
        self._subscribers: set[Subscriber] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.head = 0
        self.ack_head = 0
        #: the watcher found nobody watching and stopped reading: ``head`` is stale
        self._idle = False
        #: how often direct streams get a keep-alive (``_keep_alive``)
        self.keep_alive_s = KEEP_ALIVE_S
        #: seqs skipped over → when to stop looking for them (see GAP_WAIT_S)
        self._gaps: dict[int, float] = {}
        #: posts the next rounds may still render (refilled at LIVE_RATE, up to BUCKET)
        self._tokens = float(BUCKET)
        self._refilled = time.monotonic()
        #: when the last ``more`` went out; when a round is due whatever wakes us (a storm's
        #: next ``more``)
        self._more_at = -MORE_EVERY_S
        self._due: float | None = None
        #: rounds that sent ``more`` instead of posts (for the bench and the tests)
        self.storm_rounds = 0

    # -- subscribers ---------------------------------------------------------------------------

    def subscribe(self, wants: Callable[[Post], bool], key: Hashable | None = None
                  ) -> Subscriber:
        self._ensure_started()
        subscriber = Subscriber(wants, asyncio.get_running_loop(), key)
        with self._lock:
            if self._idle:  # the watcher read nothing while nobody watched: start from now
                self.head, self.ack_head = self.queries.head(), self.queries.ack_head()
                self._idle = False
            self._subscribers.add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        with self._lock:
            self._subscribers.discard(subscriber)

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    # -- the watcher ---------------------------------------------------------------------------

    def live_rate(self) -> tuple[float, float]:
        """Posts a second sent one by one, and the bucket (a second's worth), for the streams
        open now."""
        rate = LIVE_RATE
        if self.deliveries_per_s is not None:
            rate = min(rate, self.deliveries_per_s / max(1, len(self._subscribers)))
        return rate, min(float(BUCKET), max(1.0, rate))

    def round_s(self) -> float:
        """The shortest time between two rounds, for the streams open now."""
        streams = len(self._subscribers)
        found = min(MAX_ROUND_S, max(MIN_ROUND_S, streams * ROUND_S_PER_STREAM))
        if self.writes_per_s is not None:
            found = max(found, min(1.0, streams / self.writes_per_s))
        return found

    def _ensure_started(self) -> None:
        with self._lock:
            if self._thread is not None or self._stop.is_set():
                return
            self.head, self.ack_head = self.queries.head(), self.queries.ack_head()
            self._thread = threading.Thread(target=self._run, name="floorstream-web-live",
                                            daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(5)
        with self._lock:
            for subscriber in self._subscribers:
                with contextlib.suppress(RuntimeError):
                    subscriber.loop.call_soon_threadsafe(subscriber.end)

    def _run(self) -> None:
        listener = threading.Thread(target=self._listen, name="floorstream-web-listen",
                                    daemon=True)
        if self.queries.engine.dialect.name == "postgresql":
            listener.start()
        last = 0.0
        kept_alive = time.monotonic()
        while not self._stop.is_set():
            # with LISTEN working a notification wakes us; the slow poll is a safety net
            timeout = 5.0 if self.listening else self.poll_s
            if self._due is not None:  # a storm's next ``more`` must go out even if all is quiet
                timeout = min(timeout, max(0.0, self._due - time.monotonic()))
            if time.monotonic() >= kept_alive + self.keep_alive_s:
                kept_alive = time.monotonic()
                self._keep_alive()
            self._wake.wait(timeout)
            # rounds at least round_s() apart: a NOTIFY per commit (every few ms under
            # load) would make a round, and a write to every stream, per post
            self._stop.wait(max(0.0, last + self.round_s() - time.monotonic()))
            self._wake.clear()
            last = time.monotonic()
            if self._stop.is_set():
                break
            try:
                self._deliver()
            except Exception as exc:  # a store outage: keep watching, say so once a round
                log.warning("web_live_read_failed", error=str(exc)[:300])
                self._stop.wait(1.0)

    def _deliver(self) -> None:
        found: list[Item] = []
        try:
            self._collect(found)
        finally:
            if found:
                self._fan_out(found)

    def _item(self, kind: str, seq: int, post: Post, ack: Ack | None) -> Item:
        return Item(kind, seq, post, ack=ack,
                    encode=lambda: self.encode(kind, seq, post, ack))

    def _collect(self, out: list[Item]) -> None:
        """The new posts (and the late ones, and new acks) of this round, in order."""
        with self._lock:  # against a subscribe in between: it reads hub.head after this
            if not self._subscribers:
                # nobody watches (the last page closed): read nothing (not even the head, a
                # query a poll for as long as the process runs); whoever comes next starts
                # from the head then (``subscribe``), a reconnect reads its gap from the store
                self._idle = True
                self._gaps.clear()
                self._tokens, self._due = float(BUCKET), None
                return
        now = time.monotonic()
        rate, bucket = self.live_rate()
        self._tokens = min(bucket, self._tokens + (now - self._refilled) * rate)
        self._refilled = now
        if self._gaps:
            for seq in [s for s, until in self._gaps.items() if until < now]:
                del self._gaps[seq]  # rolled back, or pruned: not coming
            for seq, post in self.queries.by_seq(sorted(self._gaps)):
                self._gaps.pop(seq, None)
                out.append(self._item("post", seq, post, None))
                self._tokens -= 1
        newest = self.queries.head()
        pending = newest - self.head  # at most that many (seqs rolled back leave holes)
        if 0 < pending <= self._tokens:
            rows = self.queries.after(self.head, limit=BUCKET)
            for seq, post in rows:
                self._skipped(self.head, seq, now)
                out.append(self._item("post", seq, post, None))
                self.head = seq
            self._tokens -= len(rows)
        elif pending > 0:
            self._storm(newest, now, out)
        acks = self.queries.acks_after(self.ack_head)
        if acks:
            posts: dict[str, Post] = {}
            for wanted in {a.post_id for a in acks}:
                one = self.queries.post(wanted)
                if one is not None:
                    posts[wanted] = one[1]
            for ack in acks:
                acked = posts.get(ack.post_id)
                if acked is not None:
                    out.append(self._item("ack", 0, acked, ack))
                self.ack_head = ack.id

    def _skipped(self, after: int, seq: int, now: float) -> None:
        """Remember the seqs between ``after`` and ``seq`` as maybe still to commit."""
        for missing in range(after + 1, min(seq, after + 1 + GAP_MAX)):
            if len(self._gaps) < GAP_MAX:
                self._gaps[missing] = now + GAP_WAIT_S

    def _storm(self, newest: int, now: float, out: list[Item]) -> None:
        """More posts than the bucket holds: no post is read or rendered; once every
        MORE_EVERY_S, one ``more`` event covers everything up to ``newest``."""
        if now < self._more_at + MORE_EVERY_S:
            self._due = self._more_at + MORE_EVERY_S  # the rest goes out with the next one
            return
        committed = self.queries.seqs_between(self.head, newest)
        previous = self.head
        for seq in committed:  # seqs not committed yet (PostgreSQL) are looked for later
            self._skipped(previous, seq, now)
            previous = seq
        out.append(more_item(self.head, newest, len(committed)))
        self.head = newest
        self._more_at, self._due = now, None
        self.storm_rounds += 1

    def _fan_out(self, items: list[Item]) -> None:
        """Hand each subscriber what it wants of ``items``: asked once per key (same page,
        same rights), encoded and joined into one bytes object once per key, and handed over
        with ONE wake-up of each server loop per round, not one per stream (each
        ``call_soon_threadsafe`` writes to the loop's self-pipe: 500 streams were 500
        syscalls and wake-ups a round)."""
        with self._lock:
            subscribers = list(self._subscribers)
        same: dict[Hashable, tuple[list[Item], bytes]] = {}  # what one key wants, asked once
        rounds: dict[asyncio.AbstractEventLoop, list[tuple[Subscriber, list[Item], bytes]]] = {}
        for subscriber in subscribers:
            if subscriber.cut_off:
                continue
            key = subscriber.key
            found = same.get(key) if key is not None else None
            if found is None:
                try:
                    wanted = [item for item in items
                              if item.post is None or subscriber.wants(item.post)]
                    # encoded here, on this thread, once for all
                    found = (wanted, b"".join(item.data for item in wanted))
                except Exception as exc:  # one bad filter must not starve the others
                    log.warning("web_subscriber_failed", error=repr(exc))
                    continue
                if key is not None:
                    same[key] = found
            if found[0]:
                rounds.setdefault(subscriber.loop, []).append((subscriber, *found))
        for loop, handed in rounds.items():
            with contextlib.suppress(RuntimeError):  # its loop closed: server stopped
                loop.call_soon_threadsafe(_hand_over, handed)

    def _keep_alive(self) -> None:
        """Every ``keep_alive_s``: a keep-alive to every direct stream, one wake-up a loop."""
        with self._lock:
            subscribers = list(self._subscribers)
        loops: dict[asyncio.AbstractEventLoop, list[Subscriber]] = {}
        for subscriber in subscribers:
            if subscriber.transport is not None:
                loops.setdefault(subscriber.loop, []).append(subscriber)
        for loop, some in loops.items():
            with contextlib.suppress(RuntimeError):  # its loop closed: server stopped
                loop.call_soon_threadsafe(_keep_alive, some)

    def _listen(self) -> None:
        """LISTEN on PostgreSQL; reconnects with backoff; polling covers the gaps."""
        import psycopg

        url = self.queries.engine.url.set(drivername="postgresql")
        conninfo = url.render_as_string(hide_password=False)
        delay = 1.0
        while not self._stop.is_set():
            try:
                with psycopg.connect(conninfo, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.listening, delay = True, 1.0
                    self._wake.set()  # whatever came while not listening
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=1.0, stop_after=1):
                            self._wake.set()
            except Exception as exc:
                log.warning("web_listen_failed", error=str(exc)[:300])
            self.listening = False
            self._stop.wait(delay)
            delay = min(delay * 2, 30.0)


def _hand_over(handed: list[tuple[Subscriber, list[Item], bytes]]) -> None:
    """On a server loop: one watcher round for each of its subscribers (the direct ones
    written to now, the round's bytes framed once per page)."""
    framed: dict[int, bytes] = {}  # by id of the round's bytes, all alive in ``handed``
    for subscriber, items, data in handed:
        subscriber.take(items, data, framed)


def _keep_alive(subscribers: list[Subscriber]) -> None:
    """On a server loop: a comment line to each direct stream (the others send their own),
    so that proxies keep a quiet stream's connection open."""
    for subscriber in subscribers:
        subscriber.write(KEEP_ALIVE)


async def event_stream(hub: Hub, subscriber: Subscriber, backlog: list[Item],
                       disconnected: Callable[[], Awaitable[bool]]) -> AsyncIterator[bytes]:
    """A stream's bytes: the backlog, then each round the hub hands over as one chunk — the
    bytes the watcher joined, the same object for every stream of the same key, unless the
    backlog already sent some of its posts. A post that committed late (its seq below one
    already sent: see GAP_WAIT_S) is sent too, the page ignores one it has. Unsubscribes at
    the end (the caller subscribed before reading the backlog: nothing falls between)."""
    sent = {item.seq for item in backlog}  # queued live too, while the backlog was read
    # a ``more`` in the backlog covers the posts up to its seq: the live ones too
    covered = max((item.seq for item in backlog if item.kind == "more"), default=0)
    try:
        yield RETRY
        for item in backlog:
            yield item.data
        while True:
            try:
                async with asyncio.timeout(KEEP_ALIVE_S):  # no task per wait, unlike wait_for
                    found = await subscriber.next_round()
            except TimeoutError:
                if await disconnected():
                    return
                yield KEEP_ALIVE
                continue
            if found is None:
                return  # cut off (too slow) or the server stops: the browser reconnects
            items, data = found
            if sent or covered:
                kept = [item for item in items if item.kind == "ack"
                        or (item.seq not in sent and item.seq > covered)]
                if len(kept) != len(items):
                    items, data = kept, b""
            if not data:
                data = b"".join(item.data for item in items)
            if data:
                yield data  # a round in one write (one chunk, one send)
    finally:
        hub.unsubscribe(subscriber)


#: the scope key under which :class:`StreamParking` takes open streams off the app's stack
PARK = "floorstream.park"


class EventStreamResponse(Response):
    """An open event stream as few objects as it can be: its bytes (``event_stream``) and ONE
    task that waits for the browser to leave and then ends the stream, run by
    :class:`StreamParking` outside the app's middleware and routing once its headers went out.

    Why: an open stream's objects live as long as it does, and every full collection of the
    cyclic collector walks them. In the daemon a storm sets off a full collection every
    second or so, on whichever thread allocates — mostly the MQTT network thread — and
    Starlette's ``StreamingResponse`` inside FastAPI's stack kept ~220 tracked objects per
    stream: ~25 suspended coroutines (a middleware, router or exception wrapper each, the
    ``send`` wrappers' closures) and, under uvicorn's ASGI 2.3, an anyio task group (two
    tasks, cancel scopes, contexts). 200 streams' 44,000 objects made each full collection
    ~30 ms longer: the daemon's CPU that grew on its network thread (docs/web.md,
    *Measured*). The stream ends when the subscriber's inbox gives None: cut off, the server
    stopping, or (put there by the waiting task) the browser gone. Under uvicorn's h11 the
    body is written to the connection directly (``wire.py``, ``Subscriber.go_direct``): then
    the one task is this response's own, waiting for the browser to leave, and a stream
    ends by its connection closing."""

    media_type = "text/event-stream"

    def __init__(self, hub: Hub, subscriber: Subscriber, backlog: list[Item],
                 headers: dict[str, str] | None = None) -> None:
        self.status_code = 200
        self.background = None
        self.init_headers(headers)
        self._hub, self._subscriber, self._backlog = hub, subscriber, backlog

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # the headers through the whole stack (security headers, the session cookie)
        await send({"type": "http.response.start", "status": self.status_code,
                    "headers": self.raw_headers})
        parked = scope.get(PARK)
        if isinstance(parked, list):
            parked.append(self)  # the stack unwinds; StreamParking streams the body
            return
        await self.stream(receive, send)  # no StreamParking above: stream from here

    async def stream(self, receive: Receive, send: Send) -> None:
        """The body: the backlog, then each round, until the stream ends. Direct where the
        server allows it (``wire.py``): the backlog written here, then the rounds by the hub's
        hand-over, and this task only waits for the browser to leave."""
        wire = open_wire(send, RETRY)
        if wire is None:
            await self._stream_asgi(receive, send)
            return
        backlog, self._backlog = self._backlog, []
        try:
            self._subscriber.go_direct(wire, backlog)
            del backlog, wire
            while (await receive())["type"] != "http.disconnect":
                pass  # the request's (empty) body; then the browser leaving, or end()
        finally:
            self.abandon()

    async def _stream_asgi(self, receive: Receive, send: Send) -> None:
        """The body through ASGI ``send``: a task drains the subscriber's rounds."""
        subscriber = self._subscriber
        gone = asyncio.get_running_loop().create_task(_until_disconnect(receive, subscriber))

        async def disconnected() -> bool:
            return gone.done()

        try:
            async for chunk in event_stream(self._hub, subscriber, self._backlog,
                                            disconnected):
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:
            pass  # the browser went away mid-write (a server that raises instead of dropping)
        finally:
            gone.cancel()
            self.abandon()

    def abandon(self) -> None:
        """The stream will not (or no longer) be sent: no more rounds for it."""
        self._hub.unsubscribe(self._subscriber)


class StreamParking:
    """ASGI middleware, the outermost of the app's own: an event stream's response sends its
    headers through the whole stack and leaves itself here (``scope[PARK]``); the stack
    unwinds — routing, dependencies, exception handlers, the other middleware's frames and
    closures are freed — and the body is streamed from this frame. See
    :class:`EventStreamResponse` for why. ``WebServer`` puts another one around the whole
    app (outside FastAPI's and Starlette's own layers too); the outermost one parks."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or PARK in scope:  # not a request, or parked further out
            await self.app(scope, receive, send)
            return
        given = set(scope)
        parked: list[EventStreamResponse] = []
        scope[PARK] = parked
        try:
            await self.app(scope, receive, send)
        except BaseException:
            for response in parked:
                response.abandon()
            raise
        if parked:
            # what routing and FastAPI left in the scope (the request's state, the route,
            # the dependencies' closed exit stacks) would live as long as the stream
            for key in set(scope) - given:
                del scope[key]
            await parked[0].stream(receive, send)


async def _until_disconnect(receive: Receive, subscriber: Subscriber) -> None:
    """Wait for the browser to leave (a GET's empty body comes first), then end its stream."""
    while (await receive())["type"] != "http.disconnect":
        pass
    subscriber.end()


def sse(item_id: int | None, event: str, data: str) -> str:
    """One server-sent event; ``data`` may hold newlines (each becomes a data: line)."""
    lines = [f"id: {item_id}"] if item_id is not None else []
    lines.append(f"event: {event}")
    lines.extend(f"data: {line}" for line in data.split("\n"))
    return "\n".join(lines) + "\n\n"

