"""The Server-Timing header: what a page cost the server, from the request's start to its last
body byte, measured in the server (bench/web.py reads it instead of the client's wall clock)."""

from __future__ import annotations

import asyncio
import http.client
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from floorstream.api import Stream
from floorstream.config import parse_mapping
from floorstream.plugins import build_plugins
from floorstream.web import create_app
from support import DaemonRunner

from .websupport import TOKEN, web_config, web_mapping

AUTH = {"authorization": f"Bearer {TOKEN}"}


def timing(header: str) -> dict[str, float]:
    """``app;dur=1.2, cpu;dur=0.8`` → {"app": 1.2, "cpu": 0.8}."""
    found = {}
    for part in header.split(","):
        name, _, duration = part.strip().partition(";dur=")
        found[name] = float(duration)
    return found


@pytest.fixture
def app(tmp_path: Path) -> Iterator[FastAPI]:
    config = web_config(tmp_path)
    with Stream(config, build_plugins()) as stream:
        stream.publish(source="presses", subject="press-07", type="machine.state_changed",
                       summary="press-07 in fault", key="one")
        yield create_app(config, stream=stream)


def test_pages_and_the_json_api_carry_the_server_time(app: FastAPI) -> None:
    with TestClient(app) as client:
        for path in ("/", "/teams/maintenance", "/api/feed?team=maintenance",
                     "/threads/press-07"):
            answer = client.get(path, headers=AUTH)
            assert answer.status_code == 200, path
            found = timing(answer.headers["server-timing"])
            assert set(found) == {"app", "cpu"}, path
            assert found["app"] > 0 and found["cpu"] >= 0, (path, found)
        # an error page is timed as well
        assert "server-timing" in client.get("/posts/nope", headers=AUTH).headers


def test_the_time_runs_to_the_last_body_byte(app: FastAPI) -> None:
    """A response whose last body part comes 0.2 s after its start: the header (sent with
    the start, held back until then) says at least 200 ms, not the time to the start."""

    async def slow(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})
        await asyncio.sleep(0.2)
        await send({"type": "http.response.body", "body": b"done"})

    app.mount("/slow", slow)
    with TestClient(app) as client:
        answer = client.get("/slow", headers=AUTH)
        assert answer.text == "done"
        assert timing(answer.headers["server-timing"])["app"] >= 200


def test_an_event_stream_is_passed_through_untimed(tmp_path: Path) -> None:
    """An event stream's start is not held back: its headers arrive before any event, with
    no Server-Timing (a stream has no last byte to time to)."""
    mapping = web_mapping(f"sqlite:///{tmp_path}/fs.db", port=0)
    (tmp_path / "floorstream.yaml").write_text(json.dumps(mapping), encoding="utf-8")
    with DaemonRunner(parse_mapping(mapping, build_plugins())) as runner:
        runner.start()
        assert runner.daemon is not None and runner.daemon.web is not None
        conn = http.client.HTTPConnection("127.0.0.1", runner.daemon.web.port, timeout=10)
        try:
            started = time.monotonic()
            conn.request("GET", "/events?scope=all", headers=AUTH)
            answer = conn.getresponse()  # the headers, with nothing published
            assert answer.status == 200
            assert time.monotonic() - started < 5
            assert answer.getheader("content-type", "").startswith("text/event-stream")
            assert answer.getheader("server-timing") is None
            assert answer.read(13) == b"retry: 1000\n\n"
        finally:
            conn.close()
        # the same server times its pages
        page = http.client.HTTPConnection("127.0.0.1", runner.daemon.web.port, timeout=10)
        try:
            page.request("GET", "/teams/maintenance", headers=AUTH)
            answer = page.getresponse()
            answer.read()
            assert timing(answer.getheader("server-timing") or "")["app"] > 0
        finally:
            page.close()
