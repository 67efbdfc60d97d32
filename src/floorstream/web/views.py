"""How posts look: the Jinja2 environment, threads as trees, Activity Streams and Atom.

Templates are autoescaped (every ``.html``): a post's summary, body, subject, a comment's
text — all of it comes from machines, ERP users and people, and a summary holding
``<script>`` must show as those characters. Nothing is marked safe except what this module
builds from escaped parts.
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any
from urllib.parse import quote
from xml.etree import ElementTree
from zoneinfo import ZoneInfo

import jinja2
import orjson

from floorstream.model import Post
from floorstream.processing import PEOPLE_SOURCE
from floorstream.web.queries import Ack, FeedFilter

__all__ = ["Node", "activity", "atom_feed", "environment", "post_url", "thread_tree",
           "thread_url"]


def environment(timezone: str | None = None) -> jinja2.Environment:
    """The templates, their times on the plant's clock: ``display.timezone`` (the clock the
    posts' summaries use, so a page shows one clock), else UTC; each time says its zone."""
    zone: tzinfo = ZoneInfo(timezone) if timezone else UTC
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("floorstream.web", "templates"),
        autoescape=jinja2.select_autoescape(["html", "xml"], default=True),
        trim_blocks=True, lstrip_blocks=True, auto_reload=False)
    env.filters["when"] = lambda value: _day(value) or _when(value.astimezone(zone))
    env.globals["display_zone"] = timezone or "UTC"
    env.filters["iso"] = _iso
    env.globals["post_url"] = post_url
    env.globals["thread_url"] = thread_url
    env.globals["actor"] = actor_name
    # a comment form's idempotency key: submitting the same form twice posts once. Unique
    # per form without a system call each (os.urandom was a third of a live post's render,
    # on the daemon's GIL): this environment's random prefix and a counter
    prefix, numbers = secrets.token_urlsafe(9), itertools.count()
    env.globals["form_key"] = lambda: f"{prefix}{next(numbers):x}"
    return env


def _when(value: datetime) -> str:
    """Day and time with its zone, always: a reader in another plant, or a feed reader, must
    not guess it (the page's script shows it in the reader's own zone, named)."""
    zone = value.tzname() or "UTC"
    # an ASN from last year must not read as this year's: the year when it is not this one
    this_year = value.year == datetime.now(value.tzinfo).year
    shape = "%d %b %H:%M:%S " if this_year else "%d %b %Y %H:%M:%S "
    return value.strftime(shape) + ("UTC" if zone in ("UTC", "+00:00") else zone)


def _day(value: datetime) -> str | None:
    """A date with no time of day (an ASN "sent 6 Dec", a carrier's delivery date) arrives
    as midnight UTC; on the plant's clock that read "6 Dec 01:00:00 CET", a time nobody
    gave. Exactly midnight UTC, to the microsecond, is shown as the day it names."""
    utc = value.astimezone(UTC)
    if (utc.hour, utc.minute, utc.second, utc.microsecond) != (0, 0, 0, 0):
        return None
    this_year = utc.year == datetime.now(UTC).year
    return utc.strftime("%d %b" if this_year else "%d %b %Y")


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def post_url(post_id: str) -> str:
    return f"/posts/{quote(post_id, safe='')}"


def thread_url(thread: str) -> str:
    return f"/threads/{quote(thread, safe='')}"


def actor_name(post: Post) -> str:
    """Who said it: the person of a comment, else the source."""
    if post.source == PEOPLE_SOURCE:
        return str(post.fields.get("actor_name") or post.fields.get("actor") or "someone")
    return post.source


@dataclass
class Node:
    """A post in a thread with the posts that answer it (by ``inReplyTo`` = refers_to)."""

    post: Post
    replies: list[Node] = field(default_factory=list)
    #: a later post of the thread retracted this one
    retracted_by: Post | None = None


def thread_tree(posts: Sequence[Post]) -> list[Node]:
    """Roots in time order, each with its replies nested; a post whose parent is not among
    ``posts`` (an older one, cut off) is a root."""
    nodes = {post.id: Node(post) for post in posts}
    roots: list[Node] = []
    for post in posts:
        node = nodes[post.id]
        parent = nodes.get(post.refers_to) if post.refers_to else None
        if parent is None or parent is node:
            roots.append(node)
            continue
        parent.replies.append(node)
        if post.relation == "retraction":
            parent.retracted_by = post
    return roots


