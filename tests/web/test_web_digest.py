"""People's e-mail digests of what they follow, through the outbox to a real SMTP server:
the right posts (follows, read permissions), grouped by subject with permalinks, one mail a
period, none when nothing is new, none again after a restart or from a second daemon."""

from __future__ import annotations

import email
import email.policy
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from floorstream.api import Stream
from floorstream.config import Config, parse_mapping
from floorstream.delivery.personal import DIGEST_TYPE, PersonalDigests, digest_id
from floorstream.delivery.personal_schedule import Schedule
from floorstream.delivery.service import DeliveryService
from floorstream.model import DIGEST_SOURCE, Post, utcnow
from floorstream.plugins import build_plugins
from floorstream.store import schema
from floorstream.store.store import Store
from floorstream.web.queries import FeedQueries
from support import wait_for
from support.smtp import Inbox, local_smtp

from .websupport import web_mapping

T0 = datetime(2026, 12, 1, 8, 30, tzinfo=UTC)


@pytest.fixture
def smtp() -> Iterator[tuple[int, Inbox]]:
    with local_smtp() as server:
        yield server


def _config(url: str, port: int) -> Config:
    mapping = web_mapping(url, digest_sink="mail", base_url="http://feed.example")
    mapping["sinks"] = [{"name": "mail", "type": "email", "host": "127.0.0.1", "port": port,
                         "security": "none", "from": "floorstream@plant.example",
                         "to": ["shift-leads@plant.example"]}]
    people = mapping["web"]["people"]
    people["alice"].update(email="alice@plant.example", digest={"every": "hourly"})
    people["bob"].update(email="bob@plant.example",  # bob may read production only
                         digest={"every": "daily", "at": "07:00",
                                 "timezone": "Europe/Berlin"})
    people["carol"].update(email="carol@plant.example")  # no digest unless she asks
    return parse_mapping(mapping, build_plugins())


def _publish(stream: Stream, source: str, subject: str, summary: str,
             severity: str = "info") -> Post:
    post = stream.publish(source=source, subject=subject, type="machine.state_changed",
                          summary=summary, severity=severity, key=summary)
    assert post is not None
    return post


def _lines(message: email.message.EmailMessage) -> list[str]:
    text = next(part.get_content() for part in message.walk()  # type: ignore[attr-defined]
                if part.get_content_type() == "text/plain")
    return [line.rstrip() for line in text.splitlines()]


def test_a_digest_of_what_a_person_follows_once_by_e_mail(
        store_url: str, smtp: tuple[int, Inbox]) -> None:
    port, inbox = smtp
    config = _config(store_url, port)
    with Stream(config, build_plugins()) as stream:
        follows = FeedQueries(stream.store)
        follows.follow("alice", "subject", "press-07")
        follows.follow("alice", "team", "purchasing")
        follows.follow("bob", "subject", "press-07")
        follows.follow("bob", "source", "orders")  # purchasing's: not for bob
        digests = PersonalDigests(config, stream.store)
        assert digests.run_once(T0) == []  # the first period: from here on, nothing sent
        fault = _publish(stream, "presses", "press-07", "press-07 in fault", "critical")
        on_line = _publish(stream, "line", "press-07", "press-07 waiting for material")
        order = _publish(stream, "orders", "PO 4500012", "PO 4500012 confirmed", "notice")
        _publish(stream, "presses", "press-08", "press-08 stopped")  # nobody follows it
        assert fault.teams == ("maintenance",) and on_line.teams == ("production",)

        made = digests.run_once(T0 + timedelta(hours=1))  # 09:30: alice's hour is over
        assert made == [digest_id("alice", T0.replace(hour=9, minute=0))]
        # a restart (another process, another engine) in the same hour: nothing again
        again = Store.open(store_url)
        try:
            assert PersonalDigests(config, again).run_once(
                T0 + timedelta(hours=1, minutes=20)) == []
        finally:
            again.close()
        assert digests.run_once(T0 + timedelta(hours=2)) == []  # nothing new: no mail

        service = DeliveryService(config, build_plugins(), stream.store, poll=0.1)
        service.start()
        try:
            wait_for(lambda: inbox.to("alice@plant.example"), 20, "alice's digest")
            mail = inbox.to("alice@plant.example")[0]
            assert mail["Subject"].strip() == (
                "[critical] Digest for Alice: 3 posts on 2 subjects you follow since "
                "01 Dec 08:00 UTC")
            lines = _lines(mail)
            lines = lines[lines.index("press-07 (2)"):]  # (the summary comes first)
            link = "http://feed.example/posts/"
            assert lines[:6] == [  # by subject, the most severe first; times in UTC here
                "press-07 (2)",
                f"  • {fault.created_at:%H:%M} critical press-07 in fault  {link}{fault.id}",
                f"  • {on_line.created_at:%H:%M} info     press-07 waiting for material  "
                f"{link}{on_line.id}",
                "",
                "PO 4500012 (1)",
                f"  • {order.created_at:%H:%M} notice   PO 4500012 confirmed  {link}{order.id}"]
            assert "press-08" not in mail.as_string()

            # bob's daily digest (07:00 Berlin = 06:00 UTC), of what he may read only
            bob = digests.run_once(datetime(2026, 12, 2, 6, 0, 10, tzinfo=UTC))
            assert bob == [digest_id("bob", datetime(2026, 12, 2, 6, 0, tzinfo=UTC))]
            wait_for(lambda: inbox.to("bob@plant.example"), 20, "bob's digest")
            bob_lines = _lines(inbox.to("bob@plant.example")[0])
            assert [line for line in bob_lines if "•" in line] == [
                f"  • {on_line.created_at.astimezone(_berlin()):%H:%M} info     "
                f"press-07 waiting for material  {link}{on_line.id}"]

            # the sentinel: a new post alice follows, her next hour: exactly one more mail
            _publish(stream, "presses", "press-07", "press-07 running again")
            assert len(digests.run_once(datetime(2026, 12, 2, 7, 0, 30, tzinfo=UTC))) == 1
            wait_for(lambda: len(inbox.to("alice@plant.example")) == 2, 20, "the sentinel")
        finally:
            service.stop()
        assert [len(inbox.to(a)) for a in ("alice@plant.example", "bob@plant.example",
                                           "carol@plant.example")] == [2, 1, 0]
        assert "running again" in inbox.to("alice@plant.example")[1].as_string()
        assert inbox.messages[0]["X-Floorstream-Idempotency-Key"]
        # the digests are posts of their own (no team: not in anybody's feed) with the
        # outbox row of the digest sink in the person's lane
        d = schema.deliveries
        with stream.store.engine.connect() as conn:
            rows = conn.execute(select(d.c.team, d.c.sink, d.c.status).join(
                schema.posts, schema.posts.c.id == d.c.post_id).where(
                schema.posts.c.type == DIGEST_TYPE)).all()
        assert sorted(rows) == [("@alice", "mail", "delivered")] * 2 + [
            ("@bob", "mail", "delivered")]
        page = FeedQueries(stream.store).page(teams=None, readable=None)
        assert all(p.source != DIGEST_SOURCE for p in page.posts)
        _not_on_the_web(config, stream, made[0])


