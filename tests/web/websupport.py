"""Helpers of the web feed's tests: a config with people, a logged-in client."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

from floorstream.config import Config, parse_mapping
from floorstream.plugins import build_plugins
from floorstream.web.auth import hash_password

PASSWORD = "correct horse battery staple"
TOKEN = "tok-alice-0123456789abcdef"
TOKEN_BOB = "tok-bob-0123456789abcdef"


@cache
def password_hash() -> str:
    """argon2 is slow on purpose: hash once per test run."""
    return hash_password(PASSWORD)


def web_mapping(store: str, **web: Any) -> dict[str, Any]:
    """Teams maintenance, production, purchasing; alice reads all, bob only production."""
    return {
        "store": store,
        "default_team": "production",
        "teams": {"maintenance": {}, "production": {}, "purchasing": {}},
        "routes": [{"name": "presses", "match": {"source": "presses"},
                    "teams": ["maintenance"]},
                   {"name": "orders", "match": {"source": "orders"}, "teams": ["purchasing"]}],
        "web": {"people": {"alice": {"password_hash": password_hash(), "name": "Alice"},
                           "bob": {"password_hash": password_hash(), "name": "Bob",
                                   "teams": ["production"]}},
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