def retracted(posts: Iterable[Post]) -> dict[str, Post]:
    """post id → the retraction of it, among ``posts``."""
    return {p.refers_to: p for p in posts if p.relation == "retraction" and p.refers_to}


def activity(post: Post, acks: Sequence[Ack] = (), base: str = "") -> dict[str, Any]:
    """The post's AS2 activity, a comment's actor a Person, with its permalink and acks."""
    found = post.as_activity()  # a comment's actor is its person (Post.as_activity)
    found["url"] = [*found.get("url", []),
                    {"type": "Link", "href": base + post_url(post.id), "name": "permalink",
                     "mediaType": "text/html"}]
    if acks:
        found["floorstream:acknowledged"] = [
            {"type": "Person", "name": a.person, "published": _iso(a.at)} for a in acks]
    return found


def collection_page(posts: Sequence[Post], acks: Mapping[str, Sequence[Ack]], *, url: str,
                    part_of: str, next_url: str | None, base: str) -> dict[str, Any]:
    page: dict[str, Any] = {
        "@context": ["https://www.w3.org/ns/activitystreams",
                     {"floorstream": "urn:floorstream:ns#"}],
        "type": "OrderedCollectionPage",
        "id": url,
        "partOf": part_of,
        "orderedItems": [activity(p, acks.get(p.id, ()), base) for p in posts],
    }
    if next_url is not None:
        page["next"] = next_url
    return page


def atom_feed(team: str, posts: Sequence[Post], *, base: str, updated: datetime) -> bytes:
    """An Atom 1.0 feed of a team's newest posts (RFC 4287), escaped by ElementTree."""
    ns = "http://www.w3.org/2005/Atom"
    ElementTree.register_namespace("", ns)

    def sub(parent: ElementTree.Element, tag: str, text: str | None = None,
            **attrs: str) -> ElementTree.Element:
        element = ElementTree.SubElement(parent, f"{{{ns}}}{tag}", attrs)
        if text is not None:
            element.text = text
        return element

    feed = ElementTree.Element(f"{{{ns}}}feed")
    sub(feed, "id", f"urn:floorstream:team:{quote(team, safe='')}")  # an IRI: no spaces
    sub(feed, "title", f"floorstream: {team}")
    sub(feed, "updated", _iso(updated))
    sub(feed, "link", rel="alternate", href=f"{base}/teams/{quote(team, safe='')}")
    sub(feed, "link", rel="self", href=f"{base}/teams/{quote(team, safe='')}/atom.xml")
    for post in posts:
        entry = sub(feed, "entry")
        sub(entry, "id", f"urn:floorstream:post:{quote(post.id, safe='')}")
        sub(entry, "title", f"[{post.severity.label}] {post.summary}")
        sub(entry, "updated", _iso(post.created_at))
        sub(entry, "published", _iso(post.occurred_at))
        author = sub(entry, "author")
        sub(author, "name", actor_name(post))
        sub(entry, "link", rel="alternate", href=base + post_url(post.id))
        sub(entry, "category", term=post.severity.label)
        sub(entry, "content", post.body or post.summary, type="text")
    body: bytes = ElementTree.tostring(feed, encoding="utf-8", xml_declaration=False)
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + body


def filter_query(filters: FeedFilter) -> dict[str, str]:
    """The filters as query parameters (to keep them on the next page and the live stream)."""
    found: dict[str, str] = {}
    if filters.severity is not None:
        found["severity"] = filters.severity.label
    for name in ("source", "subject", "type", "text"):
        value = getattr(filters, name)
        if value:
            found["q" if name == "text" else name] = value
    if filters.since is not None:
        found["since"] = filters.since.isoformat()
    if filters.until is not None:
        found["until"] = filters.until.isoformat()
    return found


def to_json(value: Any) -> str:
    """A live event's data (a post's HTML and activity) through orjson: the stdlib encoder
    took ~90-250 us of the ~300 us a live post cost the watcher, on the daemon's GIL."""
    return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
