"""The login limit is the store's: two web apps on one store (as two `floorstream web`
processes behind a balancer would be, each with its own engine) count the same failures."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient

from floorstream.config import parse_mapping
from floorstream.plugins import build_plugins
from floorstream.store.store import Store
from floorstream.web import create_app
from floorstream.web.auth import LoginLimiter

from .websupport import login, web_mapping


def test_two_web_apps_on_one_store_share_the_login_limit(store_url: str) -> None:
    config = parse_mapping(web_mapping(store_url, login_attempts=4, login_window="10m"),
                           build_plugins())
    first, second = create_app(config), create_app(config)  # each opens its own store
    with TestClient(first) as one, TestClient(second) as two:
        for client in (one, two, one):
            answer = login(client, password="wrong")
            assert answer.status_code == 303 and "error=" in answer.headers["location"]
        with TestClient(second) as fresh:  # (a logged-in client's form is its session's)
            logged_in = login(fresh)  # the right password resets the count
            assert "error=" not in logged_in.headers["location"]
        for client in (two, one, two, one):
            assert "error=" in login(client, password="wrong").headers["location"]
        for client in (one, two):  # four failures over both: both refuse, the right
            limited = login(client)  # password too
            assert limited.status_code == 429
            assert 590 <= int(limited.headers["retry-after"]) <= 601
        carol = login(two, user="carol")  # another user is not held up
        assert carol.status_code == 303 and "error=" not in carol.headers["location"]


def test_the_limit_is_a_sliding_window(sqlite_url: str) -> None:
    store, second = Store.open(sqlite_url), Store.open(sqlite_url)  # two processes' engines
    try:
        limiter = LoginLimiter(store, attempts=2, window=1.0)
        other = LoginLimiter(second, attempts=2, window=1.0)
        limiter.failed("10.0.0.1", "Alice")
        assert limiter.retry_after("10.0.0.1", "alice") == 0.0
        time.sleep(0.5)
        other.failed("10.0.0.1", "alice")  # user names count case-insensitively
        wait = limiter.retry_after("10.0.0.1", "ALICE")
        assert 0.2 < wait <= 0.5
        assert limiter.retry_after("10.0.0.2", "alice") == 0.0  # per address
        time.sleep(wait + 0.05)  # the older failure left the window: one more may try
        assert other.retry_after("10.0.0.1", "alice") == 0.0
        other.failed("10.0.0.1", "alice")
        assert limiter.retry_after("10.0.0.1", "alice") > 0
        limiter.succeeded("10.0.0.1", "alice")
        assert other.retry_after("10.0.0.1", "alice") == 0.0
    finally:
        store.close()
        second.close()
