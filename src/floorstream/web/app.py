"""The web feed as an ASGI application: :func:`create_app`.

FastAPI (on Starlette) because the JSON API's OpenAPI description then comes from the very
signatures that parse the requests, and an ASGI app mounts into an ERP's own Python web app
(``parent.mount("/floor", create_app(...))``). It runs under uvicorn on a thread of its own in
the daemon (:mod:`floorstream.web.server`) and reads the store through its own engine, never
the pipeline's lock; only a comment goes through the pipeline, as every post does.

Who is asking is settled once per request (:func:`who`): an API token, the trusted proxy's
header, the session cookie, else nobody (who may still read the public teams). Every
state-changing route sits behind :func:`csrf_guard`.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from floorstream.api import Stream
from floorstream.config.settings import Config
from floorstream.model import Post
from floorstream.store.store import Store
from floorstream.web import csrf
from floorstream.web.actions import Commenter
from floorstream.web.auth import SESSION_COOKIE, Authenticator, Identity, Session
from floorstream.web.live import (
    EMBEDDED_DELIVERIES_PER_S,
    EMBEDDED_WRITES_PER_S,
    Hub,
    StreamParking,
    sse,
)
from floorstream.web.queries import Ack, FeedQueries
from floorstream.web.views import activity, environment, to_json

__all__ = ["Viewer", "WebContext", "create_app", "csrf_guard", "viewer"]

STATIC = Path(__file__).parent / "static"


class WebContext:
    """Everything a request handler needs, built once per app."""

    def __init__(self, config: Config, store: Store, stream: Stream, *,
                 embedded: bool = False) -> None:
        self.config = config
        self.settings = config.settings.web
        self.store = store
        self.stream = stream
        self.queries = FeedQueries(store)
        self.auth = Authenticator(self.settings, store)
        self.env = environment(config.settings.display.timezone)  # the posts' clock
        self.env.globals["person_name"] = self.person_name
        self.base_url = (self.settings.base_url or "").rstrip("/")
        #: the path the app is mounted under (an ERP's own app: "/floor"); "" at the root
        self.root = ""
        self.teams = sorted({*config.settings.teams, config.settings.default_team,
                             config.settings.admin_team})
        self.commenter = Commenter(stream.pipeline, self.teams)
        self._post_template = self.env.get_template("_post.html")
        # in a daemon (or an app that brings its own stream) the feed shares the process and
        # its GIL with a pipeline: live posts times streams are limited there (live.py)
        self.hub = Hub(self.queries, self.live_event, poll_s=self.settings.poll_ms / 1000,
                       deliveries_per_s=EMBEDDED_DELIVERIES_PER_S if embedded else None,
                       writes_per_s=EMBEDDED_WRITES_PER_S if embedded else None)

    def person_name(self, person: str) -> str:
        """A person's display name (web.people.<person>.name), else the user name."""
        found = self.settings.people.get(person)
        return (found.name if found is not None else None) or person

    def render_live(self, post: Post) -> str:
        """A post's HTML for the live stream: the same for every reader (forms get their CSRF
        token from the page's meta tag in the browser)."""
        return self._post_template.render(post=post, acks={}, csrf="", live=True, root=self.root)

    def live_event(self, kind: str, seq: int, post: Post, ack: Ack | None) -> str:
        """A post or an ack as the server-sent event every subscriber gets (encoded once)."""
        if ack is not None:
            return sse(None, "ack", to_json({
                "post_id": ack.post_id, "person": ack.person,
                "name": self.person_name(ack.person), "at": ack.at.isoformat()}))
        return sse(seq, "post", to_json({"html": self.render_live(post), "id": post.id,
                                         "thread": post.thread,
                                         "activity": activity(post, (), self.base_url)}))

    def close(self) -> None:
        self.hub.stop()


