"""The outbox drained into a real local HTTP server: outages, 429, give-up, order, once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from floorstream.delivery.outbox import Outbox
from floorstream.delivery.service import DeliveryService
from floorstream.store.store import Store
from support import HttpReceiver, http_receiver, wait_for

from .helpers import commit, config, make_post

CONFIG = """
store: {store}
teams:
  maintenance: {{sinks: [chat]}}
  quality: {{sinks: [chat]}}
sinks:
  - name: chat
    type: webhook
    url: ${{CHAT_URL}}
    workers: 2
    retry: {{initial: 10ms, max_delay: 40ms, jitter: 5ms, max_attempts: {attempts}}}
"""


@pytest.fixture
def server() -> Iterator[HttpReceiver]:
    with http_receiver() as found:
        yield found


def _service(store_url: str, url: str, attempts: int = 1000) -> tuple[DeliveryService, Store]:
    cfg, plugins = config(CONFIG.format(store=store_url, attempts=attempts),
                          {"CHAT_URL": url + "/hook"})
    store = Store.open(store_url)
    return DeliveryService(cfg, plugins, store, poll=0.05), store


def test_sink_down_then_back_delivers_every_post_once_in_order(
        store_url: str, server: HttpReceiver) -> None:
    rec = server
    url = rec.url
    rec.status = 500
    service, store = _service(store_url, url)
    outbox = Outbox(store.engine)
    posts = [make_post(n, team) for n in range(15) for team in ("maintenance", "quality")]
    for start in range(0, len(posts), 6):
        commit(store, posts[start:start + 6], {"maintenance": ["chat"], "quality": ["chat"]})
    service.start()
    try:
        wait_for(lambda: rec.refused >= 8, what="failing attempts")
        # the sink stays down a while longer: more attempts fail (backoff capped at 40 ms)
        seen = rec.refused
        wait_for(lambda: rec.refused >= seen + 6, what="more failing attempts")
        rec.status = 200
        wait_for(lambda: outbox.counts() == {"delivered": len(posts)}, what="all delivered")
    finally:
        service.stop()
        store.close()
    accepted = rec.ok()
    ids = [r.json["id"].rsplit(":", 1)[1] for r in accepted]
    assert sorted(ids) == sorted(p.id for p in posts)  # every post, exactly once
    for team in ("maintenance", "quality"):
        got = [i for r, i in zip(accepted, ids, strict=True) if r.json["floorstream:team"] == team]
        assert got == [p.id for p in posts if p.teams == (team,)]  # in commit order
    # a retried delivery carries the key of its first attempt
    keys: dict[str, set[str]] = {}
    for request in rec.requests:
        keys.setdefault(request.json["id"], set()).add(request.headers["idempotency-key"])
    assert all(len(k) == 1 for k in keys.values())
    assert len({next(iter(k)) for k in keys.values()}) == len(posts)


def test_retry_after_on_429_is_honoured(sqlite_url: str, server: HttpReceiver) -> None:
    rec = server
    url = rec.url
    rec.status, rec.retry_after = 429, "1"
    service, store = _service(sqlite_url, url)
    commit(store, [make_post(1, "maintenance")], {"maintenance": ["chat"]})
    service.start()
    try:
        wait_for(lambda: rec.refused >= 1, what="the 429")
        rec.status, rec.retry_after = 200, None
        wait_for(lambda: len(rec.ok()) == 1, timeout=5, what="delivery after Retry-After")
    finally:
        service.stop()
        store.close()
    first, second = rec.requests[0], rec.requests[1]
    assert len(rec.requests) == 2  # no retries in between, despite the 10 ms backoff
    assert second.at - first.at >= 0.9


def test_gives_up_after_max_attempts_and_permanent_errors_fail_at_once(
        sqlite_url: str, server: HttpReceiver) -> None:
    rec = server
    url = rec.url
    answers = {"maintenance": 500, "quality": 404}
    rec.reply = lambda r: (answers[r.json["floorstream:team"]], {}, b'{"error": "nope"}')
    service, store = _service(sqlite_url, url, attempts=3)
    outbox = Outbox(store.engine)
    commit(store, [make_post(1, "maintenance"), make_post(2, "quality")],
           {"maintenance": ["chat"], "quality": ["chat"]})
    service.start()
    try:
        wait_for(lambda: outbox.counts() == {"failed": 2}, what="both failed")
    finally:
        service.stop()
    rows = {r.team: r for r in outbox.rows(status="failed")}
    store.close()
    assert rows["maintenance"].attempts == 3
    assert "HTTP 500" in (rows["maintenance"].last_error or "")
    assert "after 3 attempts" in (rows["maintenance"].last_error or "")
    assert rows["quality"].attempts == 1
    assert "HTTP 404" in (rows["quality"].last_error or "")
    assert "permanent" in (rows["quality"].last_error or "")
    by_team = [r.json["floorstream:team"] for r in rec.requests]
    assert by_team.count("maintenance") == 3 and by_team.count("quality") == 1
