"""The web feed in process (Starlette's TestClient on a SQLite store): pages, filters,
permissions, CSRF, login limits, the JSON/Atom API, comments through the pipeline."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from floorstream.api import Stream
from floorstream.model import Event, Post, Severity, utcnow
from floorstream.plugins import build_plugins
from floorstream.processing import Envelope
from floorstream.web import create_app
from floorstream.web.actions import mentions

from .websupport import PASSWORD, TOKEN, TOKEN_BOB, csrf_of, login, web_config


@pytest.fixture
def stream(tmp_path: Path) -> Iterator[Stream]:
    config = web_config(tmp_path, base_url="http://feed.example")
    with Stream(config, build_plugins()) as opened:
        yield opened


@pytest.fixture
def app(stream: Stream) -> FastAPI:
    return create_app(stream.config, stream=stream)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


def publish(stream: Stream, source: str, subject: str, summary: str, *,
            severity: str = "info", type: str = "machine.state_changed") -> Post:
    post = stream.publish(source=source, subject=subject, type=type, summary=summary,
                          severity=severity, key=summary)
    assert post is not None
    return post


def test_login_feed_and_html_shown_as_text(stream: Stream, client: TestClient) -> None:
    post = publish(stream, "presses", "press-07", "press-07 in fault <script>alert(1)</script>",
                   severity="critical")
    assert client.get("/", headers={"accept": "text/html"},
                      follow_redirects=False).headers["location"].startswith("/login")
    answer = login(client)
    assert answer.status_code == 303
    cookie = answer.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    page = client.get("/teams/maintenance")
    assert page.status_code == 200
    assert "press-07 in fault &lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "<script>alert" not in page.text
    assert f'id="post-{post.id}"' in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]


def test_wrong_password_then_rate_limited(client: TestClient) -> None:
    for _ in range(5):
        answer = login(client, password="wrong")
        assert answer.status_code == 303 and "error=" in answer.headers["location"]
    limited = login(client)  # even the right password waits now
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0
    assert login(client, user="bob").status_code == 303  # another user is not held up


def test_every_state_changing_route_refuses_a_missing_csrf_token(
        stream: Stream, app: FastAPI, client: TestClient) -> None:
    post = publish(stream, "presses", "press-07", "press-07 stopped")
    login(client)
    page = client.get("/")
    token = csrf_of(page.text)
    forms = {f"/posts/{post.id}/ack": {}, f"/posts/{post.id}/comment": {"text": "hi"},
             "/follow": {"kind": "subject", "value": "press-07"}, "/logout": {},
             "/me/digest": {"every": "daily"}}
    for path, data in forms.items():
        refused = client.post(path, data=data, follow_redirects=False)
        assert refused.status_code == 403, path
        wrong = client.post(path, data={**data, "csrf": token[::-1]}, follow_redirects=False)
        assert wrong.status_code == 403, path
    refused = client.post(f"/api/posts/{post.id}/ack")  # the JSON API with the cookie too
    assert refused.status_code == 403
    assert client.put("/api/me/digest", json={"every": "daily"}).status_code == 403
    assert client.post("/login", data={"user": "alice", "password": "x"}).status_code == 403
    # every route of the app that changes state is one of those above
    changing = {(m, getattr(r, "path", "")) for r in _routes(app.routes)
                for m in getattr(r, "methods", None) or () if m not in ("GET", "HEAD")}
    assert changing == {("POST", "/posts/{post_id}/ack"), ("POST", "/posts/{post_id}/comment"),
                        ("POST", "/follow"), ("POST", "/login"), ("POST", "/logout"),
                        ("POST", "/api/posts/{post_id}/ack"),
                        ("POST", "/api/posts/{post_id}/comments"), ("POST", "/api/follows"),
                        ("DELETE", "/api/follows"), ("POST", "/me/digest"),
                        ("PUT", "/api/me/digest")}
    assert stream.store.replies(post.id) == []  # nothing was commented
    assert client.get(f"/api/posts/{post.id}").json().get("floorstream:acknowledged") is None


def _routes(routes: list[Any]) -> Iterator[Any]:
    """Every route, those of included routers too (FastAPI keeps those apart)."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from _routes(inner.routes)
        else:
            yield route


