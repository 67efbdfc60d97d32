"""Helpers of the web feed's tests: a config with people, a logged-in client."""

from __future__ import annotations

import contextlib
import re
from functools import cache
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher

from floorstream.config import Config, parse_mapping
from floorstream.plugins import build_plugins

PASSWORD = "correct horse battery staple"
TOKEN = "tok-alice-0123456789abcdef"
TOKEN_BOB = "tok-bob-0123456789abcdef"


@cache
def password_hash() -> str:
    """An argon2id hash with small parameters: verifying takes the parameters from the hash,
    so the tests' logins are fast while the code path is the production one (whose own
    hashes, from ``hash_password``, cost ~64 MiB and three passes)."""
    return PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(PASSWORD)


def web_mapping(store: str, **web: Any) -> dict[str, Any]:
    """Teams maintenance, production, purchasing; alice and carol read all, bob only
    production."""
    return {
        "store": store,
        "default_team": "production",
        "teams": {"maintenance": {}, "production": {}, "purchasing": {}},
        "routes": [{"name": "presses", "match": {"source": "presses"},
                    "teams": ["maintenance"]},
                   {"name": "orders", "match": {"source": "orders"}, "teams": ["purchasing"]}],
        "web": {"people": {"alice": {"password_hash": password_hash(), "name": "Alice"},
                           "bob": {"password_hash": password_hash(), "name": "Bob",
                                   "teams": ["production"]},
                           "carol": {"password_hash": password_hash(), "name": "Carol"}},
                "tokens": [{"person": "alice", "token": TOKEN},
                           {"person": "bob", "token": TOKEN_BOB}],
                **web},
    }


def web_config(tmp: Path, **web: Any) -> Config:
    return parse_mapping(web_mapping(f"sqlite:///{tmp}/fs.db", **web), build_plugins())


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf-token" content="([^"]*)"', html) or re.search(
        r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def login(client: Any, user: str = "alice", password: str = PASSWORD) -> Any:
    page = client.get("/login")
    return client.post("/login", data={"user": user, "password": password,
                                       "csrf": csrf_of(page.text), "next": "/"},
                       follow_redirects=False)


class SseReader:
    """A real event-stream client on a thread: collects (id, event, data, when) as they come.

    http.client over a plain socket, so leaving the ``with`` block shuts the socket down and
    the reading thread ends at once instead of waiting for the next keep-alive.
    """

    def __init__(self, url: str, headers: dict[str, str] | None = None) -> None:
        import threading

        self.url, self.headers = url, dict(headers or {})
        self.events: list[tuple[str | None, str, dict[str, Any], float]] = []
        self.opened = threading.Event()
        self.status: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._conn: Any = None

    def __enter__(self) -> SseReader:
        self._thread.start()
        assert self.opened.wait(10), f"the event stream {self.url} did not open"
        return self

    def __exit__(self, *exc: object) -> None:
        import socket

        self._stop.set()
        sock = getattr(self._conn, "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._thread.join(5)

    def _run(self) -> None:
        try:
            self._read()
        except Exception:
            if not self._stop.is_set():
                raise
        finally:
            self.opened.set()

    def _read(self) -> None:
        import http.client
        import json
        import time
        from urllib.parse import urlsplit

        parts = urlsplit(self.url)
        conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
        self._conn = conn
        conn.request("GET", f"{parts.path}?{parts.query}", headers=self.headers)
        response = conn.getresponse()
        self.status = response.status
        self.opened.set()
        fields: dict[str, str] = {}
        while not self._stop.is_set():
            raw = response.fp.readline()
            if not raw:
                return
            line = raw.decode().rstrip("\r\n")
            if line == "":
                if "event" in fields:
                    self.events.append((fields.get("id"), fields["event"],
                                        json.loads(fields.get("data", "null")),
                                        time.monotonic()))
                fields = {}
            elif not line.startswith(":") and ":" in line:
                key, _, value = line.partition(":")
                fields[key] = fields.get(key, "") + value.lstrip(" ")

    def posts(self) -> list[str]:
        """Summaries of the posts received, in order."""
        return [data["activity"]["summary"] for _, event, data, _ in self.events
                if event == "post"]
