"""The live broadcast: a round's events are encoded and joined once per page-and-rights and the
same bytes go to every stream of it — and still every stream gets every post it should exactly
once, in order, and a reconnect with Last-Event-ID resumes without a gap or a repeat."""

from __future__ import annotations

import asyncio
from pathlib import Path

from floorstream.config import parse_mapping
from floorstream.model import Event, Post, utcnow
from floorstream.plugins import build_plugins
from floorstream.processing import Envelope
from floorstream.store.store import CommitBatch, Store
from floorstream.web.live import Hub, Subscriber, sse
from floorstream.web.queries import FeedQueries
from support import DaemonRunner, wait_for

from .websupport import TOKEN, SseReader, web_mapping


def _post(n: int, team: str) -> Post:
    return Post(id=f"post-{n:04d}", type="t", source="s", subject=f"x-{n}",
                summary=f"{team} {n}", teams=(team,), occurred_at=utcnow())


def test_streams_of_one_page_share_each_rounds_bytes_and_get_every_post_once(
        tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path}/fs.db")
    encoded: list[int] = []

    def encode(kind: str, seq: int, post: Post, ack: object) -> str:
        encoded.append(seq)
        return sse(seq, "post", post.summary)

    hub = Hub(FeedQueries(store), encode, poll_s=0.02)
    teams = ("maintenance", "purchasing")
    posts = [_post(n, teams[n % 3 == 0]) for n in range(60)]  # a third to purchasing

    async def scenario() -> tuple[dict[str, list[Subscriber]],
                                  dict[Subscriber, list[bytes]]]:
        groups = {
            "maintenance": [hub.subscribe(lambda p: "maintenance" in p.teams, "maintenance")
                            for _ in range(30)],
            "purchasing": [hub.subscribe(lambda p: "purchasing" in p.teams, "purchasing")
                           for _ in range(10)],
            # no key: asked one by one (a personal feed)
            "all": [hub.subscribe(lambda _p: True) for _ in range(5)],
        }
        got: dict[Subscriber, list[bytes]] = {s: [] for group in groups.values() for s in group}

        async def read(subscriber: Subscriber) -> None:
            while not got[subscriber] or b"sentinel" not in got[subscriber][-1]:
                found = await subscriber.next_round()
                assert found is not None
                items, data = found
                assert data == b"".join(item.data for item in items)
                got[subscriber].append(data)

        readers = [asyncio.create_task(read(s)) for s in got]
        for start in range(0, 60, 12):  # five commits, in several watcher rounds
            store.commit(CommitBatch(posts=posts[start:start + 12]))
            await asyncio.sleep(0.03)
        store.commit(CommitBatch(posts=[Post(id="sentinel", type="t", source="s",
                                             subject="x", summary="sentinel", teams=teams,
                                             occurred_at=utcnow())]))
        await asyncio.wait_for(asyncio.gather(*readers), 20)
        return groups, got

    try:
        groups, got = asyncio.run(scenario())
    finally:
        hub.stop()
        store.close()
    for name, group in groups.items():
        expected = [p.summary for p in posts if name == "all" or name in p.teams]
        for subscriber in group:
            text = b"".join(got[subscriber]).decode()
            summaries = [line[len("data: "):] for line in text.splitlines()
                         if line.startswith("data: ")]
            assert summaries == [*expected, "sentinel"], name  # each once, in order
        if name != "all":  # one page, one bytes object per round for all its streams
            first = got[group[0]]
            for subscriber in group[1:]:
                assert [id(data) for data in got[subscriber]] == [id(d) for d in first]
    assert len(encoded) == len(set(encoded)) == 61  # each event encoded once


