"""``supply.http`` against a real local HTTP server, ``supply.inbox`` with real HTTP requests."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from floorstream.adapters.supply.inbox import sign
from floorstream.store.store import Store
from support import DaemonRunner, wait_for
from support.http import Reply, Request, http_receiver

from .support import SAMPLES, all_posts


def _event(n: int, code: str = "DEPA") -> dict[str, Any]:
    return {"metadata": {"eventID": f"ev-{n}", "eventType": "TRANSPORT",
                         "publisher": {"partyName": "Maersk"}},
            "payload": {"eventClassifierCode": "ACT", "transportEventTypeCode": code,
                        "eventDateTime": f"2026-11-{10 + n:02d}T08:00:00Z",
                        "relatedDocumentReferences": [{"type": "BKG", "value": f"BKG{n}"}]}}


@dataclass
class Carrier:
    """A carrier API: events after a cursor, two per page, with ETag and Last-Modified."""

    events: list[dict[str, Any]] = field(default_factory=list)
    requests: list[tuple[str | None, str | None, int]] = field(default_factory=list)
    url: str = ""

    def page(self, request: Request) -> Reply:
        cursor, if_none_match = request.query.get("cursor"), request.headers.get("if-none-match")
        start = int(cursor or 0)
        chunk = self.events[start:start + 2]
        etag = f'"{start}-{len(self.events)}"'
        status = 304 if if_none_match == etag else 200
        self.requests.append((cursor, if_none_match, status))
        body = json.dumps({"events": chunk, "next_cursor": str(start + len(chunk))}).encode()
        return status, {"ETag": etag, "Last-Modified": "Wed, 25 Nov 2026 08:00:00 GMT"}, body


@pytest.fixture
def carrier() -> Iterator[Carrier]:
    state = Carrier(events=[_event(1), _event(2), _event(3, "ARRI")])
    with http_receiver() as server:
        server.reply = state.page
        state.url = f"{server.url}/events"
        yield state


def test_a_page_is_decoded_once_and_a_bom_does_not_hide_its_cursor(tmp_path: Path) -> None:
    """The page's events and its next cursor come from one decode (the cursor used to be read
    by a second ``json.loads``, which also refused a page starting with a UTF-8 BOM that the
    parser accepts: such a carrier's second page was never asked for)."""
    pages = {None: [_event(1), _event(2)], "2": [_event(3, "ARRI")]}
    asked: list[str | None] = []

    def page(request: Request) -> Reply:
        cursor = request.query.get("cursor")
        asked.append(cursor)
        events = pages.get(cursor, [])
        body = {"events": events, "next_cursor": "2" if cursor is None else None}
        return 200, {}, b"\xef\xbb\xbf" + json.dumps(body).encode()

    url = f"sqlite:///{tmp_path}/fs.db"
    with http_receiver() as server:
        server.reply = page
        config = f"""
store: {url}
default_team: everyone
sources:
  - name: maersk
    adapter: supply.http
    url: {server.url}/events
    interval: 0.1
"""
        with DaemonRunner(config).start():
            wait_for(lambda: len(all_posts(url)) == 3)
    assert asked[:2] == [None, "2"]
    assert [p.summary for p in all_posts(url)][2] == (
        "Carrier Maersk: shipment BKG3 arrived (13 Nov)")


