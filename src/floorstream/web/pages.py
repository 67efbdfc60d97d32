"""The HTML pages: feeds, kiosk, thread, permalink, personal feed, login; and their forms.

Server-rendered, each page works without JavaScript (forms post and redirect back); the one
script (``static/feed.js``) adds the live stream and keeps forms' CSRF tokens filled in on
posts it inserts.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from floorstream.delivery.personal import PersonalDigests
from floorstream.delivery.personal_schedule import Schedule
from floorstream.model import Event, Post
from floorstream.web import csrf
from floorstream.web.app import Viewer, WebContext, context, set_session_cookie, viewer
from floorstream.web.auth import SESSION_COOKIE
from floorstream.web.params import feed_filter, safe_next
from floorstream.web.queries import FOLLOW_KINDS, FeedFilter, FeedPage
from floorstream.web.views import filter_query, retracted, thread_tree, thread_url

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

Ctx = Annotated[WebContext, Depends(context)]
Who = Annotated[Viewer, Depends(viewer)]
Filters = Annotated[FeedFilter, Depends(feed_filter)]


def _page(ctx: WebContext, who: Viewer, template: str, **values: Any) -> HTMLResponse:
    html = ctx.env.get_template(template).render(
        me=who.identity, csrf=who.csrf, teams=_visible_teams(ctx, who), root=ctx.root, **values)
    return HTMLResponse(html)


def _visible_teams(ctx: WebContext, who: Viewer) -> list[str]:
    readable = who.readable
    return [t for t in ctx.teams if readable is None or t in readable]


def _need_reader(who: Viewer) -> None:
    if who.identity is None and not who.public:
        raise HTTPException(401, "log in to read the feed")


def _feed(ctx: WebContext, who: Viewer, page: FeedPage, *, title: str, stream: dict[str, str],
          filters: FeedFilter, template: str = "feed.html", **extra: Any) -> HTMLResponse:
    acks = ctx.queries.acks(p.id for p in page.posts)
    query = filter_query(filters)
    more = None
    if page.next_before is not None:
        more = "?" + urlencode({**query, "before": str(page.next_before)})
    live = f"{ctx.root}/events?" + urlencode({**stream, **query, "after": str(page.head)})
    gone = retracted(page.posts)
    follows = ctx.queries.follows(who.identity.person) if who.identity else []
    return _page(ctx, who, template, title=title, posts=page.posts, acks=acks, more=more,
                 live=live, filters=query, retracted=gone,
                 following={(f.kind, f.value) for f in follows}, **extra)


@router.get("/", response_class=HTMLResponse)
def everything(ctx: Ctx, who: Who, filters: Filters, before: int | None = None) -> Response:
    _need_reader(who)
    page = ctx.queries.page(teams=None, readable=who.readable, filters=filters, before=before)
    return _feed(ctx, who, page, title="Everything", stream={"scope": "all"}, filters=filters)


@router.get("/teams/{team}", response_class=HTMLResponse)
def team_feed(team: str, ctx: Ctx, who: Who, filters: Filters,
              before: int | None = None) -> Response:
    _need_reader(who)
    if not who.can_read([team]):
        raise HTTPException(403 if who.identity else 401, f"you may not read {team}'s feed")
    page = ctx.queries.page(teams=[team], readable=who.readable, filters=filters, before=before)
    return _feed(ctx, who, page, title=team, stream={"scope": "team", "team": team},
                 filters=filters, team=team)


@router.get("/kiosk/{team}", response_class=HTMLResponse)
def kiosk(team: str, ctx: Ctx, who: Who) -> Response:
    """A shop-floor screen: large type, newest first, no login when the team is public."""
    if not who.can_read([team]):
        raise HTTPException(403 if who.identity else 401, f"{team}'s feed is not public")
    page = ctx.queries.page(teams=[team], readable=who.readable, limit=30)
    return _feed(ctx, who, page, title=team, stream={"scope": "team", "team": team},
                 filters=FeedFilter(), template="kiosk.html", team=team)


@router.get("/me", response_class=HTMLResponse)
def personal(ctx: Ctx, who: Who, before: int | None = None) -> Response:
    if who.identity is None:
        raise HTTPException(401, "log in to see what you follow")
    follows = ctx.queries.follows(who.identity.person)
    page = ctx.queries.followed(follows, readable=who.readable, before=before)
    digest = PersonalDigests(ctx.config, ctx.store).choice(who.identity.person)
    return _feed(ctx, who, page, title="What I follow", stream={"scope": "me"},
                 filters=FeedFilter(), follows=follows, digest=digest)


@router.post("/me/digest")
def choose_digest(ctx: Ctx, who: Who, every: Annotated[str, Form(max_length=16)],
                  at: Annotated[str | None, Form(max_length=8)] = None,
                  timezone: Annotated[str | None, Form(max_length=64)] = None) -> Response:
    """The person's e-mail digest of what they follow (delivery.personal)."""
    if who.identity is None:
        raise HTTPException(401, "log in to choose your digest")
    digests = PersonalDigests(ctx.config, ctx.store)
    if digests.choice(who.identity.person) is None:
        raise HTTPException(409, "no digest here: it needs your e-mail address in the config "
                                 "and web.digest_sink")
    try:
        digests.choose(who.identity.person, Schedule.parse(every, at, timezone))
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    return RedirectResponse(f"{ctx.root}/me#digest", status_code=303)


