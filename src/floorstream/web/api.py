"""The machine side: JSON feed (Activity Streams 2.0), acks, comments, follows, the event
stream and Atom. Described by the OpenAPI document FastAPI serves at ``/openapi.json``.

Feeds page by cursor: ``before`` is the ``seq`` below which the next page starts, carried in the
``next`` link of each ``OrderedCollectionPage``; a cursor never skips or repeats a post while
new posts arrive (they are above every cursor).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field

from floorstream.delivery.personal import PersonalDigests
from floorstream.delivery.personal_schedule import Schedule
from floorstream.model import DIGEST_SOURCE, Post, utcnow
from floorstream.web.app import Viewer, WebContext, context, viewer
from floorstream.web.live import BURST, EventStreamResponse, Item, more_item
from floorstream.web.params import feed_filter
from floorstream.web.queries import FOLLOW_KINDS, FeedFilter, Follow
from floorstream.web.views import activity, atom_feed, collection_page, filter_query

__all__ = ["router"]

router = APIRouter()

Ctx = Annotated[WebContext, Depends(context)]
Who = Annotated[Viewer, Depends(viewer)]
Filters = Annotated[FeedFilter, Depends(feed_filter)]
AS2 = "application/activity+json"
#: posts a reconnecting stream looks through at most (more: a ``more`` event, load the page)
BACKLOG_LIMIT = 5000


def _reader(who: Viewer) -> Viewer:
    if who.identity is None and not who.public:
        raise HTTPException(401, "authenticate: Authorization: Bearer <token>",
                            headers={"WWW-Authenticate": "Bearer"})
    return who


def _person(who: Viewer) -> str:
    if who.identity is None:
        raise HTTPException(401, "authenticate: Authorization: Bearer <token>",
                            headers={"WWW-Authenticate": "Bearer"})
    return who.identity.person


def _readable_post(ctx: WebContext, who: Viewer, post_id: str) -> Post:
    found = ctx.queries.post(post_id)
    if found is None or not who.can_read(found[1].teams):
        raise HTTPException(404, "no such post (or not one you may read)")
    return found[1]


class AckOut(BaseModel):
    post_id: str
    person: str
    at: str
    created: bool


class CommentIn(BaseModel):
    text: str = Field(min_length=1, max_length=4000)
    key: str | None = Field(default=None, max_length=64,
                            description="idempotency key: the same key posts once")


class FollowIn(BaseModel):
    kind: str = Field(description="subject | source | team | thread", max_length=16)
    value: str = Field(min_length=1, max_length=255)


class FollowOut(BaseModel):
    kind: str
    value: str
    created_at: str


@router.get("/api/feed", tags=["feed"], summary="A feed page (AS2 OrderedCollectionPage)")
def feed(request: Request, ctx: Ctx, who: Who, filters: Filters,
         team: Annotated[str | None, Query(max_length=64)] = None,
         before: Annotated[int | None, Query(ge=0, le=2**62)] = None,
         limit: Annotated[int, Query(ge=1, le=200)] = 50) -> Response:
    """Newest first. ``team`` absent: every team you may read. ``next`` carries the cursor."""
    _reader(who)
    if team is not None and not who.can_read([team]):
        raise HTTPException(403, f"you may not read {team}'s feed")
    page = ctx.queries.page(teams=[team] if team else None, readable=who.readable,
                            filters=filters, before=before, limit=limit)
    query = {**filter_query(filters), **({"team": team} if team else {}), "limit": str(limit)}
    base = _base(ctx, request)
    next_url = (f"{base}/api/feed?" + urlencode({**query, "before": str(page.next_before)})
                if page.next_before is not None else None)
    body = collection_page(page.posts, ctx.queries.acks(p.id for p in page.posts),
                           url=str(request.url), part_of=f"{base}/api/feed?" + urlencode(query),
                           next_url=next_url, base=base)
    return JSONResponse(body, media_type=AS2)


@router.get("/api/me/feed", tags=["feed"], summary="What you follow (AS2 page)")
def my_feed(request: Request, ctx: Ctx, who: Who,
            before: Annotated[int | None, Query(ge=0, le=2**62)] = None,
            limit: Annotated[int, Query(ge=1, le=200)] = 50) -> Response:
    _person(who)
    assert who.identity is not None
    page = ctx.queries.followed(ctx.queries.follows(who.identity.person),
                                readable=who.readable, before=before, limit=limit)
    base = _base(ctx, request)
    next_url = (f"{base}/api/me/feed?" + urlencode({"limit": limit, "before": page.next_before})
                if page.next_before is not None else None)
    body = collection_page(page.posts, ctx.queries.acks(p.id for p in page.posts),
                           url=str(request.url), part_of=f"{base}/api/me/feed",
                           next_url=next_url, base=base)
    return JSONResponse(body, media_type=AS2)


@router.get("/api/posts/{post_id}", tags=["posts"], summary="A post, its acks, deliveries "
            "and routing")
def post(post_id: str, request: Request, ctx: Ctx, who: Who) -> Response:
    _reader(who)
    found = _readable_post(ctx, who, post_id)
    acks = ctx.queries.acks([found.id]).get(found.id, [])
    from floorstream.web.pages import explain

    body = activity(found, acks, _base(ctx, request))
    body["floorstream:routing"] = list(found.routing)
    body["floorstream:explain"] = [
        {"rule": v.rule, "matched": v.matched, "reason": v.reason, "teams": list(v.teams)}
        for v in explain(ctx, found)]
    body["floorstream:deliveries"] = [
        {"sink": d.sink, "team": d.team, "status": d.status, "attempts": d.attempts,
         "last_error": d.last_error, "delivered_at": d.delivered_at.isoformat()
         if d.delivered_at else None} for d in ctx.queries.deliveries(found.id)]
    return JSONResponse(body, media_type=AS2)


@router.get("/api/threads/{thread:path}", tags=["posts"], summary="A thread, oldest first")
def thread(thread: str, request: Request, ctx: Ctx, who: Who) -> Response:
    _reader(who)
    posts = [p for p in ctx.queries.thread(thread) if who.can_read(p.teams)]
    base = _base(ctx, request)
    acks = ctx.queries.acks(p.id for p in posts)
    return JSONResponse({
        "@context": "https://www.w3.org/ns/activitystreams", "type": "OrderedCollection",
        "id": f"urn:floorstream:thread:{thread}", "totalItems": len(posts),
        "orderedItems": [activity(p, acks.get(p.id, ()), base) for p in posts]},
        media_type=AS2)


@router.post("/api/posts/{post_id}/ack", tags=["actions"], response_model=AckOut,
             summary="Acknowledge a post (\"on it\"): a post in its thread, once per person")
def ack(post_id: str, ctx: Ctx, who: Who) -> AckOut:
    _person(who)
    assert who.identity is not None
    found = _readable_post(ctx, who, post_id)
    done, created = ctx.commenter.acknowledge(who.identity, found)  # through the pipeline
    return AckOut(post_id=done.post_id, person=done.person, at=done.at.isoformat(),
                  created=created)


@router.post("/api/posts/{post_id}/comments", tags=["actions"], status_code=201,
             summary="Comment: a post in the thread, routed to the post's teams and @teams")
async def comment(post_id: str, body: CommentIn, request: Request, ctx: Ctx, who: Who
                  ) -> Response:
    _person(who)
    assert who.identity is not None
    found = _readable_post(ctx, who, post_id)
    try:
        posted = await run_in_threadpool(ctx.commenter.comment, who.identity, found,
                                         body.text, body.key)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    return JSONResponse(activity(posted, (), _base(ctx, request)), status_code=201,
                        media_type=AS2)


@router.get("/api/follows", tags=["follows"], response_model=list[FollowOut])
def follows(ctx: Ctx, who: Who) -> list[FollowOut]:
    person = _person(who)
    return [_follow_out(f) for f in ctx.queries.follows(person)]


@router.post("/api/follows", tags=["follows"], response_model=FollowOut, status_code=201)
def add_follow(body: FollowIn, ctx: Ctx, who: Who) -> FollowOut:
    person = _person(who)
    if body.kind not in FOLLOW_KINDS:
        raise HTTPException(422, f"follow one of {', '.join(FOLLOW_KINDS)}")
    ctx.queries.follow(person, body.kind, body.value)
    return next(_follow_out(f) for f in ctx.queries.follows(person)
                if (f.kind, f.value) == (body.kind, body.value))


@router.delete("/api/follows", tags=["follows"], status_code=204)
def remove_follow(ctx: Ctx, who: Who, kind: Annotated[str, Query(max_length=16)],
                  value: Annotated[str, Query(max_length=255)]) -> Response:
    person = _person(who)
    ctx.queries.unfollow(person, kind, value)
    return Response(status_code=204)


def _follow_out(follow: Follow) -> FollowOut:
    return FollowOut(kind=follow.kind, value=follow.value,
                     created_at=follow.created_at.isoformat())


class DigestIn(BaseModel):
    every: str = Field(description="off | hourly | daily", max_length=16)
    at: str | None = Field(default=None, description="a daily digest's local time, HH:MM",
                           max_length=8)
    timezone: str | None = Field(default=None, description="e.g. Europe/Berlin; default UTC",
                                 max_length=64)


class DigestOut(BaseModel):
    every: str
    at: str
    timezone: str
    chosen: bool = Field(description="your own choice; false: the config's")
    description: str


def _digest_out(ctx: WebContext, person: str) -> DigestOut:
    found = PersonalDigests(ctx.config, ctx.store).choice(person)
    if found is None:
        raise HTTPException(409, "no digest here: it needs your e-mail address in the config "
                                 "and web.digest_sink")
    schedule = found.schedule
    return DigestOut(every=schedule.every, at=schedule.at_text, timezone=schedule.zone,
                     chosen=found.chosen, description=schedule.describe())


@router.get("/api/me/digest", tags=["follows"], response_model=DigestOut,
            summary="Your e-mail digest of what you follow")
def digest(ctx: Ctx, who: Who) -> DigestOut:
    return _digest_out(ctx, _person(who))


@router.put("/api/me/digest", tags=["follows"], response_model=DigestOut,
            summary="Choose your e-mail digest: off, hourly, or daily at a local time")
def choose_digest(body: DigestIn, ctx: Ctx, who: Who) -> DigestOut:
    person = _person(who)
    _digest_out(ctx, person)  # 409 when there can be none
    try:
        schedule = Schedule.parse(body.every, body.at, body.timezone)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    PersonalDigests(ctx.config, ctx.store).choose(person, schedule)
    return _digest_out(ctx, person)


@router.get("/teams/{team}/atom.xml", tags=["feed"], summary="A team's Atom feed",
            response_class=Response)
def atom(team: str, request: Request, ctx: Ctx, who: Who) -> Response:
    _reader(who)
    if not who.can_read([team]):
        raise HTTPException(403, f"you may not read {team}'s feed")
    page = ctx.queries.page(teams=[team], readable=who.readable, limit=50)
    body = atom_feed(team, page.posts, base=_base(ctx, request),
                     updated=page.posts[0].created_at if page.posts else utcnow())
    return Response(body, media_type="application/atom+xml")


@router.get("/events", tags=["live"], summary="Server-sent events: new posts and acks",
            response_class=StreamingResponse)
async def events(request: Request, ctx: Ctx, who: Who, filters: Filters,
                 scope: Annotated[str, Query(pattern="^(all|team|thread|me)$")] = "all",
                 team: Annotated[str | None, Query(max_length=64)] = None,
                 thread: Annotated[str | None, Query(max_length=255)] = None,
                 after: Annotated[int | None, Query(ge=0, le=2**62)] = None,
                 last_event_id: Annotated[str | None, Header()] = None) -> Response:
    """``event: post`` (id = the post's seq; ``data``: its HTML and AS2 activity),
    ``event: ack``, and in a storm ``event: more`` (id = the newest seq; ``data``: ``after``,
    ``upto``, ``posts``: up to that many posts in those seqs were not sent one by one — load
    the feed). A reconnect sends ``Last-Event-ID`` and gets what it missed first (as posts,
    or as one ``more`` when it is more than a burst)."""
    _reader(who)
    if scope == "team" and (not team or not who.can_read([team])):
        raise HTTPException(403, "no team given, or not one you may read")
    if scope == "thread" and not thread:
        raise HTTPException(422, "scope=thread needs thread=")
    if scope == "me" and who.identity is None:
        raise HTTPException(401, "log in to follow your feed")
    wants = await run_in_threadpool(_wanted, ctx, who, filters, scope, team, thread)
    start = after
    if last_event_id and last_event_id.strip().isdigit():
        start = int(last_event_id.strip())
    # readers of the same page with the same rights want the same posts (what a person
    # follows is theirs alone, as of when the stream opened: not shared)
    key = None if scope == "me" else (scope, team, thread, filters, who.readable)
    subscriber = ctx.hub.subscribe(wants, key)  # before the backlog: nothing falls between
    try:
        if start is None:
            start = ctx.hub.head
        backlog = await run_in_threadpool(_backlog, ctx, start, wants)
    except BaseException:
        ctx.hub.unsubscribe(subscriber)
        raise
    return EventStreamResponse(ctx.hub, subscriber, backlog,
                               headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def _wanted(ctx: WebContext, who: Viewer, filters: FeedFilter, scope: str, team: str | None,
            thread: str | None) -> Callable[[Post], bool]:
    follows: list[Follow] = []
    if scope == "me" and who.identity is not None:
        follows = ctx.queries.follows(who.identity.person)
    return _Wants(who.readable, scope, team, thread, follows, filters)


class _Wants:
    """Whether a stream's page shows a post. A slotted object, not a closure: it lives as
    long as its stream, and a closure over six names is eight objects for the collector to
    walk (live.EventStreamResponse says why that counts)."""

    __slots__ = ("filters", "follows", "readable", "scope", "team", "thread")

    def __init__(self, readable: frozenset[str] | None, scope: str, team: str | None,
                 thread: str | None, follows: list[Follow], filters: FeedFilter) -> None:
        self.readable, self.scope, self.team, self.thread = readable, scope, team, thread
        self.follows, self.filters = follows, filters

    def __call__(self, post: Post) -> bool:
        readable, scope = self.readable, self.scope
        if readable is not None and not any(t in readable for t in post.teams):
            return False
        if post.source == DIGEST_SOURCE:  # a person's e-mail digest: in no feed
            return False
        if scope == "team" and self.team not in post.teams:
            return False
        if scope == "thread" and (post.thread or post.subject) != self.thread:
            return False
        if scope == "me" and not any(
                (f.kind == "team" and f.value in post.teams)
                or (f.kind != "team" and getattr(post, f.kind) == f.value)
                for f in self.follows):
            return False
        return self.filters.matches(post)


def _backlog(ctx: WebContext, start: int, wants: Callable[[Post], bool]) -> list[Item]:
    """What a reconnect missed: its posts, rendered, when they are a burst at most; else one
    ``more`` event (rendering thousands of posts would cost what the live stream saves)."""
    newest = ctx.queries.head()
    if newest - start > BACKLOG_LIMIT:
        return [more_item(start, newest, newest - start)]
    first = start
    wanted: list[tuple[int, Post]] = []
    while True:
        rows = ctx.queries.after(start, limit=500)
        wanted.extend((seq, post) for seq, post in rows if wants(post))
        if rows:
            start = rows[-1][0]
        if len(rows) < 500 or start >= newest:
            break
    if len(wanted) > BURST:
        return [more_item(first, start, len(wanted))]
    return [Item("post", seq, post, ctx.live_event("post", seq, post, None))
            for seq, post in wanted]


def _base(ctx: WebContext, request: Request) -> str:
    return ctx.base_url or str(request.base_url).rstrip("/")