def test_team_permissions(stream: Stream, client: TestClient) -> None:
    secret = publish(stream, "presses", "press-07", "press-07 spindle 90 °C")
    mine = publish(stream, "line", "line-1", "line-1 running")  # default team: production
    login(client, "bob")
    assert client.get("/teams/maintenance").status_code == 403
    assert client.get(f"/posts/{secret.id}").status_code == 404
    everything = client.get("/").text
    assert mine.summary in everything and secret.summary not in everything
    api = client.get("/api/feed", headers={"authorization": f"Bearer {TOKEN_BOB}"}).json()
    assert [a["summary"] for a in api["orderedItems"]] == [mine.summary]


def test_filters(stream: Stream, client: TestClient) -> None:
    publish(stream, "presses", "press-07", "press-07 in fault", severity="critical")
    publish(stream, "presses", "press-08", "press-08 stopped", severity="warning")
    publish(stream, "presses", "press-08", "press-08 spindle temperature high",
            severity="notice", type="metric.limit_exceeded")
    login(client)

    def shown(query: str) -> list[str]:
        items = client.get(f"/api/feed?{query}").json()["orderedItems"]
        return [a["summary"] for a in items]

    assert shown("severity=warning") == ["press-08 stopped", "press-07 in fault"]
    assert shown("subject=press-08&team=maintenance") == [
        "press-08 spindle temperature high", "press-08 stopped"]
    assert shown("type=metric.*") == ["press-08 spindle temperature high"]
    assert shown("q=FAULT") == ["press-07 in fault"]
    assert shown("source=orders") == []
    assert shown("since=2000-01-01T00:00:00Z&until=2001-01-01T00:00:00Z") == []
    assert client.get("/api/feed?severity=loud").status_code == 422
    page = client.get("/teams/maintenance?severity=critical").text
    assert "press-07 in fault" in page and "press-08 stopped" not in page


def test_cursor_paging_neither_skips_nor_repeats(stream: Stream, client: TestClient) -> None:
    for n in range(7):
        publish(stream, "presses", f"press-{n}", f"post {n}")
    seen: list[str] = []
    url: str | None = "/api/feed?team=maintenance&limit=3"
    while url:
        page = client.get(url, headers={"authorization": f"Bearer {TOKEN}"})
        body = page.json()
        assert body["type"] == "OrderedCollectionPage"
        seen += [a["summary"] for a in body["orderedItems"]]
        if len(seen) == 3:
            publish(stream, "presses", "press-new", "newer than the cursor")
        url = body.get("next", "").replace("http://feed.example", "") or None
    assert seen == [f"post {n}" for n in range(6, -1, -1)]


def test_comment_goes_through_the_pipeline_to_the_teams_and_mentions(
        stream: Stream, client: TestClient) -> None:
    post = publish(stream, "presses", "press-07", "press-07 in fault", severity="critical")
    login(client)
    token = csrf_of(client.get(f"/posts/{post.id}").text)
    form = {"csrf": token, "text": "on my way, @purchasing order a spare <b>belt</b>",
            "key": "k1"}
    answer = client.post(f"/posts/{post.id}/comment", data=form, follow_redirects=False)
    assert answer.status_code == 303
    again = client.post(f"/posts/{post.id}/comment", data=form, follow_redirects=False)
    assert again.headers["location"] == answer.headers["location"]  # a double submit
    replies = stream.store.replies(post.id)
    assert len(replies) == 1
    reply = replies[0]
    assert reply.teams == ("maintenance", "purchasing")
    assert [r["rule"] for r in reply.routing] == ["comment on a post of maintenance",
                                                  "mentioned as @purchasing"]
    assert reply.thread == post.thread and reply.fields["actor"] == "alice"
    assert reply.links["permalink"] == f"http://feed.example/posts/{reply.id}"
    thread = client.get(answer.headers["location"]).text
    assert "Alice: on my way, @purchasing order a spare &lt;b&gt;belt&lt;/b&gt;" in thread
    activity = client.get(f"/api/posts/{reply.id}").json()
    assert activity["actor"] == {"type": "Person", "id": "urn:floorstream:person:alice",
                                 "name": "Alice"}
    assert activity["inReplyTo"] == f"urn:floorstream:post:{post.id}"
    api = client.post(f"/api/posts/{post.id}/comments", json={"text": "fixed"},
                      headers={"authorization": f"Bearer {TOKEN}"})
    assert api.status_code == 201 and api.json()["type"] == "Create"
    assert mentions("@maintenance, @nobody and a@purchasing", ["maintenance", "purchasing"]) \
        == ["maintenance"]