def _not_on_the_web(config: Config, stream: Stream, post_id: str) -> None:
    """A digest is its person's mail: not in a feed, not at its permalink or thread, not
    even for a reader of every team."""
    from fastapi.testclient import TestClient

    from floorstream.web import create_app

    from .websupport import TOKEN

    alice = {"authorization": f"Bearer {TOKEN}"}  # alice reads every team
    with TestClient(create_app(config, stream=stream)) as client:
        assert client.get(f"/api/posts/{post_id}", headers=alice).status_code == 404
        assert client.get(f"/posts/{post_id}", headers=alice).status_code == 404
        assert client.get("/api/threads/@digest:alice", headers=alice).json()[
            "totalItems"] == 0
        feed = client.get("/api/feed", headers=alice).json()
        assert post_id not in str(feed) and feed["orderedItems"]


def _berlin() -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo("Europe/Berlin")


def test_two_daemons_commit_one_digest(store_url: str) -> None:
    config = _config(store_url, 25)
    with Stream(config, build_plugins()) as stream:
        FeedQueries(stream.store).follow("alice", "subject", "press-07")
        PersonalDigests(config, stream.store).run_once(T0)
        _publish(stream, "presses", "press-07", "press-07 in fault")
        stores = [Store.open(store_url) for _ in range(4)]
        try:
            barrier = threading.Barrier(len(stores))
            made: list[list[str]] = []

            def daemon(store: Store) -> None:
                digests = PersonalDigests(config, store)
                barrier.wait()
                made.append(digests.run_once(T0 + timedelta(hours=1)))

            threads = [threading.Thread(target=daemon, args=(s,)) for s in stores]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(30)
        finally:
            for store in stores:
                store.close()
        assert sorted(len(m) for m in made) == [0, 0, 0, 1]
        with stream.store.engine.connect() as conn:
            assert conn.execute(select(schema.deliveries.c.post_id).where(
                schema.deliveries.c.team == "@alice")).scalars().all() == [
                digest_id("alice", T0.replace(hour=9, minute=0))]


def test_a_person_chooses_their_digest(sqlite_url: str) -> None:
    config = _config(sqlite_url, 25)
    store = Store.open(sqlite_url)
    try:
        digests = PersonalDigests(config, store)
        carol = digests.choice("carol")
        assert carol is not None and carol.schedule.off and not carol.chosen
        digests.choose("carol", Schedule.parse("daily", "06:30", "Europe/Berlin"))
        chosen = digests.choice("carol")
        assert chosen is not None and chosen.chosen
        assert chosen.schedule.describe() == "daily at 06:30 Europe/Berlin"
        digests.choose("alice", Schedule.parse("off"))
        alice = digests.choice("alice")
        assert alice is not None and alice.schedule.off and alice.chosen
        assert digests.choice("nobody") is None
        # a period's end: hourly on the hour, daily at the local time (before it: yesterday)
        hourly = Schedule.parse("hourly", zone="Asia/Kolkata")  # (+05:30)
        assert hourly.period_end(T0) == datetime(2026, 12, 1, 8, 30, tzinfo=UTC)
        daily = Schedule.parse("daily", "07:00", "Europe/Berlin")
        assert daily.period_end(T0) == datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
        assert daily.period_end(T0.replace(hour=5)) == datetime(2026, 11, 30, 6, 0,
                                                                tzinfo=UTC)
    finally:
        store.close()


