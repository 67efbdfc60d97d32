"""``supply.inbox``: an HTTP endpoint partners push files or JSON to (webhook style).

Every request must prove it comes from the partner: either a shared secret in a header
(``X-Floorstream-Secret``) or an HMAC-SHA256 of the raw body under a shared key, sent as
``sha256=<hex>`` (GitHub/Shopify style) in ``signature_header``; both are compared in constant
time. Unsigned or badly signed requests get 401 and are not stored: anyone can reach a port.

The answer waits for the commit: ``200`` means the posts are stored, ``422`` means the body did
not parse and is in quarantine. A document not committed within ``ack_timeout`` (a busy
pipeline, or floorstream stopping or crashing meanwhile) gets ``503`` with ``Retry-After``:
a 2xx promises the posts are safe, and only the commit can promise that. A sender that gets
503 or no answer retries; the retry carries the same document, so the same event ids, and
posts nothing twice.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field, model_validator

from floorstream.adapters.supply.feed import SupplyAdapter, SupplyConfig
from floorstream.plugin import Adapter, Duration, Emitter, Registry, hookimpl

if TYPE_CHECKING:
    from floorstream.adapters.supply.handler import Outcome

__all__ = ["InboxConfig", "SupplyInbox", "sign"]


class InboxConfig(SupplyConfig):
    host: str = Field(default="127.0.0.1", description="address to listen on")
    port: int = Field(default=8088, ge=0, le=65535, description="TCP port (0: any free one)")
    path: str = Field(default="/inbox", description="URL path that accepts POSTs")
    secret: str | None = Field(default=None,
                               description="shared secret expected in X-Floorstream-Secret")
    hmac_key: str | None = Field(default=None,
                                 description="key of the HMAC-SHA256 body signature")
    signature_header: str = Field(default="X-Signature-256",
                                  description="header carrying sha256=<hex>")
    max_bytes: int = Field(default=20 * 1024 * 1024, ge=1, description="largest body accepted")
    ack_timeout: Duration = Field(default=30.0, description="wait this long for the commit")

    @model_validator(mode="after")
    def _needs_auth(self) -> InboxConfig:
        if not self.secret and not self.hmac_key:
            raise ValueError("supply.inbox needs secret or hmac_key: an open port must not "
                             "accept posts from anyone")
        return self


def sign(key: str, body: bytes) -> str:
    """The signature header value a sender computes: ``sha256=<hex>``."""
    return "sha256=" + hmac.new(key.encode(), body, hashlib.sha256).hexdigest()


class SupplyInbox(SupplyAdapter[InboxConfig]):
    name: ClassVar[str] = "supply.inbox"

    port: int = 0

    def run(self, emitter: Emitter, stop: threading.Event) -> None:
        from floorstream.adapters.supply.handler import FeedHandler  # parsers load here

        config: InboxConfig = self.config
        self.handler = FeedHandler(config, self.context.checkpoint, self.context.log,
                                   self.context.load_state,
                                   self.context.load_state_of)
        lock = threading.Lock()  # one document at a time: the memory is not shared-safe
        adapter = self

        class Handler(BaseHTTPRequestHandler):
            timeout = 60  # seconds a sender may stall mid-request before it is dropped

            def log_message(self, format: str, *args: Any) -> None:
                return  # structlog has the useful lines

            def do_POST(self) -> None:
                if self.path.split("?")[0] != config.path:
                    return self._answer(404, {"error": "unknown path"})
                header = self.headers.get("Content-Length")
                length = _length(header)
                if length is None:  # never read an unknown amount: read(-1) waits for EOF
                    return self._answer(400 if header else 411,
                                        {"error": "Content-Length invalid" if header
                                         else "Content-Length required"}, close=True)
                if length > config.max_bytes:
                    return self._answer(413, {"error": "body too large"}, close=True)
                try:
                    body = self.rfile.read(length)
                except OSError:  # the sender stalled (see timeout) or went away
                    self.close_connection = True
                    return None
                if len(body) < length:  # cut short: the sender retries the whole document
                    return self._answer(400, {"error": "body shorter than Content-Length"},
                                        close=True)
                if not adapter._authentic(self.headers, body):
                    adapter.context.log.warning("supply_inbox_rejected",
                                                client=self.client_address[0])
                    return self._answer(401, {"error": "missing or bad signature"})
                name = _filename(self.headers.get("X-Filename")) or "push-" + hashlib.sha256(
                    body).hexdigest()[:16]
                committed = threading.Event()
                try:
                    with lock:
                        outcome: Outcome = adapter.handler.handle(
                            emitter, body, name, ack=committed.set)
                except Exception as exc:  # the ERP is down: the sender must retry later
                    adapter.context.log.error("supply_inbox_failed", file=name, error=repr(exc))
                    return self._answer(503, {"error": "temporarily unable to process"})
                if not committed.wait(config.ack_timeout):  # lost if we crash now: retry
                    return self._answer(503, {"error": "not stored yet, retry",
                                              "events": outcome.events}, retry_after=5)
                if outcome.error is not None:
                    return self._answer(422, {"error": str(outcome.error),
                                              "quarantined": True})
                self._answer(200, {"status": "committed", "events": outcome.events,
                                   "warnings": list(outcome.warnings)})

            def _answer(self, status: int, payload: dict[str, Any],
                        retry_after: int | None = None, close: bool = False) -> None:
                body = json.dumps(payload).encode()
                self.send_response(status)
                if close:  # the request body was not read: the connection cannot go on
                    self.send_header("Connection", "close")
                    self.close_connection = True
                if retry_after is not None:
                    self.send_header("Retry-After", str(retry_after))
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        server = ThreadingHTTPServer((config.host, config.port), Handler)
        server.daemon_threads = True
        self.port = server.server_address[1]
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                                  name=f"inbox-{config.name}", daemon=True)
        thread.start()
        self.context.log.info("supply_inbox_listening", host=config.host, port=self.port,
                              path=config.path)
        try:
            # idle: waiting ASNs are looked up again though nobody pushes (at most every
            # second; each waits its own recheck_every)
            while not stop.wait(1.0):
                with lock:
                    self.handler.recheck(emitter)
        finally:
            server.shutdown()
            server.server_close()

    def _authentic(self, headers: Any, body: bytes) -> bool:
        config = self.config
        if config.hmac_key:
            given = headers.get(config.signature_header) or ""
            if hmac.compare_digest(given.strip().encode(), sign(config.hmac_key, body).encode()):
                return True
        if config.secret:
            given = headers.get("X-Floorstream-Secret") or ""
            if hmac.compare_digest(given.encode(), config.secret.encode()):
                return True
        return False



def _length(header: str | None) -> int | None:
    """The Content-Length as a byte count, None when missing, negative or not a number."""
    text = (header or "").strip()
    if not (text.isascii() and text.isdigit()):
        return None
    return int(text[:18])  # (18 digits: more than any body, over max_bytes anyway)


def _filename(header: str | None) -> str | None:
    """The sender's file name, printable and at most 200 characters (it is logged, stored with
    a quarantined body and may name an ASN)."""
    if not header:
        return None
    cleaned = "".join(ch if ch.isprintable() else "?" for ch in header).strip()[:200]
    return cleaned or None


@hookimpl
def register_adapters(registry: Registry[type[Adapter[Any]]]) -> None:
    registry.add(SupplyInbox)