def test_ack_follow_and_personal_feed(stream: Stream, client: TestClient) -> None:
    post = publish(stream, "presses", "press-07", "press-07 in fault")
    other = publish(stream, "presses", "press-08", "press-08 stopped")
    login(client)
    token = csrf_of(client.get("/").text)
    client.post(f"/posts/{post.id}/ack", data={"csrf": token})
    client.post(f"/posts/{post.id}/ack", data={"csrf": token})  # once per person
    client.post("/follow", data={"csrf": token, "kind": "subject", "value": "press-07"})
    body = client.get(f"/api/posts/{post.id}", headers={"authorization": f"Bearer {TOKEN}"})
    acks = body.json()["floorstream:acknowledged"]
    assert [a["name"] for a in acks] == ["alice"]
    assert "Alice on it" in client.get(f"/posts/{post.id}").text
    mine = client.get("/me").text
    assert post.summary in mine and other.summary not in mine
    follows = client.get("/api/follows", headers={"authorization": f"Bearer {TOKEN}"}).json()
    assert [(f["kind"], f["value"]) for f in follows] == [("subject", "press-07")]


def test_permalink_explains_routing_and_shows_deliveries(stream: Stream,
                                                         client: TestClient) -> None:
    post = publish(stream, "presses", "press-07", "press-07 in fault")
    login(client)
    page = client.get(f"/posts/{post.id}").text
    assert "Why did I get this?" in page and "presses" in page
    assert "no sinks: this post lives in the feed only" in page
    body = client.get(f"/api/posts/{post.id}").json()
    assert body["floorstream:routing"] == [{"team": "maintenance", "rule": "presses"}]
    assert [v["matched"] for v in body["floorstream:explain"]] == [True, False]


def test_thread_nests_replies_and_shows_retractions(stream: Stream,
                                                    client: TestClient) -> None:
    now = utcnow()
    first = Event.create(type="asn.received", source="orders", subject="PO 4500012",
                         position="1", occurred_at=now, thread="PO 4500012",
                         fields={"summary": "ASN 77 for PO 4500012: 200 pcs"})
    undo = Event.create(type="asn.cancelled", source="orders", subject="PO 4500012",
                        position="2", occurred_at=now, thread="PO 4500012",
                        relation="retraction", refers_to=first.id,
                        fields={"summary": "ASN 77 cancelled"}, severity=Severity.WARNING)
    stream.pipeline.run_now([Envelope("orders", event=first), Envelope("orders", event=undo)])
    login(client)
    page = client.get("/threads/PO%204500012").text
    assert page.index(f'id="post-{first.id}"') < page.index('class="replies"') \
        < page.index(f'id="post-{undo.id}"')
    assert "retracted" in page and "rel-retraction" in page


def test_a_thread_whose_name_holds_slashes(stream: Stream, client: TestClient) -> None:
    post = stream.publish(source="odoo", subject="WH/MO/00042", type="record.field_changed",
                          summary="WH/MO/00042: status Confirmed → In progress", key="1")
    assert post is not None
    login(client)
    feed = client.get("/").text
    assert 'href="/threads/WH%2FMO%2F00042"' in feed
    assert post.summary in client.get("/threads/WH%2FMO%2F00042").text
    items = client.get("/api/threads/WH%2FMO%2F00042").json()["orderedItems"]
    assert [a["summary"] for a in items] == [post.summary]


def test_public_kiosk_and_atom(tmp_path: Path) -> None:
    config = web_config(tmp_path, public_teams=["production"])
    with Stream(config, build_plugins()) as opened, \
            TestClient(create_app(config, stream=opened)) as client:
        publish(opened, "line", "line-1", "line-1 running <again>")
        kiosk = client.get("/kiosk/production")  # TestClient's address is not a private one
        assert kiosk.status_code in (401, 403)
    with Stream(config, build_plugins()) as opened, \
            TestClient(create_app(config, stream=opened), client=("10.1.2.3", 5000)) as client:
        kiosk = client.get("/kiosk/production")
        assert kiosk.status_code == 200 and "line-1 running &lt;again&gt;" in kiosk.text
        assert client.get("/teams/maintenance", headers={"accept": "text/html"},
                          follow_redirects=False).status_code == 303  # to the login
        atom = client.get("/teams/production/atom.xml")
        assert atom.headers["content-type"].startswith("application/atom+xml")
        entries = ElementTree.fromstring(atom.content).findall(
            "{http://www.w3.org/2005/Atom}entry")
        assert [e.findtext("{http://www.w3.org/2005/Atom}title") for e in entries] == [
            "[info] line-1 running <again>"]


