"""``supply.http`` and a broken page: quarantined once, polling goes on, the fix is read.

The carrier here is a real local HTTP server without validators (no ETag, no Last-Modified):
the case where every poll fetches the same broken body again.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from floorstream.adapters.supply.http_poll import HttpPollConfig, SupplyHttp
from floorstream.plugin.adapter import AdapterContext
from floorstream.plugins import build_plugins
from floorstream.testing.doubles import RecordingEmitter
from support import wait_for
from support.http import Reply, Request, http_receiver

BROKEN = b'{"events": [{"metadata": {"eventID": "ev-1"'  # cut off mid-object


def _good_page() -> bytes:
    event = {"metadata": {"eventID": "ev-1", "eventType": "TRANSPORT",
                          "publisher": {"partyName": "Maersk"}},
             "payload": {"eventClassifierCode": "ACT", "transportEventTypeCode": "DEPA",
                         "eventDateTime": "2026-11-20T08:00:00Z",
                         "relatedDocumentReferences": [{"type": "BKG", "value": "BKG1"}]}}
    return json.dumps({"events": [event], "next_cursor": "1"}).encode()


@dataclass
class Endpoint:
    body: bytes = BROKEN  # the first page
    later: bytes = b'{"events": []}'  # any page after a cursor
    url: str = ""
    requests: list[str] = field(default_factory=list)


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    state = Endpoint()

    def reply(request: Request) -> Reply:
        state.requests.append(request.path)
        return 200, {}, state.body if "cursor=" not in request.path else state.later

    with http_receiver() as server:
        server.reply = reply
        state.url = f"{server.url}/events"
        yield state


def _start(url: str, checkpoint: str | None) -> tuple[RecordingEmitter, threading.Thread]:
    config = HttpPollConfig(name="carrier", adapter="supply.http", url=url, interval=0.05)
    context = AdapterContext("carrier", checkpoint, build_plugins(load_entry_points=False).decoders)
    emitter = RecordingEmitter()
    thread = threading.Thread(target=SupplyHttp(config, context).run,
                              args=(emitter, emitter.stop), daemon=True)
    thread.start()
    return emitter, thread


def test_a_broken_page_is_quarantined_once_and_polling_goes_on(endpoint: Endpoint) -> None:
    emitter, thread = _start(endpoint.url, None)
    try:
        wait_for(lambda: len(endpoint.requests) >= 8, timeout=10)
        assert len(emitter.quarantined) == 1  # eight polls of the same broken answer
        (item,) = emitter.quarantined
        assert item.raw == BROKEN and "carrier@start" in item.error
        # a restart from the checkpoint remembers it was quarantined
        checkpoint = emitter.last_checkpoint
    finally:
        emitter.stop.set()
        thread.join(5)
    again, thread = _start(endpoint.url, checkpoint)
    try:
        seen = len(endpoint.requests)
        wait_for(lambda: len(endpoint.requests) >= seen + 4, timeout=10)
        assert again.quarantined == [] and again.events == []
        endpoint.body = _good_page()  # the carrier fixes the page: it is read at once
        wait_for(lambda: bool(again.events), timeout=10)
    finally:
        again.stop.set()
        thread.join(5)
    assert [(e.subject, e.type) for e in again.events] == [
        ("shipment BKG1", "shipment.status_changed")]
    assert again.quarantined == []
    assert any("cursor=1" in path for path in endpoint.requests)  # and it moved on


def test_the_same_broken_body_at_another_cursor_is_quarantined_again(
        endpoint: Endpoint) -> None:
    """The key is cursor + ETag + body: the same garbage on a later page is a new problem."""
    endpoint.later = BROKEN
    emitter, thread = _start(endpoint.url, None)
    try:
        wait_for(lambda: len(emitter.quarantined) == 1, timeout=10)
        endpoint.body = _good_page()
        wait_for(lambda: len(emitter.quarantined) == 2, timeout=10)
        polls = len(endpoint.requests)
        wait_for(lambda: len(endpoint.requests) >= polls + 4, timeout=10)
    finally:
        emitter.stop.set()
        thread.join(5)
    assert [q.error.split(":")[0] for q in emitter.quarantined] == ["carrier@start",
                                                                    "carrier@1"]
    assert [e.subject for e in emitter.events] == ["shipment BKG1"]
    checkpoint = emitter.last_checkpoint
    assert checkpoint is not None and json.loads(checkpoint)["extra"]["cursor"] == "1"
