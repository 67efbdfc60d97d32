"""Who is asking: sessions, API tokens, the trusted proxy header, public kiosk teams.

People come from the config (``web.people``) with argon2 password hashes (argon2-cffi: the
algorithm OWASP recommends first, and a library that does the constant-time compare and the
parameter upgrades for us). A login makes a session: a random token in an HttpOnly SameSite
cookie, stored as its sha256 (a leaked table logs nobody in) with its own CSRF token. API
tokens (``Authorization: Bearer``) act as their person without cookies, hence without CSRF.
A reverse proxy that did single sign-on names the user in a header, believed only from the
addresses in ``web.trusted_proxies``.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select

from floorstream.config.settings import WebPerson, WebSettings
from floorstream.model import utcnow
from floorstream.store import schema
from floorstream.store.store import Store

__all__ = ["Authenticator", "Identity", "LoginLimiter", "Session", "hash_password"]

SESSION_COOKIE = "fs_session"

_hasher = PasswordHasher()
#: a hash verified when the user is unknown, so a wrong name costs the time a wrong password
#: does (no user enumeration by timing)
_DUMMY_HASH = _hasher.hash("floorstream: nobody")


def hash_password(password: str) -> str:
    """An argon2id hash for ``web.people.<name>.password_hash``."""
    return _hasher.hash(password)


@dataclass(frozen=True)
class Identity:
    """The person behind a request (or ``None`` for anonymous, which reads public teams)."""

    person: str
    name: str
    #: the teams this person may read; None: all of them
    teams: frozenset[str] | None
    via: str  # session | token | proxy

    def can_read(self, teams: tuple[str, ...] | list[str]) -> bool:
        return self.teams is None or any(t in self.teams for t in teams)


@dataclass(frozen=True)
class Session:
    person: str
    csrf: str


class LoginLimiter:
    """At most ``attempts`` failed logins per (address, user) in ``window`` seconds.

    Kept in the store (``fs_web_login_failures``, a row per failure), so every web process on
    one store counts the same failures: several processes behind a balancer allow the
    attempts once, not once each. A check is one indexed read, a failure one insert (which
    also deletes failures older than the window, by the time index, keeping the table small),
    a success one delete. Times are the store's rows' wall-clock times: processes on several
    hosts need clocks that agree (NTP), as the delivery leases do.
    """

    def __init__(self, store: Store, attempts: int, window: float) -> None:
        self.engine = store.engine
        self.attempts, self.window = attempts, window

    def retry_after(self, address: str, user: str) -> float:
        """Seconds until another attempt is allowed (0: now)."""
        t = schema.web_login_failures
        now = utcnow()
        with self.engine.connect() as conn:
            # the attempts-th newest failure in the window: once it leaves, one more may try
            row = conn.execute(select(t.c.at).where(
                t.c.address == address[:64], t.c.username == user.lower()[:128],
                t.c.at > now - timedelta(seconds=self.window))
                .order_by(t.c.at.desc()).offset(self.attempts - 1).limit(1)).first()
        if row is None:
            return 0.0
        oldest: datetime = row.at
        return max(0.0, (oldest - now).total_seconds() + self.window)

    def failed(self, address: str, user: str) -> None:
        t = schema.web_login_failures
        now = utcnow()
        with self.engine.begin() as conn:
            conn.execute(delete(t).where(t.c.at <= now - timedelta(seconds=self.window)))
            conn.execute(t.insert().values(address=address[:64], username=user.lower()[:128],
                                           at=now))

    def succeeded(self, address: str, user: str) -> None:
        t = schema.web_login_failures
        with self.engine.begin() as conn:
            conn.execute(delete(t).where(t.c.address == address[:64],
                                         t.c.username == user.lower()[:128]))


class Authenticator:
    def __init__(self, settings: WebSettings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self.people: dict[str, WebPerson] = dict(settings.people)
        self._tokens = {hashlib.sha256(t.token.encode()).digest(): t.person
                        for t in settings.tokens}
        self._proxies = [ipaddress.ip_network(n, strict=False) for n in settings.trusted_proxies]
        self._public = [ipaddress.ip_network(n, strict=False) for n in settings.public_networks]
        self.limiter = LoginLimiter(store, settings.login_attempts, settings.login_window)

    def identity(self, person: str, via: str) -> Identity | None:
        found = self.people.get(person)
        if found is None:
            return None
        teams = None if "*" in found.teams else frozenset(found.teams)
        return Identity(person, found.name or person, teams, via)

    # -- passwords and sessions ------------------------------------------------------------

    def check_password(self, person: str, password: str) -> bool:
        found = self.people.get(person)
        stored = found.password_hash if found is not None else None
        try:
            _hasher.verify(stored or _DUMMY_HASH, password)
        except (VerificationError, InvalidHashError):
            return False
        return stored is not None

    def start_session(self, person: str) -> tuple[str, Session]:
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        now = utcnow()
        t = schema.web_sessions
        with self.store.engine.begin() as conn:
            conn.execute(delete(t).where(t.c.expires_at < now))  # the expired, in passing
            conn.execute(t.insert().values(
                token_hash=_digest(token), person=person, csrf=csrf, created_at=now,
                expires_at=now + timedelta(hours=self.settings.session_hours)))
        return token, Session(person, csrf)

    def session(self, token: str | None) -> Session | None:
        if not token or len(token) > 100:
            return None
        t = schema.web_sessions
        with self.store.engine.connect() as conn:
            row = conn.execute(select(t.c.person, t.c.csrf, t.c.expires_at)
                               .where(t.c.token_hash == _digest(token))).first()
        if row is None or row.expires_at <= utcnow() or row.person not in self.people:
            return None
        return Session(row.person, row.csrf)

    def end_session(self, token: str | None) -> None:
        if token:
            t = schema.web_sessions
            with self.store.engine.begin() as conn:
                conn.execute(delete(t).where(t.c.token_hash == _digest(token)))

    # -- tokens, proxies, public networks --------------------------------------------------

    def token_person(self, authorization: str | None) -> str | None:
        if not authorization or not authorization.lower().startswith("bearer "):
            return None
        given = hashlib.sha256(authorization[7:].strip().encode()).digest()
        for digest, person in self._tokens.items():
            if hmac.compare_digest(digest, given):
                return person
        return None

    def proxy_person(self, address: str | None, headers: dict[str, str]) -> str | None:
        header = self.settings.proxy_header
        if not header or not address or not _within(address, self._proxies):
            return None
        value = headers.get(header.lower())
        return value.strip() if value else None

    def public_teams(self, address: str | None) -> frozenset[str]:
        if not self.settings.public_teams or not address or not _within(address, self._public):
            return frozenset()
        return frozenset(self.settings.public_teams)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _within(address: str, networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network]
            ) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)