@dataclass(frozen=True)
class Viewer:
    """The reader of one request: who (None: anonymous) and which teams they may read."""

    identity: Identity | None
    session: Session | None
    public: frozenset[str]
    token: str | None = None  # the session cookie, when a new one must be set

    @property
    def readable(self) -> frozenset[str] | None:
        """Teams readable; None: all."""
        if self.identity is not None and self.identity.teams is None:
            return None
        own = self.identity.teams if self.identity is not None else None
        return frozenset((own or frozenset()) | self.public)

    def can_read(self, teams: Collection[str]) -> bool:
        """Whether a post of ``teams`` (or a team's feed) is for this reader. A post of no
        team — a person's e-mail digest (delivery.personal) — is nobody's on the web."""
        readable = self.readable
        return bool(teams) and (readable is None or any(t in readable for t in teams))

    @property
    def csrf(self) -> str:
        return self.session.csrf if self.session is not None else ""


def context(request: Request) -> WebContext:
    found: WebContext = request.app.state.web
    return found


def viewer(request: Request) -> Viewer:
    """Who is asking (cached on the request)."""
    cached = getattr(request.state, "viewer", None)
    if isinstance(cached, Viewer):
        return cached
    ctx = context(request)
    auth = ctx.auth
    address = request.client.host if request.client else None
    public = auth.public_teams(address)
    found = Viewer(None, None, public)
    person = auth.token_person(request.headers.get("authorization"))
    if person is not None:
        identity = auth.identity(person, "token")
        if identity is None:
            raise HTTPException(401, "the token's person is not configured")
        found = Viewer(identity, None, public)
    else:
        cookie = request.cookies.get(SESSION_COOKIE)
        session = auth.session(cookie)
        proxied = auth.proxy_person(address, dict(request.headers))
        if proxied is not None:
            identity = auth.identity(proxied, "proxy")
            if identity is None:
                raise HTTPException(403, f"{proxied!r} is not a person of this feed")
            new_token = None
            if session is None or session.person != proxied:
                # single sign-on: a session of our own carries the CSRF token
                new_token, session = auth.start_session(proxied)
            found = Viewer(identity, session, public, new_token)
        elif session is not None:
            found = Viewer(auth.identity(session.person, "session"), session, public)
    request.state.viewer = found
    return found


async def csrf_guard(request: Request) -> None:
    """Refuse a state-changing request made with a cookie but without its CSRF token."""
    if request.method in csrf.SAFE_METHODS:
        return
    who = viewer(request)
    if who.identity is not None and who.identity.via == "token":
        return  # no cookie was involved
    given = request.headers.get("x-csrf-token")
    if given is None and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()
        value = form.get("csrf")
        given = value if isinstance(value, str) else None
    if request.url.path.endswith("/login") and who.session is None:
        expected = request.cookies.get(csrf.LOGIN_COOKIE)
    else:
        expected = who.csrf
    if not csrf.same(expected, given):
        raise HTTPException(403, "missing or wrong CSRF token")


def create_app(config: Config | str | Path | Mapping[str, Any], *, store: Store | None = None,
               stream: Stream | None = None, root_path: str = "") -> FastAPI:
    """The web feed for ``config``'s store. ``stream``: publish comments through this
    (the daemon passes its own); else one is opened on the same store.

    ``config`` is a loaded :class:`Config`, or — as ``floorstream.open`` takes it — a config
    file's path or a mapping, validated here: an embedding app's natural first try is
    ``create_app("floorstream.yaml")``, which once failed on ``'str' object has no attribute
    'settings'``."""
    from floorstream.config import load_config, parse_mapping
    from floorstream.plugins import build_plugins
    from floorstream.web import api, pages

    if isinstance(config, str | Path):
        config = load_config(config, build_plugins())
    elif not isinstance(config, Config):
        config = parse_mapping(dict(config), build_plugins())
    own_store = store is None
    store = store or Store.open(config.settings.store)
    embedded = stream is not None  # a pipeline of the caller's runs in this process
    stream = stream or Stream(config, build_plugins(), store=store)
    ctx = WebContext(config, store, stream, embedded=embedded)
    app = FastAPI(title="floorstream web feed", version="1", root_path=root_path,
                  docs_url="/api/docs", redoc_url=None, openapi_url="/openapi.json",
                  dependencies=[Depends(csrf_guard)],
                  description="Activity posts of the plant, live. Authenticate with "
                              "`Authorization: Bearer <token>` (web.tokens).")
    app.state.web = ctx
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.include_router(pages.router)
    app.include_router(api.router)

    # Starlette's: an unknown path's 404 and a wrong method's 405 get the page too, not JSON
    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Any:
        wants_html = "text/html" in request.headers.get("accept", "")
        if exc.status_code == 401 and wants_html:
            return RedirectResponse(f"{ctx.root}/login?next={request.url.path}",
                                    status_code=303)
        if wants_html:
            page = ctx.env.get_template("error.html").render(
                status=exc.status_code, detail=exc.detail, me=None, csrf="", root=ctx.root)
            return HTMLResponse(page, status_code=exc.status_code, headers=exc.headers)
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code,
                            headers=exc.headers)

    # a malformed parameter (a hand-edited ?since=): a page in words for a browser
    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Any:
        if "text/html" not in request.headers.get("accept", ""):
            return await request_validation_exception_handler(request, exc)
        detail = "; ".join(f"{'.'.join(str(part) for part in error['loc'][1:])}: "
                           f"{error['msg']}" for error in exc.errors())
        page = ctx.env.get_template("error.html").render(
            status=422, detail=detail, me=None, csrf="", root=ctx.root)
        return HTMLResponse(page, status_code=422)

    app.add_middleware(SecurityHeaders, ctx=ctx)
    app.add_middleware(ServerTiming)  # times the others too
    app.add_middleware(StreamParking)  # outermost of ours: open streams off the stack

    def _close() -> None:
        ctx.close()
        if own_store:
            store.close()

    app.router.on_shutdown.append(_close)
    app.state.close = _close
    return app