def test_many_real_streams_get_every_post_once_and_resume_from_last_event_id(
        tmp_path: Path) -> None:
    config = parse_mapping(web_mapping(f"sqlite:///{tmp_path}/fs.db", port=0, poll_ms=50),
                           build_plugins())
    with DaemonRunner(config) as runner:
        runner.start()
        assert runner.daemon is not None and runner.daemon.web is not None
        daemon, web = runner.daemon, runner.daemon.web
        auth = {"authorization": f"Bearer {TOKEN}"}
        url = f"{web.url}/events?scope=team&team=maintenance"
        summaries = [f"press {n}" for n in range(40)]

        def publish(names: list[str]) -> None:
            daemon.pipeline.run_now([Envelope("presses", event=Event.create(
                type="machine.state_changed", source="presses", subject=f"press-{name}",
                position=name, occurred_at=utcnow(), fields={"summary": name}))
                for name in names])

        readers = [SseReader(url, auth) for _ in range(20)]
        for reader in readers:
            reader.__enter__()
        try:
            for start in range(0, 40, 10):  # four commits
                publish(summaries[start:start + 10])
            publish(["sentinel"])
            for reader in readers:
                wait_for(lambda r=reader: "sentinel" in r.posts(), 20, "the sentinel")
                assert reader.posts() == [*summaries, "sentinel"]  # each once, in order
            ids = [event_id for event_id, event, _, _ in readers[0].events if event == "post"]
        finally:
            for reader in readers:
                reader.__exit__(None, None, None)
        # gone after the 20th post: the rest comes from the store, then the live ones
        with SseReader(url, {**auth, "last-event-id": str(ids[19])}) as again:
            publish(["marker"])
            wait_for(lambda: "marker" in again.posts(), 20, "the marker")
            assert again.posts() == [*summaries[20:], "sentinel", "marker"]


def test_a_feed_sharing_its_process_sends_fewer_posts_one_by_one_to_many_streams(
        tmp_path: Path) -> None:
    """With a delivery budget (the daemon's own feed: posts one by one × streams a second),
    50 streams get a second's worth of posts one by one (1,000 / 50 = 20) and a ``more``
    for a commit of 30; without one (a web process of its own) the 30 posts come one by
    one."""

    def rounds(budget: float | None) -> list[list[tuple[str, int]]]:
        store = Store.open(f"sqlite:///{tmp_path}/fs-{budget}.db")
        hub = Hub(FeedQueries(store), lambda kind, seq, post, ack: sse(seq, kind, "x"),
                  poll_s=0.02, deliveries_per_s=budget)

        async def scenario() -> list[list[tuple[str, int]]]:
            streams = [hub.subscribe(lambda _p: True, "all") for _ in range(50)]
            found: list[list[tuple[str, int]]] = []
            for start, count in ((0, 10), (10, 30)):
                store.commit(CommitBatch(posts=[_post(n, "maintenance")
                                                for n in range(start, start + count)]))
                got: list[tuple[str, int]] = []
                while not got or got[-1][1] < start + count:  # up to the commit's last seq
                    found_round = await asyncio.wait_for(streams[0].next_round(), 10)
                    assert found_round is not None
                    got += [(item.kind, item.seq) for item in found_round[0]]
                found.append(got)
                await asyncio.sleep(1.1)  # the bucket fills again
            return found

        try:
            return asyncio.run(scenario())
        finally:
            hub.stop()
            store.close()

    limited = rounds(1000.0)
    assert limited[0] == [("post", n) for n in range(1, 11)]
    assert limited[1] == [("more", 40)]  # 30 > 20 a second: one more, no post rendered
    unlimited = rounds(None)
    assert unlimited[0] == [("post", n) for n in range(1, 11)]
    assert unlimited[1] == [("post", n) for n in range(11, 41)]


def test_many_streams_space_the_rounds_out_more_where_the_feed_shares_its_process(
        tmp_path: Path) -> None:
    """A round costs every stream a write: 200 streams space the rounds 80 ms apart in a
    web process of its own, 0.5 s where the feed shares its process (400 writes a second)."""
    store = Store.open(f"sqlite:///{tmp_path}/fs.db")
    alone = Hub(FeedQueries(store), lambda kind, seq, post, ack: "", poll_s=0.02)
    shared = Hub(FeedQueries(store), lambda kind, seq, post, ack: "", poll_s=0.02,
                 deliveries_per_s=5000.0, writes_per_s=400.0)

    async def scenario() -> list[tuple[float, float]]:
        found = [(alone.round_s(), shared.round_s())]
        for _ in range(200):
            alone.subscribe(lambda _p: True, "all")
            shared.subscribe(lambda _p: True, "all")
        found.append((alone.round_s(), shared.round_s()))
        found.append((alone.live_rate()[0], shared.live_rate()[0]))
        return found

    try:
        idle, busy, rates = asyncio.run(scenario())
    finally:
        alone.stop()
        shared.stop()
        store.close()
    assert idle == (0.05, 0.05)
    assert busy == (0.08, 0.5)
    assert rates == (200.0, 25.0)  # posts one by one a second: 5,000 / 200 streams