@router.get("/threads/{thread:path}", response_class=HTMLResponse)
def thread(thread: str, ctx: Ctx, who: Who) -> Response:
    _need_reader(who)
    posts = [p for p in ctx.queries.thread(thread) if who.can_read(p.teams)]
    if not posts:
        raise HTTPException(404, "no posts you may read in this thread")
    acks = ctx.queries.acks(p.id for p in posts)
    follows = ctx.queries.follows(who.identity.person) if who.identity else []
    head = ctx.queries.head()
    live = f"{ctx.root}/events?" + urlencode({"scope": "thread", "thread": thread,
                                               "after": str(head)})
    return _page(ctx, who, "thread.html", title=thread, thread=thread, roots=thread_tree(posts),
                 acks=acks, live=live, subjects=sorted({p.subject for p in posts}),
                 following={(f.kind, f.value) for f in follows})


@router.get("/posts/{post_id}", response_class=HTMLResponse)
def permalink(post_id: str, ctx: Ctx, who: Who) -> Response:
    _need_reader(who)
    found = ctx.queries.post(post_id)
    if found is None or not who.can_read(found[1].teams):
        raise HTTPException(404, "no such post (or not one you may read)")
    post = found[1]
    verdicts = explain(ctx, post)
    return _page(ctx, who, "post.html", title=post.summary, post=post,
                 acks=ctx.queries.acks([post.id]), deliveries=ctx.queries.deliveries(post.id),
                 verdicts=verdicts, thread_link=thread_url(post.thread or post.subject),
                 replies=ctx.store.replies(post.id))


def explain(ctx: WebContext, post: Post) -> list[Any]:
    """Today's routing rules, rule by rule, for this post (the stored routing says what
    happened when it was made)."""
    attrs = dict(tag.split(":", 1) for tag in post.tags if ":" in tag)
    event = Event.create(type=post.type, source=post.source, subject=post.subject,
                         position="", occurred_at=post.occurred_at, severity=post.severity,
                         attrs=attrs)
    return list(ctx.stream.processor.router.explain(event))


# -- forms -----------------------------------------------------------------------------------


@router.post("/posts/{post_id}/ack")
def acknowledge(post_id: str, ctx: Ctx, who: Who,
                next: Annotated[str | None, Form()] = None) -> Response:
    if who.identity is None:
        raise HTTPException(401, "log in to acknowledge")
    found = ctx.queries.post(post_id)
    if found is None or not who.can_read(found[1].teams):
        raise HTTPException(404, "no such post")
    ctx.commenter.acknowledge(who.identity, found[1])  # through the pipeline (web.actions)
    return RedirectResponse(safe_next(next, f"{ctx.root}/posts/{quote(post_id)}"),
                            status_code=303)


@router.post("/posts/{post_id}/comment")
async def comment(post_id: str, ctx: Ctx, who: Who, text: Annotated[str, Form()],
                  key: Annotated[str | None, Form()] = None) -> Response:
    if who.identity is None:
        raise HTTPException(401, "log in to comment")
    found = ctx.queries.post(post_id)
    if found is None or not who.can_read(found[1].teams):
        raise HTTPException(404, "no such post")
    identity = who.identity
    try:
        posted = await run_in_threadpool(ctx.commenter.comment, identity, found[1], text, key)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    target = ctx.root + thread_url(posted.thread) + f"#post-{posted.id}"
    return RedirectResponse(target, status_code=303)


@router.post("/follow")
def follow(ctx: Ctx, who: Who, kind: Annotated[str, Form()], value: Annotated[str, Form()],
           next: Annotated[str | None, Form()] = None,
           undo: Annotated[str | None, Form()] = None) -> Response:
    if who.identity is None:
        raise HTTPException(401, "log in to follow")
    if kind not in FOLLOW_KINDS or not value or len(value) > 255:
        raise HTTPException(422, f"follow one of {', '.join(FOLLOW_KINDS)}")
    if undo:
        ctx.queries.unfollow(who.identity.person, kind, value)
    else:
        ctx.queries.follow(who.identity.person, kind, value)
    return RedirectResponse(safe_next(next, f"{ctx.root}/me"), status_code=303)


# -- login -------------------------------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse)
def login_form(ctx: Ctx, who: Who, next: str | None = None, error: str | None = None
               ) -> Response:
    token = csrf.new_token()
    html = ctx.env.get_template("login.html").render(
        me=None, csrf=token, next=safe_next(next, f"{ctx.root}/"), error=error, teams=[],
        root=ctx.root)
    response = HTMLResponse(html)
    response.set_cookie(csrf.LOGIN_COOKIE, token, httponly=True, samesite="strict",
                        secure=ctx.base_url.startswith("https://"), max_age=3600, path="/")
    return response


@router.post("/login")
def login(request: Request, ctx: Ctx, user: Annotated[str, Form(max_length=128)],
          password: Annotated[str, Form(max_length=1024)],
          next: Annotated[str | None, Form()] = None) -> Response:
    address = request.client.host if request.client else "?"
    wait = ctx.auth.limiter.retry_after(address, user)
    if wait > 0:
        raise HTTPException(429, "too many failed logins; try again later",
                            headers={"Retry-After": str(int(wait) + 1)})
    if not ctx.auth.check_password(user, password):
        ctx.auth.limiter.failed(address, user)
        return RedirectResponse(f"{ctx.root}/login?" + urlencode(
            {"error": "wrong user or password", "next": safe_next(next, f"{ctx.root}/")}),
            status_code=303)
    ctx.auth.limiter.succeeded(address, user)
    token, _ = ctx.auth.start_session(user)
    response = RedirectResponse(safe_next(next, f"{ctx.root}/"), status_code=303)
    set_session_cookie(response, token, ctx)
    response.delete_cookie(csrf.LOGIN_COOKIE, path="/")
    return response


@router.post("/logout")
def logout(request: Request, ctx: Ctx) -> Response:
    ctx.auth.end_session(request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse(f"{ctx.root}/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
