"""Reading an agent's ``multipart/x-mixed-replace`` stream, one document per part.

``/sample?interval=…`` keeps the response open and writes a part whenever there is something
new (an empty document every ``heartbeat`` otherwise)::

    --BOUNDARY
    Content-type: text/xml
    Content-length: 1234

    <?xml …?><MTConnectStreams …>…</MTConnectStreams>
    --BOUNDARY

Parts are read by their ``Content-length`` when the agent sends one (every agent in use does),
else up to the next boundary line. The caller hands in anything with ``readline(limit)`` and
``read(n)``: an :class:`http.client.HTTPResponse` undoes the chunked transfer encoding below.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

__all__ = ["MultipartError", "boundary_of", "parts"]

_LINE = 64 * 1024


class MultipartError(ValueError):
    """The stream is not multipart as announced, or a part is larger than allowed."""


class _Readable(Protocol):
    def readline(self, limit: int = -1, /) -> bytes: ...
    def read(self, amt: int | None = None, /) -> bytes: ...


def boundary_of(content_type: str) -> str | None:
    """The boundary of a ``multipart/…; boundary=…`` content type, or None if not multipart."""
    kind, _, params = content_type.partition(";")
    if not kind.strip().lower().startswith("multipart/"):
        return None
    for param in params.split(";"):
        name, _, value = param.strip().partition("=")
        if name.strip().lower() == "boundary" and value.strip():
            return value.strip().strip('"')
    return None


def parts(stream: _Readable, boundary: str, max_size: int) -> Iterator[bytes]:
    """The bodies of the parts, as they come; ends when the stream ends or closes."""
    marker = b"--" + boundary.encode("latin-1")
    line = stream.readline(_LINE)
    while line:
        if line.rstrip(b"\r\n") == marker + b"--":
            return
        if line.rstrip(b"\r\n") != marker:
            line = stream.readline(_LINE)  # a preamble, the blank line after a body
            continue
        length: int | None = None
        while True:  # the part's headers
            header = stream.readline(_LINE)
            if not header:
                return
            if not header.strip():
                break
            name, _, value = header.decode("latin-1").partition(":")
            if name.strip().lower() == "content-length":
                try:
                    length = int(value.strip())
                except ValueError:
                    raise MultipartError(f"bad Content-length {value.strip()!r}") from None
        if length is not None:
            if length > max_size:
                raise MultipartError(f"a part of {length} bytes is above the "
                                     f"{max_size}-byte limit")
            body = _exactly(stream, length)
            if body is None:
                return  # closed in the middle of a part: the caller resumes from its position
            yield body
            line = stream.readline(_LINE)
            continue
        chunks: list[bytes] = []
        size = 0
        while True:
            line = stream.readline(_LINE)
            if not line or line.rstrip(b"\r\n") in (marker, marker + b"--"):
                break
            chunks.append(line)
            size += len(line)
            if size > max_size:
                raise MultipartError(f"a part above the {max_size}-byte limit")
        if not line:
            return  # closed before the part's end: it may be incomplete, so it is dropped
        body = b"".join(chunks)
        yield body[:-2] if body.endswith(b"\r\n") else body.rstrip(b"\n")


def _exactly(stream: _Readable, length: int) -> bytes | None:
    chunks: list[bytes] = []
    left = length
    while left:
        chunk = stream.read(left)
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)
