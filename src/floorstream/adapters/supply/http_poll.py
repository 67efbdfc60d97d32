"""``supply.http``: poll a carrier's JSON endpoint with ETag/If-Modified-Since and a cursor.

Each poll sends the last ``ETag`` (``If-None-Match``) and ``Last-Modified``
(``If-Modified-Since``); a ``304 Not Modified`` costs the carrier nothing and posts nothing.
When the response names a next cursor (``cursor_field``, a dotted path in the body), it is sent
back as the ``cursor_param`` query parameter and pages are drained back to back. Cursor and
validators are stored in the source's checkpoint together with the page's posts, so a crash
re-fetches the last uncommitted page and its event ids (the carrier's own ids) dedupe it.

A page already handled — same request cursor, same ``ETag`` and same body — is not handled
again. That matters for a broken page from a server without validators: it is quarantined once,
and later polls of the same broken answer pass silently until the carrier fixes or extends it
(then the body differs and is read). The page key rides in the checkpoint with the page's
posts or quarantine entry, so a restart does not quarantine it again either.
"""

from __future__ import annotations

import hashlib
import http.client
import threading
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, ClassVar

from pydantic import Field

from floorstream.adapters.supply.feed import SupplyAdapter, SupplyConfig
from floorstream.plugin import Adapter, Duration, Emitter, Registry, hookimpl

__all__ = ["HttpPollConfig", "SupplyHttp"]


class HttpPollConfig(SupplyConfig):
    url: str = Field(pattern=r"^https?://", description="the JSON endpoint")
    interval: Duration = Field(default=60.0, description="time between polls when caught up")
    headers: dict[str, str] = Field(default_factory=dict,
                                    description="extra request headers (API key: ${ENV})")
    cursor_param: str = Field(default="cursor", description="query parameter for the cursor")
    cursor_field: str = Field(default="next_cursor",
                              description="dotted path of the next cursor in the response")
    timeout: Duration = Field(default=30.0, description="HTTP timeout")
    max_bytes: int = Field(default=20 * 1024 * 1024, ge=1,
                           description="bigger responses are quarantined unparsed (their "
                                       "first max_bytes kept)")


class SupplyHttp(SupplyAdapter[HttpPollConfig]):
    name: ClassVar[str] = "supply.http"

    def run(self, emitter: Emitter, stop: threading.Event) -> None:
        from floorstream.adapters.supply.handler import FeedHandler  # parsers load here

        config = self.config
        self.handler = handler = FeedHandler(config, self.context.checkpoint,
                                             self.context.log, self.context.load_state,
                                             self.context.load_state_of)
        state = handler.memory.extra
        failures = 0
        while not stop.is_set():
            try:
                more = self._poll(emitter, config, state)
                failures = 0
            except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as exc:
                failures += 1
                self.context.log.warning("supply_http_poll_failed", url=config.url,
                                         error=str(exc), failures=failures)
                if failures == 3:
                    emitter.problem(config.url, f"polling failed 3 times: {exc}",
                                    position=f"http-failure:{state.get('cursor')}")
                more = False
            if not more:  # idle: waiting ASNs are looked up again without a new page
                handler.recheck(emitter)
                stop.wait(config.interval if not failures else min(config.interval * failures,
                                                                    300))

    def _poll(self, emitter: Emitter, config: HttpPollConfig, state: dict[str, Any]) -> bool:
        """One request; True when another page is waiting."""
        url = config.url
        cursor = state.get("cursor")
        if cursor:
            joiner = "&" if urllib.parse.urlparse(url).query else "?"
            url += joiner + urllib.parse.urlencode({config.cursor_param: cursor})
        request = urllib.request.Request(url, headers={"Accept": "application/json",
                                                       **config.headers})
        if state.get("etag"):
            request.add_header("If-None-Match", state["etag"])
        if state.get("last_modified"):
            request.add_header("If-Modified-Since", state["last_modified"])
        try:
            with urllib.request.urlopen(request, timeout=config.timeout) as response:
                raw = response.read(config.max_bytes + 1)
                etag, modified = response.headers.get("ETag"), response.headers.get(
                    "Last-Modified")
        except urllib.error.HTTPError as exc:
            if exc.code == 304:
                return False
            raise
        oversized = len(raw) > config.max_bytes
        raw = raw[:config.max_bytes]
        page = "|".join((cursor or "", etag or "", hashlib.sha256(raw).hexdigest()))
        if state.get("page") == page:
            self.context.log.debug("supply_http_page_unchanged", url=url)
            return False  # handled already (posted or quarantined): nothing new to say
        name = f"{config.name}@{cursor or 'start'}"
        # parsed once: the events and the next cursor come from the same decoded body
        read = None if oversized else self.handler.prepare(raw, name, format="json",
                                                           allow_empty=True, body=True)
        next_cursor = None
        if read is not None and read.parsed is not None:
            next_cursor = _cursor(read.parsed.body, config.cursor_field)
            read.parsed.body = None  # what the page says is in its documents now
        new_state = {"cursor": next_cursor or cursor, "etag": etag, "last_modified": modified,
                     "page": page}
        if next_cursor and next_cursor != cursor:
            new_state.update(etag=None, last_modified=None)  # validators belong to a page
        previous = dict(state)
        state.clear()
        state.update({k: v for k, v in new_state.items() if v})
        self.handler.memory.dirty = True
        try:
            if read is None:  # oversized, quarantined once: the page key rides with it
                self.handler.quarantine(
                    emitter, raw, name, f"response over max_bytes {config.max_bytes}; not "
                    f"parsed (first {config.max_bytes} bytes kept)",
                    context={"truncated": True, "url": url})
            else:
                self.handler.prefetch([read])
                self.handler.finish(emitter, read)
        except BaseException:  # not handled (ERP down…): this page must be fetched again
            state.clear()
            state.update(previous)
            raise
        return bool(next_cursor and next_cursor != cursor)



def _cursor(body: Any, path: str) -> str | None:
    """The next page's cursor in a decoded page, or None; never from a page the parser
    refused (``body`` None: a cursor with a lone surrogate could not even be put in the next
    URL)."""
    value = body
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return str(value) if value not in (None, "") else None


@hookimpl
def register_adapters(registry: Registry[type[Adapter[Any]]]) -> None:
    registry.add(SupplyHttp)
