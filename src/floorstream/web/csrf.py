"""CSRF: every state-changing request made with a cookie carries a token the cookie cannot.

A logged-in session has its own random CSRF token (stored with the session); forms carry it in
a hidden ``csrf`` field, scripts in the ``X-CSRF-Token`` header. The login form, made before
there is a session, uses a double-submit cookie (``fs_login_csrf`` set with the form, echoed in
the form): a foreign site can make a browser post to ``/login`` but can neither read nor set
that cookie. Requests authenticated by an API token carry no cookie and need no CSRF token.
SameSite=Lax on the cookies is a second wall, not the only one.
"""

from __future__ import annotations

import hmac
import secrets

__all__ = ["LOGIN_COOKIE", "SAFE_METHODS", "new_token", "same"]

LOGIN_COOKIE = "fs_login_csrf"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def new_token() -> str:
    return secrets.token_urlsafe(32)


def same(expected: str | None, given: str | None) -> bool:
    """Constant-time equality; a missing token is never equal."""
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())
