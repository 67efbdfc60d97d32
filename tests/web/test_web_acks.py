"""Acknowledgements through the pipeline (design.md §9): a post in the acknowledged post's
thread, once per person, delivered to the post's teams' sinks only with web.deliver_acks."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from floorstream.api import Stream
from floorstream.config import parse_mapping
from floorstream.plugins import build_plugins
from floorstream.store import schema
from floorstream.web import create_app
from floorstream.web.queries import ACK_TYPE

from .websupport import TOKEN, TOKEN_BOB, csrf_of, login, web_mapping


def _stream(tmp_path: Path, deliver: bool) -> Stream:
    mapping = web_mapping(f"sqlite:///{tmp_path}/fs.db", deliver_acks=deliver)
    mapping["teams"]["maintenance"] = {"sinks": ["chat"]}
    mapping["sinks"] = [{"name": "chat", "type": "webhook", "url": "http://127.0.0.1:9/hook"}]
    return Stream(parse_mapping(mapping, build_plugins()), build_plugins())


def _outbox(stream: Stream, post_id: str) -> list[tuple[str, str]]:
    d = schema.deliveries
    with stream.store.engine.connect() as conn:
        return [(r.team, r.sink) for r in conn.execute(
            select(d.c.team, d.c.sink).where(d.c.post_id == post_id))]


@pytest.mark.parametrize("deliver", [False, True])
def test_an_ack_is_a_post_in_the_thread_once_per_person(tmp_path: Path, deliver: bool) -> None:
    with _stream(tmp_path, deliver) as stream:
        post = stream.publish(source="presses", subject="press-07", summary="press-07 in fault",
                              type="machine.state_changed", severity="critical", key="f")
        assert post is not None
        with TestClient(create_app(stream.config, stream=stream)) as client:
            login(client)
            token = csrf_of(client.get(f"/posts/{post.id}").text)
            for _ in range(2):  # a double click: one acknowledgement
                answer = client.post(f"/posts/{post.id}/ack", data={"csrf": token},
                                     follow_redirects=False)
                assert answer.status_code == 303
            api = [client.post(f"/api/posts/{post.id}/ack",
                               headers={"authorization": f"Bearer {t}"}).json()
                   for t in (TOKEN, TOKEN_BOB)]
            # bob may not read maintenance: his ack is refused, alice had hers already
            assert api[0]["created"] is False and api[0]["person"] == "alice"
            assert api[1] == {"detail": "no such post (or not one you may read)"}
            acks = [p for p in stream.store.replies(post.id) if p.type == ACK_TYPE]
            assert len(acks) == 1
            ack = acks[0]
            assert ack.summary == "Alice is on it: press-07 in fault"
            assert ack.thread == post.thread and ack.refers_to == post.id
            assert ack.teams == ("maintenance",) and ack.fields["actor"] == "alice"
            # delivered like a comment (to the post's teams' sinks) only when configured
            assert _outbox(stream, ack.id) == ([("maintenance", "chat")] if deliver else [])
            assert _outbox(stream, post.id) == [("maintenance", "chat")]
            # shown on the post and in its thread, as the post's acknowledgement and as an
            # event of the thread
            page = client.get(f"/posts/{post.id}").text
            assert "Alice on it" in page
            thread = client.get(f"/threads/{post.thread}").text
            assert "Alice on it" in thread and "Alice is on it: press-07 in fault" in thread
            body = client.get(f"/api/posts/{post.id}").json()
            assert [a["name"] for a in body["floorstream:acknowledged"]] == ["alice"]
            second = client.post(f"/api/posts/{post.id}/ack",
                                 headers={"authorization": f"Bearer {TOKEN}"}).json()
            assert second["at"] == api[0]["at"]  # when the ack was committed, kept


def test_an_ack_whose_row_a_crash_lost_is_still_shown(tmp_path: Path) -> None:
    """The ack post is the durable record: the pages read it when the row is missing."""
    with _stream(tmp_path, False) as stream:
        post = stream.publish(source="presses", subject="press-07", summary="press-07 stopped",
                              type="machine.state_changed", key="s")
        assert post is not None
        with TestClient(create_app(stream.config, stream=stream)) as client:
            created = client.post(f"/api/posts/{post.id}/ack",
                                  headers={"authorization": f"Bearer {TOKEN}"}).json()
            assert created["created"] is True
            with stream.store.engine.begin() as conn:
                conn.execute(schema.web_acks.delete())
            assert "Alice on it" in client.get(f"/posts/{post.id}",
                                               headers={"authorization": f"Bearer {TOKEN}"}).text
            again = client.post(f"/api/posts/{post.id}/ack",
                                headers={"authorization": f"Bearer {TOKEN}"}).json()
            assert again["created"] is False  # the row is back, nothing posted twice
            with stream.store.engine.connect() as conn:
                assert len(conn.execute(select(schema.web_acks)).all()) == 1
