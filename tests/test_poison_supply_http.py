"""Poison over the supply HTTP transports: ``supply.inbox`` answers 422 with the body
quarantined (or 400/411 for a request it cannot read), ``supply.http`` quarantines a poison page
once and goes on polling; neither logs an error or restarts its source.

Real daemon, real PostgreSQL, real HTTP (a local carrier API, real POSTs).
"""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from sqlalchemy import select

from floorstream.config import parse_config
from floorstream.daemon import Daemon
from floorstream.plugins import build_plugins
from floorstream.store import schema
from support.http import Reply, Request, http_receiver
from support.waiting import wait_for

pytestmark = pytest.mark.postgres

X12 = (Path(__file__).parent / "samples" / "x12" / "004060_856_apimeister.edi").read_bytes()


def _page(ref: str, **payload: Any) -> bytes:
    event = {"metadata": {"eventID": f"ev-{ref}", "eventType": "TRANSPORT",
                          "publisher": {"partyName": "Maersk"}},
             "payload": {"eventClassifierCode": "ACT", "transportEventTypeCode": "DEPA",
                         "eventDateTime": "2026-11-20T08:00:00Z",
                         "relatedDocumentReferences": [{"type": "BKG", "value": ref}],
                         **payload}}
    return json.dumps({"events": [event]}).encode()


#: pushed bodies → a phrase of the 422 answer and the quarantine reason
PUSHED: dict[str, tuple[bytes, str]] = {
    "deep": (b"[" * 200_000 + b"]" * 200_000, "nested deeper"),
    "huge-int": (_page("P-HUGE").replace(b'"2026-11-20T08:00:00Z"', b"7" * 5_000),
                 "4300 digits"),
    "surrogate": (_page("P-\ud800"), "lone surrogate"),
    "truncated": (X12[:X12.index(b"SN1*2")], "truncated"),
    "garbage": (b"\x00\x01\x02" * 100, "binary data"),
    "empty": (b"", "empty file"),
    "long-id": (_page("P" * 400), "more than 255"),
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def carrier() -> Iterator[dict[str, Any]]:
    """A carrier API: the first page is poison (JSON nested 200,000 deep) until ``fixed``;
    then a good page. No validators, so every poll fetches the page again."""
    state: dict[str, Any] = {"fixed": False, "requests": 0}

    def reply(request: Request) -> Reply:
        state["requests"] += 1
        body = _page("POLLED") if state["fixed"] else b'{"e":' * 200_000 + b"1" + b"}" * 200_000
        return 200, {"Content-Type": "application/json"}, body

    with http_receiver() as server:
        server.reply = reply
        state["url"] = f"{server.url}/events"
        yield state


def _config(store: str, port: int, url: str) -> str:
    return f"""
store: {store}
default_team: everyone
flood: null
sources:
  - name: pushed
    adapter: supply.inbox
    port: {port}
    secret: s3cret
  - name: polled
    adapter: supply.http
    url: {url}
    interval: 0.05
"""


def _post(port: int, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.putrequest("POST", "/inbox")
        for key, value in headers.items():
            connection.putheader(key, value)
        connection.endheaders()
        if body:
            connection.send(body)
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        connection.close()


def test_poison_over_http_is_quarantined_and_both_transports_go_on(
        pg_url: str, carrier: dict[str, Any]) -> None:
    port = _free_port()
    plugins = build_plugins(load_entry_points=False)
    daemon = Daemon(parse_config(_config(pg_url, port, carrier["url"]), plugins), plugins)
    secret = {"X-Floorstream-Secret": "s3cret"}
    with structlog.testing.capture_logs() as logs:
        daemon.start()
        try:
            wait_for(lambda: daemon._adapters.get("pushed") is not None
                     and daemon._adapters["pushed"].port, 10)  # type: ignore[attr-defined]
            answers = {}
            for name, (body, _reason) in PUSHED.items():
                answers[name] = _post(port, body, {**secret, "X-Filename": name,
                                                   "Content-Length": str(len(body))})
            # requests the inbox cannot read: refused, never read blindly (read(-1) hangs)
            refused = [_post(port, b"", {**secret, "Content-Length": "abc"}),
                       _post(port, b"", {**secret, "Content-Length": "-5"}),
                       _post(port, b"", secret)]
            good = _post(port, _page("P-GOOD"), {**secret, "X-Filename": "good",
                                                 "Content-Length": str(len(_page("P-GOOD")))})
            # the poll: the poison page is fetched again and again, quarantined once
            wait_for(lambda: carrier["requests"] >= 5, 20, "five polls of the poison page")
            carrier["fixed"] = True
            store = daemon.store
            p, q = schema.posts, schema.quarantine

            def subjects() -> set[str]:
                with store.engine.connect() as conn:
                    return set(conn.execute(select(p.c.subject)).scalars())

            wait_for(lambda: "shipment POLLED" in subjects(), 20, "the fixed page's post")
            with store.engine.connect() as conn:
                rows = conn.execute(select(q.c.source, q.c.error, q.c.raw, q.c.context)).all()
            statuses = {name: status.restarts for name, status in daemon.status.items()}
        finally:
            daemon.stop()
    for name, (_body, reason) in PUSHED.items():
        status, answer = answers[name]
        assert status == 422 and answer["quarantined"] is True, (name, answers[name])
        assert reason in answer["error"], (name, answer)
    assert good == (200, {"status": "committed", "events": 1, "warnings": []})
    assert [status for status, _ in refused] == [400, 400, 411]
    pushed = {r.context["file"]: r for r in rows if r.source == "pushed"}
    assert sorted(pushed) == sorted(PUSHED)
    for name, (body, reason) in PUSHED.items():
        assert bytes(pushed[name].raw) == body and reason in pushed[name].error
    polled = [r for r in rows if r.source == "polled"]
    assert len(polled) == 1 and "nested deeper than 100 levels" in polled[0].error
    assert "shipment P-GOOD" in subjects()
    assert statuses == {"pushed": 0, "polled": 0}
    assert [e for e in logs if e["log_level"] in ("error", "critical")] == []
    warned = [e for e in logs if e["event"] == "input_quarantined"]
    assert len(warned) == len(PUSHED) + 1 and all(e["log_level"] == "warning" for e in warned)


def test_an_oversized_page_is_quarantined_once(pg_url: str) -> None:
    """A carrier answering 2 MB where 64 KiB are allowed: the head is kept, polling goes on."""
    big = _page("BIG", changeRemark="x" * 2_000_000)
    with http_receiver() as server:
        server.body = big
        config = f"""
store: {pg_url}
default_team: everyone
sources:
  - name: polled
    adapter: supply.http
    url: {server.url}/events
    interval: 0.05
    max_bytes: 65536
"""
        plugins = build_plugins(load_entry_points=False)
        daemon = Daemon(parse_config(config, plugins), plugins)
        daemon.start()
        try:
            wait_for(lambda: len(server.requests) >= 5, 20, "five polls of the big page")
            with daemon.store.engine.connect() as conn:
                rows = conn.execute(select(schema.quarantine.c.error, schema.quarantine.c.raw,
                                           schema.quarantine.c.context)).all()
            assert daemon.status["polled"].restarts == 0
        finally:
            daemon.stop()
    (row,) = rows
    assert "response over max_bytes 65536" in row.error
    assert bytes(row.raw) == big[:65536] and row.context["truncated"] is True
