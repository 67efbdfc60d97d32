"""An open event stream's rounds written straight to its connection's transport.

Why: in the daemon the web server shares the process's GIL with the pipeline and the MQTT
network thread, and every round the watcher hands over cost each open stream a wake-up of
its task, an ASGI ``send`` through uvicorn and an ``h11.Data`` event through h11's state
machine (~25 us alone on the development machine) before the bytes reached the socket:
~40-60 us of the server's thread per stream and round, 200 streams twice a second. A round
is a few whole server-sent events for a response whose headers went out long ago: its bytes
need no more than the chunked framing (``<size hex>\\r\\n<bytes>\\r\\n``) and one
``transport.write``, done for every stream of a server loop in ONE callback
(``live._hand_over``), without waking a task per stream.

Only where it is known to be right: uvicorn's h11 protocol (``WebServer`` asks uvicorn for
it), a GET, and a framing checked on the stream's first bytes: h11 itself frames them
(``retry: ...``), and the rounds are framed the same way only if h11's bytes are exactly the
chunked frame (an HTTP/1.1 peer) or the bytes alone (HTTP/1.0: the connection's end ends the
body). Anything else — another server, httptools, a test client — streams through ASGI
``send`` as before (``live.event_stream``).
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.types import Send

__all__ = ["BUFFER_LIMIT", "Wire", "frame", "open_wire"]

#: bytes a stream's transport may hold unsent (its reader too slow) before the stream is cut
#: off; its browser resumes from the store with ``Last-Event-ID`` (as ``live.QUEUE_LIMIT``)
BUFFER_LIMIT = 2 * 1024 * 1024


def frame(data: bytes, chunked: bool) -> bytes:
    """``data`` as it goes on the wire in a chunked (HTTP/1.1) or a plain (HTTP/1.0) body."""
    return b"%x\r\n%b\r\n" % (len(data), data) if chunked else data


class Wire:
    """A response's transport and its framing (no per-stream object is kept beyond the
    subscriber's two slots: this is only what ``open_wire`` found)."""

    __slots__ = ("chunked", "transport")

    def __init__(self, transport: asyncio.Transport, chunked: bool) -> None:
        self.transport, self.chunked = transport, chunked


def open_wire(send: Send, first: bytes) -> Wire | None:
    """Write ``first`` (a stream's first body bytes; its headers went out through ``send``)
    and return the connection's transport and framing, when the rest of the body may bypass
    ``send``; None: nothing was written, the whole body goes through ``send``."""
    cycle: Any = getattr(send, "__self__", None)
    if type(cycle).__module__ != "uvicorn.protocols.http.h11_impl":
        return None
    try:
        import h11

        transport, conn = cycle.transport, cycle.conn
        if (not isinstance(transport, asyncio.Transport) or not isinstance(conn, h11.Connection)
                or cycle.scope.get("method") != "GET" or not cycle.response_started
                or cycle.response_complete or cycle.disconnected or transport.is_closing()):
            return None
        # what ``send`` would write for these bytes (a Data event moves no state of h11's)
        output = conn.send(h11.Data(data=first))
    except Exception:  # another uvicorn than the one this was written against
        return None
    if output == frame(first, True):
        chunked = True
    elif output == first:
        chunked = False
    else:  # a framing not known here: nothing written, the stream goes through ``send``
        return None
    transport.write(output)
    return Wire(transport, chunked)