class SecurityHeaders:
    """Plain ASGI middleware (not Starlette's BaseHTTPMiddleware, which would pipe every
    event-stream chunk through a queue): security headers on every response, and the
    session cookie a single-sign-on request was given."""

    HEADERS = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"same-origin"),
               (b"content-security-policy",
                b"default-src 'self'; img-src 'self' data:; style-src 'self'; "
                b"frame-ancestors 'none'; base-uri 'none'; form-action 'self'")]

    def __init__(self, app: Any, ctx: WebContext) -> None:
        self.app, self.ctx = app, ctx

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.ctx.root = str(scope.get("root_path", "")).rstrip("/")  # where it is mounted

        async def sending(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += self.HEADERS
                who = (scope.get("state") or {}).get("viewer")
                if isinstance(who, Viewer) and who.token is not None:
                    cookie = Response()
                    set_session_cookie(cookie, who.token, self.ctx)
                    headers += [(k, v) for k, v in cookie.raw_headers if k == b"set-cookie"]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, sending)


class ServerTiming:
    """A ``Server-Timing`` header on every response but an event stream: ``app;dur=`` the
    milliseconds from the request's start to its last body byte handed to the server, and
    ``cpu;dur=`` the process's CPU meanwhile (the request's own work when requests run one
    at a time; the whole process's otherwise).

    Measured here, in the server, a benchmark (``bench/web.py``) reads what a page costs
    the server apart from the client's queueing on a busy machine. To time up to the last
    byte, a response's start is held back until its first body part, which for the pages
    and the JSON API is the whole body; a response in several parts (a file) gets the time
    to its first part, an event stream none (its start is passed through at once)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, cpu = time.perf_counter(), time.process_time()
        held: list[Any] = []

        async def sending(message: Any) -> None:
            kind = message["type"]
            if kind == "http.response.start":
                if any(k == b"content-type" and v.startswith(b"text/event-stream")
                       for k, v in message.get("headers", ())):
                    await send(message)
                else:
                    held.append(message)
                return
            if kind == "http.response.body" and held:
                start = held.pop()
                timing = (f"app;dur={(time.perf_counter() - started) * 1000:.3f}, "
                          f"cpu;dur={(time.process_time() - cpu) * 1000:.3f}")
                await send({**start, "headers": [*start.get("headers", ()),
                                                 (b"server-timing", timing.encode())]})
            await send(message)

        await self.app(scope, receive, sending)


def set_session_cookie(response: Any, token: str, ctx: WebContext) -> None:
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="lax",
                        secure=ctx.base_url.startswith("https://"),
                        max_age=int(ctx.settings.session_hours * 3600), path="/")

