"""Apprise against a real HTTP target, Mattermost API threading, and team policies end to end:
an e-mail digest on aiosmtpd, quiet hours holding posts and releasing them as one message."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from floorstream.delivery.outbox import Outbox
from floorstream.delivery.service import DeliveryService
from floorstream.model import Severity
from floorstream.store import schema
from floorstream.store.store import Store
from support import http_receiver, wait_for
from support.smtp import Inbox, local_smtp

from .helpers import commit, config, make_post

d = schema.deliveries


def _run(store_url: str, yaml: str, env: dict[str, str] | None = None) -> tuple[
        DeliveryService, Store, Outbox]:
    cfg, plugins = config(yaml, env)
    store = Store.open(store_url)
    return DeliveryService(cfg, plugins, store, poll=0.02), store, Outbox(store.engine)


def _release_held(store: Store) -> None:
    """The digest / quiet-hours release time has come: move it into the past."""
    with store.engine.begin() as conn:
        conn.execute(update(d).where(d.c.status == "held").values(
            next_attempt_at=datetime.now(UTC) - timedelta(seconds=1)))


def _held_until(store: Store) -> set[datetime]:
    with store.engine.connect() as conn:
        return set(conn.execute(select(d.c.next_attempt_at).where(d.c.status == "held"))
                   .scalars())


def test_apprise_json_target_gets_every_post_once_after_an_outage(sqlite_url: str) -> None:
    pytest.importorskip("apprise")  # a dev dependency: `make test` installs it
    secret = "ntfy-like-token-8c1d2e"
    with http_receiver() as rec:
        url = rec.url
        rec.status = 500  # the target is down at first
        port = url.rsplit(":", 1)[1]
        service, store, outbox = _run(sqlite_url, f"""
store: {sqlite_url}
teams: {{maintenance: {{sinks: [phones]}}}}
sinks:
  - name: phones
    type: apprise
    urls: ["${{APPRISE_URL}}"]
    retry: {{initial: 10ms, max_delay: 30ms, jitter: 5ms}}
""", {"APPRISE_URL": f"json://127.0.0.1:{port}/notify/{secret}"})
        posts = [make_post(1, "maintenance", severity=Severity.CRITICAL),
                 make_post(2, "maintenance", severity=Severity.WARNING),
                 make_post(3, "maintenance", severity=Severity.INFO)]
        commit(store, posts, {"maintenance": ["phones"]})
        service.start()
        try:
            wait_for(lambda: rec.refused >= 2, what="failed attempts while down")
            errors = [r.last_error or "" for r in outbox.rows()]
            rec.status = 200
            wait_for(lambda: outbox.counts() == {"delivered": 3}, what="all notified")
        finally:
            service.stop()
            store.close()
    assert any("apprise could not notify" in e for e in errors)
    assert not any(secret in e for e in errors)
    accepted = [r.json for r in rec.ok()]
    assert [a["title"] for a in accepted] == [p.summary for p in posts]  # once each, in order
    assert [a["type"] for a in accepted] == ["failure", "warning", "info"]
    assert "critical · press-07 · test" in accepted[0]["message"]
    assert all(r.path == f"/notify/{secret}" for r in rec.requests)


def test_mattermost_api_threads_the_clearing_post_with_root_id(sqlite_url: str) -> None:
    with http_receiver() as rec:
        url = rec.url
        counter = iter(range(1, 100))
        rec.reply = lambda r: (201, {}, json.dumps(
            {"id": f"mmpost{next(counter):020d}", "channel_id": "chan42"}).encode())
        service, store, outbox = _run(sqlite_url, f"""
store: {sqlite_url}
teams: {{maintenance: {{sinks: [mm]}}}}
sinks:
  - {{name: mm, type: webhook, format: mattermost, url: "{url}/api/v4/posts",
     token: "${{MM_TOKEN}}", channel: chan42}}
""", {"MM_TOKEN": "mm-access-token-1"})
        alarm = make_post(1, "maintenance", severity=Severity.CRITICAL)
        other = make_post(2, "maintenance", subject="press-09")
        clear = make_post(3, "maintenance", clears=alarm.id)
        commit(store, [alarm, other], {"maintenance": ["mm"]})
        commit(store, [clear], {"maintenance": ["mm"]})
        service.start()
        try:
            wait_for(lambda: outbox.counts() == {"delivered": 3}, what="all posted")
        finally:
            service.stop()
            store.close()
    first, second, third = (r.json for r in rec.requests)
    assert rec.requests[0].path == "/api/v4/posts"
    assert rec.requests[0].headers["authorization"] == "Bearer mm-access-token-1"
    assert first["channel_id"] == "chan42" and "root_id" not in first
    assert "root_id" not in second  # not a clearing post
    assert third["root_id"] == f"mmpost{1:020d}"  # the alarm's post id, stored as remote_ref
    assert third["props"]["floorstream_post"] == clear.id


@pytest.fixture
def smtp() -> Iterator[tuple[int, Inbox]]:
    with local_smtp() as server:
        yield server


def test_email_digest_one_mail_for_the_held_posts(sqlite_url: str,
                                                   smtp: tuple[int, Inbox]) -> None:
    port, inbox = smtp
    service, store, outbox = _run(sqlite_url, f"""