def test_the_digest_on_the_page_and_through_the_api(sqlite_url: str) -> None:
    from fastapi.testclient import TestClient

    from floorstream.web import create_app

    from .websupport import TOKEN, TOKEN_BOB, csrf_of, login

    config = _config(sqlite_url, 25)
    with Stream(config, build_plugins()) as stream, TestClient(
            create_app(config, stream=stream)) as client:
        login(client, "carol")
        page = client.get("/me").text
        assert 'action="/me/digest"' in page and "now: no digest" in page
        answer = client.post("/me/digest", data={
            "csrf": csrf_of(page), "every": "daily", "at": "06:30",
            "timezone": "Europe/Berlin"}, follow_redirects=False)
        assert answer.status_code == 303
        assert "now: daily at 06:30 Europe/Berlin" in client.get("/me").text
        wrong = client.post("/me/digest", data={"csrf": csrf_of(page), "every": "weekly"})
        assert wrong.status_code == 422
        alice = {"authorization": f"Bearer {TOKEN}"}
        assert client.get("/api/me/digest", headers=alice).json() == {
            "every": "hourly", "at": "07:00", "timezone": "UTC", "chosen": False,
            "description": "every hour"}
        put = client.put("/api/me/digest", headers=alice, json={"every": "off"})
        assert put.status_code == 200 and put.json()["chosen"] is True
        assert PersonalDigests(config, stream.store).run_once(T0) == []
        # carol's choice made her row; her first period starts the count from there (bob's
        # too, from the config's; alice chose none)
        t = schema.web_digests
        with stream.store.engine.connect() as conn:
            rows = dict(conn.execute(select(t.c.person, t.c.last_end)).all())
        assert rows == {"carol": datetime(2026, 12, 1, 5, 30, tzinfo=UTC), "alice": None,
                        "bob": datetime(2026, 12, 1, 6, 0, tzinfo=UTC)}
        bad = client.put("/api/me/digest", headers=alice,
                         json={"every": "daily", "timezone": "Mars/Base"})
        assert bad.status_code == 422 and "Mars/Base" in bad.json()["detail"]
    # without a digest sink there is no digest to choose
    mapping = web_mapping(sqlite_url)
    with Stream(parse_mapping(mapping, build_plugins()), build_plugins()) as plain, TestClient(
            create_app(plain.config, stream=plain)) as client:
        gone = client.get("/api/me/digest", headers={"authorization": f"Bearer {TOKEN_BOB}"})
        assert gone.status_code == 409


def test_config_errors_of_digests() -> None:
    from floorstream.errors import ConfigError

    mapping = web_mapping("sqlite:///x.db", digest_sink="chat")
    mapping["sinks"] = [{"name": "chat", "type": "webhook", "url": "http://127.0.0.1:9/"}]
    mapping["web"]["people"]["alice"]["digest"] = {"every": "hourly"}
    with pytest.raises(ConfigError) as found:
        parse_mapping(mapping, build_plugins())
    text = str(found.value)
    assert "web.digest_sink" in text and "not an email sink" in text
    assert "web.people.alice.digest" in text and "needs the person's email" in text


def test_the_daemon_runs_the_digests_and_reports_them(sqlite_url: str,
                                                       smtp: tuple[int, Inbox]) -> None:
    """A daemon with web.digest_sink runs the DigestService next to its delivery: the
    digest reaches SMTP through the daemon's own workers, and /healthz tells of it."""
    from support import DaemonRunner

    port, inbox = smtp
    config = _config(sqlite_url, port)
    with DaemonRunner(config) as runner:
        runner.start()
        daemon = runner.daemon
        assert daemon is not None and daemon.digests is not None
        service = daemon.digests
        # (it looked once at start, by the wall clock: alice's count starts this hour)
        wait_for(lambda: service.digests.last_run is not None, 10, "the first look")
        service.stop()  # from here the test's clock, an hour ahead, looking every 50 ms
        later = utcnow() + timedelta(hours=1)
        service.clock, service.tick = (lambda: later), 0.05
        FeedQueries(daemon.store).follow("alice", "thread", "press-07")
        _publish(daemon.stream(), "presses", "press-07", "press-07 in fault", "critical")
        service.start()
        wait_for(lambda: inbox.to("alice@plant.example"), 20, "the digest by the daemon")
        report = daemon.health()
        assert report["digests"]["sent"] == 1 and report["digests"]["last_error"] is None
        wait_for(lambda: daemon.health()["sinks"]["mail"]["delivered"] >= 1, 10,
                 "the mail sink's count")
    assert len(inbox.to("alice@plant.example")) == 1