def test_http_poll_pages_with_cursor_etag_and_resumes(tmp_path: Path, carrier: Carrier) -> None:
    config = f"""
store: sqlite:///{tmp_path}/fs.db
default_team: everyone
sources:
  - name: maersk
    adapter: supply.http
    url: {carrier.url}
    interval: 0.1
"""
    url = f"sqlite:///{tmp_path}/fs.db"
    with DaemonRunner(config).start():
        wait_for(lambda: len(all_posts(url)) == 3)
        wait_for(lambda: any(status == 304 for *_, status in carrier.requests))
        carrier.events.append(_event(4, "ARRI"))
        wait_for(lambda: len(all_posts(url)) == 4)
    cursors = [cursor for cursor, _, _ in carrier.requests]
    assert cursors[:2] == [None, "2"]  # first page, then the cursor it named
    assert [p.summary for p in all_posts(url)][:2] == [
        "Carrier Maersk: shipment BKG1 departed (11 Nov)",
        "Carrier Maersk: shipment BKG2 departed (12 Nov)"]
    # a conditional request whose ETag matched cost a 304 and posted nothing
    assert any(inm is not None and status == 304 for _, inm, status in carrier.requests)
    seen = len(carrier.requests)
    with DaemonRunner(config).start():  # the restart resumes from the committed cursor
        wait_for(lambda: len(carrier.requests) >= seen + 2)
    assert carrier.requests[seen][0] == "4"
    assert len(all_posts(url)) == 4


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_inbox_hmac_and_shared_secret(tmp_path: Path) -> None:
    port = _free_port()
    config = f"""
store: sqlite:///{tmp_path}/fs.db
default_team: everyone
sources:
  - name: pushed
    adapter: supply.inbox
    port: {port}
    hmac_key: k3y-for-hmac
    secret: s3cret
"""
    url = f"sqlite:///{tmp_path}/fs.db"
    inbox = f"http://127.0.0.1:{port}/inbox"
    body = (SAMPLES / "x12" / "004010_214_staedi_ellipsis_terminator.edi").read_bytes()
    with DaemonRunner(config).start():
        wait_for(lambda: _reachable(port))
        status, answer = _post(inbox, body, {"X-Signature-256": sign("wrong-key", body)})
        assert (status, answer) == (401, {"error": "missing or bad signature"})
        status, _ = _post(inbox, body, {})
        assert status == 401
        assert all_posts(url) == []
        status, answer = _post(inbox, body, {"X-Signature-256": sign("k3y-for-hmac", body),
                                             "X-Filename": "214.edi"})
        assert (status, answer["status"], answer["events"]) == (200, "committed", 1)
        assert len(all_posts(url)) == 1  # 200 means it is stored already
        status, answer = _post(inbox, body, {"X-Floorstream-Secret": "s3cret"})
        assert (status, answer["events"]) == (200, 0)  # a retry: known already, nothing new
        assert len(all_posts(url)) == 1
        garbage = b"ISA*00*broken"
        status, answer = _post(inbox, garbage, {"X-Signature-256": sign("k3y-for-hmac",
                                                                         garbage)})
        assert status == 422 and answer["quarantined"] is True
        status, _ = _post(inbox.replace("/inbox", "/other"), body, {})
        assert status == 404
    store = Store.open(url)
    try:
        (row,) = store.quarantined(source="pushed")
    finally:
        store.close()
    assert row.raw == garbage and "ISA" in row.error


def _reachable(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def test_inbox_refuses_to_start_without_a_secret(tmp_path: Path) -> None:
    from floorstream.config import parse_config
    from floorstream.errors import ConfigError
    from floorstream.plugins import build_plugins

    with pytest.raises(ConfigError, match="needs secret or hmac_key"):
        parse_config(f"""
store: sqlite:///{tmp_path}/fs.db
sources:
  - {{name: open, adapter: supply.inbox, port: 0}}
""", build_plugins())


def test_inbox_answers_503_while_the_erp_is_down(tmp_path: Path) -> None:
    """Posting an ASN without its ERP facts would be wrong: the sender is told to retry."""
    port = _free_port()
    config = f"""
store: sqlite:///{tmp_path}/fs.db
default_team: everyone
sources:
  - name: pushed
    adapter: supply.inbox
    port: {port}
    secret: s3cret
    erp: {{url: "sqlite:///{tmp_path}/no-such-dir/erp.db"}}
"""
    body = (SAMPLES / "x12" / "004060_856_apimeister.edi").read_bytes()
    with DaemonRunner(config).start():
        wait_for(lambda: _reachable(port))
        status, answer = _post(f"http://127.0.0.1:{port}/inbox", body,
                               {"X-Floorstream-Secret": "s3cret"})
    assert (status, answer) == (503, {"error": "temporarily unable to process"})
    assert all_posts(f"sqlite:///{tmp_path}/fs.db") == []