store: {sqlite_url}
teams: {{maintenance: {{sinks: [mail], immediate: critical, digest: "06:00,14:00,22:00"}}}}
sinks:
  - {{name: mail, type: email, host: 127.0.0.1, port: {port}, security: none,
     from: floorstream@plant.example, to: [shift-leads@plant.example]}}
""")
    held = [make_post(n, "maintenance", severity=Severity.INFO if n % 2 else Severity.WARNING)
            for n in range(4)]
    alarm = make_post(9, "maintenance", severity=Severity.CRITICAL)
    commit(store, [*held, alarm], {"maintenance": ["mail"]})
    service.start()
    try:
        wait_for(lambda: outbox.counts() == {"held": 4, "delivered": 1}, what="triage")
        assert [m["Subject"] for m in inbox.messages] == ["[critical] maintenance post 9"]
        (release,) = _held_until(store)  # one window: one release time for all four
        assert release.strftime("%H:%M") in ("06:00", "14:00", "22:00")
        _release_held(store)
        service.wake()
        wait_for(lambda: outbox.counts() == {"delivered": 5}, what="the digest mail")
    finally:
        service.stop()
        store.close()
    assert len(inbox.messages) == 2
    digest = inbox.messages[1]
    # (a long Subject is folded right after "Subject:"; unfolding leaves the space)
    assert digest["Subject"].strip() == ("[warning] Digest for maintenance: 4 posts "
                                 "(2 warning, 2 info) since 08:00 UTC")
    text, html = (part.get_content() for part in digest.walk()  # type: ignore[attr-defined]
                  if part.get_content_type() in ("text/plain", "text/html"))
    assert [line for line in text.splitlines() if line.startswith("•")] == [
        f"• 08:00 maintenance post {n}" for n in range(4)]
    assert html.count("<tr><td>") == 4 and "maintenance post 3" in html
    assert len(digest["X-Floorstream-Idempotency-Key"]) == 32


def _quiet_window(now: datetime) -> str:
    """Quiet hours from an hour ago to an hour from now (they may cross midnight)."""
    start, end = now - timedelta(hours=1), now + timedelta(hours=1)
    return f"{start:%H:%M}-{end:%H:%M}"


def test_quiet_hours_hold_non_immediate_posts_then_release_them(sqlite_url: str) -> None:
    now = datetime.now(UTC)
    with http_receiver() as rec:
        url = rec.url
        service, store, outbox = _run(sqlite_url, f"""
store: {sqlite_url}
teams:
  night: {{sinks: [chat], immediate: critical, quiet_hours: "{_quiet_window(now)}"}}
  day: {{sinks: [chat], immediate: critical}}
sinks:
  - {{name: chat, type: webhook, url: "{url}/hook"}}
""")
        quiet = [make_post(n, "night", severity=Severity.WARNING) for n in range(3)]
        alarm = make_post(5, "night", severity=Severity.CRITICAL)
        day = make_post(6, "day", severity=Severity.WARNING)  # no quiet hours: at once
        commit(store, [*quiet, alarm, day], {"night": ["chat"], "day": ["chat"]})
        service.start()
        try:
            wait_for(lambda: outbox.counts() == {"held": 3, "delivered": 2}, what="triage")
            assert sorted(r.json["summary"] for r in rec.requests) == [
                "day post 6", "night post 5"]
            (release,) = _held_until(store)
            end = (now + timedelta(hours=1)).replace(second=0, microsecond=0)
            assert release == end  # when the quiet hours end, not a minute earlier
            _release_held(store)
            service.wake()
            wait_for(lambda: outbox.counts() == {"delivered": 5}, what="the release")
        finally:
            service.stop()
            store.close()
    assert len(rec.requests) == 3  # the three held posts came as one message
    morning = rec.requests[2].json
    assert morning["summary"].startswith("Digest for night: 3 posts (3 warning)")
    assert [i["summary"] for i in morning["object"]["items"]] == [p.summary for p in quiet]
