"""Live: the web feed in a real daemon, a post published by another process reaches an
event-stream client within a second; a reconnect with Last-Event-ID misses nothing and
repeats nothing; on PostgreSQL the web process is woken by LISTEN/NOTIFY."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import insert

from floorstream.config import parse_mapping
from floorstream.model import Event, Post, utcnow
from floorstream.plugins import build_plugins
from floorstream.processing import Envelope
from floorstream.store import schema
from floorstream.store.store import CommitBatch, Store, _post_row
from floorstream.web.live import BUCKET, Hub
from floorstream.web.queries import FeedQueries
from support import DaemonRunner, wait_for

from .websupport import TOKEN, SseReader, web_mapping

PUBLISH = """
import sys, floorstream
with floorstream.open(sys.argv[1]) as stream:
    for summary in sys.argv[2:]:
        stream.publish(source="presses", subject="press-07", type="machine.state_changed",
                       summary=summary, key=summary)
"""


def publish_elsewhere(config: Path, *summaries: str) -> float:
    """Publish from another process on the same config; returns when the last post was
    committed."""
    subprocess.run([sys.executable, "-c", PUBLISH, str(config), *summaries], check=True,
                   timeout=60)
    return time.monotonic()


def run_live(store: str, tmp: Path, *, listening: bool) -> None:
    mapping = web_mapping(store, port=0)
    path = tmp / "floorstream.yaml"
    path.write_text(json.dumps(mapping), encoding="utf-8")  # JSON is YAML
    config = parse_mapping(mapping, build_plugins())
    with DaemonRunner(config) as runner:
        runner.start()
        assert runner.daemon is not None and runner.daemon.web is not None
        web = runner.daemon.web
        auth = {"authorization": f"Bearer {TOKEN}"}
        url = f"{web.url}/events?scope=team&team=maintenance"
        with SseReader(url, auth) as reader:
            assert reader.status == 200
            committed = publish_elsewhere(path, "press-07 in fault")
            wait_for(lambda: reader.posts() == ["press-07 in fault"], 10, "the live post")
            seen_at = reader.events[-1][3]
            # live, not on a reload: bench/web.py measures the < 1 s (p99 0.15–0.3 s with 100
            # streams); a hard 1 s bound here flaked at a load average of 10–20 on 2 cores
            assert seen_at - committed < 3.0, seen_at - committed
            last_id = reader.events[-1][0]
        assert web.app.state.web.hub.listening is listening
        # gone for a while: two posts and one for another team pass meanwhile
        stream = runner.daemon.stream()
        for source, summary in (("presses", "press-07 running again"),
                                ("orders", "PO 1 confirmed"), ("presses", "press-07 stopped")):
            stream.publish(source=source, subject="x", type="t", summary=summary, key=summary)
        with SseReader(url, {**auth, "last-event-id": str(last_id)}) as again:
            # the marker behind them: once it is in, whatever else came is in too
            stream.publish(source="presses", subject="x", type="t", summary="marker")
            wait_for(lambda: "marker" in again.posts(), 10, "the marker")
            assert again.posts() == ["press-07 running again", "press-07 stopped", "marker"]


def test_live_post_and_resume_on_sqlite(tmp_path: Path) -> None:
    run_live(f"sqlite:///{tmp_path}/fs.db", tmp_path, listening=False)


@pytest.mark.postgres
def test_live_post_and_resume_on_postgresql(pg_url: str, tmp_path: Path) -> None:
    run_live(pg_url, tmp_path, listening=True)


def test_anonymous_stream_is_refused(tmp_path: Path) -> None:
    config = parse_mapping(web_mapping(f"sqlite:///{tmp_path}/fs.db", port=0), build_plugins())
    with DaemonRunner(config) as runner:
        runner.start()
        assert runner.daemon is not None and runner.daemon.web is not None
        with SseReader(f"{runner.daemon.web.url}/events?scope=all") as reader:
            assert reader.status == 401


@pytest.mark.postgres
def test_a_post_committed_after_a_newer_one_still_goes_out(pg_url: str) -> None:
    """PostgreSQL draws a seq at insert, not at commit: a slow transaction's post can land
    below one already sent. The watcher looks for skipped seqs again, so it is not lost."""
    store = Store.open(pg_url)
    hub = Hub(FeedQueries(store), lambda kind, seq, post, ack: post.summary, poll_s=0.05)

    def post(summary: str) -> Post:
        return Post(id=summary.replace(" ", "-"), type="t", source="s", subject="x",
                    summary=summary, teams=("maintenance",), occurred_at=utcnow())

    async def scenario() -> list[str]:
        subscriber = hub.subscribe(lambda _post: True)
        slow = store.engine.connect()
        transaction = slow.begin()
        row = _post_row(post("slow post"))
        seq = slow.execute(insert(schema.posts).returning(schema.posts.c.seq), row).scalar_one()
        slow.execute(insert(schema.post_teams).values(
            team="maintenance", post_id=row["id"], post_seq=seq, severity=10,
            created_at=row["created_at"]))
        store.commit(CommitBatch(posts=[post("fast post")]))  # a higher seq, committed first
        got = await asyncio.wait_for(subscriber.next(), 10) or []
        transaction.commit()
        slow.close()
        got += await asyncio.wait_for(subscriber.next(), 10) or []
        return [item.text for item in got]

    try:
        assert asyncio.run(scenario()) == ["fast post", "slow post"]
    finally:
        hub.stop()
        store.close()


def run_burst(store: str) -> None:
    """500 posts in one commit (each of its own subject: flood control leaves them alone): the
    stream gets one ``more`` event (not 500 rendered posts), a post after the burst still comes
    live, a reconnect from before the burst gets one ``more`` too, and every post of the burst
    is reachable by loading the feed (the AS2 feed's pages: a reload's first page and "older
    posts")."""
    config = parse_mapping(web_mapping(store, port=0, poll_ms=50), build_plugins())
    with DaemonRunner(config) as runner:
        runner.start()
        assert runner.daemon is not None and runner.daemon.web is not None
        web, daemon = runner.daemon.web, runner.daemon
        auth = {"authorization": f"Bearer {TOKEN}"}
        with SseReader(f"{web.url}/events?scope=team&team=maintenance", auth) as reader:
            burst = [f"burst {n}" for n in range(500)]
            daemon.pipeline.run_now([Envelope("presses", event=Event.create(
                type="machine.state_changed", source="presses", subject=f"press-{summary}",
                position=summary, occurred_at=utcnow(), fields={"summary": summary}))
                for summary in burst])
            wait_for(lambda: any(e[1] == "more" for e in reader.events), 10, "the more event")
            # the sentinel behind the burst: once it is in, whatever the burst made is in
            daemon.stream().publish(source="presses", subject="press-07", type="t",
                                    summary="sentinel", key="sentinel")
            wait_for(lambda: "sentinel" in reader.posts(), 10, "the post after the burst")
            events = [(event, data) for _, event, data, _ in reader.events]
        # a reconnect from before the burst: its backlog is one more event, not 501 posts
        with SseReader(f"{web.url}/events?scope=team&team=maintenance",
                       {**auth, "last-event-id": "0"}) as again:
            daemon.stream().publish(source="presses", subject="press-07", type="t",
                                    summary="after the reconnect", key="after")
            wait_for(lambda: "after the reconnect" in again.posts(), 10, "the post after")
            assert [(event, data) for _, event, data, _ in again.events][:1] == [
                ("more", {"after": 0, "upto": 501, "posts": 501})]
            assert [event for _, event, _, _ in again.events] == ["more", "post"]
        mores = [data for event, data in events if event == "more"]
        posts = reader.posts()
        # bounded: one more event (a second only if the burst were split across rounds)
        # and never more than a bucket of rendered posts, instead of 500
        assert 1 <= len(mores) <= 2, events
        assert len(posts) <= BUCKET + 1, len(posts)
        assert sum(more["posts"] for more in mores) + len(posts) - 1 >= 500
        assert posts[-1] == "sentinel"
        # every post of the burst is reachable: the feed, newest first, page after page
        found: list[str] = []
        url: str | None = f"{web.url}/api/feed?team=maintenance&limit=200"
        while url is not None:
            request = urllib.request.Request(url, headers=auth)
            with urllib.request.urlopen(request, timeout=10) as response:
                page = json.load(response)
            found += [item["summary"] for item in page["orderedItems"]]
            url = page.get("next")
        assert sorted(found) == sorted([*burst, "sentinel", "after the reconnect"])


def test_a_burst_of_posts_sends_one_more_event_and_every_post_stays_reachable(
        tmp_path: Path) -> None:
    run_burst(f"sqlite:///{tmp_path}/fs.db")


@pytest.mark.postgres
def test_a_burst_of_posts_on_postgresql(pg_url: str) -> None:
    """The same with LISTEN/NOTIFY waking the watcher (rounds 50 ms apart)."""
    run_burst(pg_url)