def test_proxy_header_single_sign_on(tmp_path: Path) -> None:
    config = web_config(tmp_path, proxy_header="X-Forwarded-User",
                        trusted_proxies=["10.0.0.1/32"])
    with Stream(config, build_plugins()) as opened:
        post = publish(opened, "line", "line-1", "line-1 running")
        with TestClient(create_app(config, stream=opened), client=("10.0.0.1", 1)) as proxy:
            page = proxy.get("/", headers={"x-forwarded-user": "bob"})
            assert page.status_code == 200 and "Bob" in page.text
            token = csrf_of(page.text)
            assert proxy.post(f"/posts/{post.id}/ack", headers={"x-forwarded-user": "bob"},
                              data={}).status_code == 403
            acked = proxy.post(f"/posts/{post.id}/ack", headers={"x-forwarded-user": "bob"},
                               data={"csrf": token}, follow_redirects=False)
            assert acked.status_code == 303
            assert proxy.get("/", headers={"x-forwarded-user": "mallory"}).status_code == 403
        with TestClient(create_app(config, stream=opened), client=("10.9.9.9", 1)) as other:
            # not from the trusted proxy: the header means nothing
            assert other.get("/", headers={"x-forwarded-user": "bob", "accept": "text/html"},
                             follow_redirects=False).status_code == 303


def test_mounted_in_another_asgi_app(stream: Stream) -> None:
    """An ERP's own Python web app mounts the feed under a path: every link, form, redirect
    and the live stream's URL stay under it."""
    from starlette.applications import Starlette
    from starlette.routing import Mount

    post = publish(stream, "presses", "press-07", "press-07 in fault")
    parent = Starlette(routes=[Mount("/floor", app=create_app(stream.config, stream=stream))])
    with TestClient(parent) as client:
        answer = client.get("/floor/", headers={"accept": "text/html"}, follow_redirects=False)
        assert answer.headers["location"].startswith("/floor/login")
        page = client.get("/floor/login")
        answer = client.post("/floor/login", data={"user": "alice", "password": PASSWORD,
                                                   "csrf": csrf_of(page.text)},
                             follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"] == "/floor/"
        feed = client.get("/floor/teams/maintenance").text
        links = re.findall(r'(?:href|action|src|data-live)="([^"#?][^"]*)"', feed)
        links = [link for link in links if not link.startswith("data:")]  # inline (the icon)
        assert links and all(link.startswith("/floor/") for link in links), links
        assert f'href="/floor/posts/{post.id}"' in feed
        assert client.get("/floor/static/feed.js").status_code == 200
        acked = client.post(f"/floor/posts/{post.id}/ack", data={"csrf": csrf_of(feed)},
                            follow_redirects=False)
        assert acked.headers["location"] == f"/floor/posts/{post.id}"


def test_create_app_takes_a_config_file_or_mapping(tmp_path: Path) -> None:
    """``create_app("floorstream.yaml")``, as ``floorstream.open`` takes it, serves that
    config's store (it used to need a loaded Config and failed on a path)."""
    import floorstream

    path = tmp_path / "floorstream.yaml"
    path.write_text(f"store: sqlite:///{tmp_path}/fs.db\nteams: {{maintenance: {{}}}}\n"
                    "routes: [{match: {source: presses}, teams: [maintenance]}]\n"
                    "web: {public_teams: [maintenance]}\n")
    with floorstream.open(path) as opened:
        post = publish(opened, "presses", "press-07", "press-07 in fault")
    for given in (str(path), path, {"store": f"sqlite:///{tmp_path}/fs.db",
                                    "teams": {"maintenance": {}},
                                    "web": {"public_teams": ["maintenance"]}}):
        with TestClient(create_app(given), client=("127.0.0.1", 1)) as client:
            feed = client.get("/teams/maintenance")
            assert feed.status_code == 200, given
            assert f"/posts/{post.id}" in feed.text


def test_the_production_hash_verifies(stream: Stream) -> None:
    """``floorstream web --hash-password``'s hash (argon2id, full cost) logs in."""
    from floorstream.config.settings import WebSettings
    from floorstream.web.auth import Authenticator, hash_password

    hashed = hash_password("s3cret pass")
    assert hashed.startswith("$argon2id$")
    auth = Authenticator(WebSettings(people={"dora": {"password_hash": hashed}}), stream.store)
    assert auth.check_password("dora", "s3cret pass")
    assert not auth.check_password("dora", "s3cret pasS")
    assert not auth.check_password("nobody", "s3cret pass")
