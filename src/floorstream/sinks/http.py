"""A lean keep-alive HTTP POST for sinks: urllib3, one connection per worker, no magic.

Why not httpx (which it replaced): a delivery worker sends one small JSON request
after another, and on the 2-core reference machine httpx's per-request overhead was the
largest cost of a delivery — 1,360 requests/s on one thread against urllib3's 2,680 on the
same local server (``bench/delivery.py`` has the end-to-end numbers). Nothing else here needs
httpx's features: no redirects are followed (a webhook that redirects is misconfigured, and a
redirect could carry the token elsewhere), no retries happen inside the client (the outbox
worker owns retries, backoff and ``Retry-After``), and connections are kept alive.

Proxies come from the usual environment variables (``HTTPS_PROXY``, ``HTTP_PROXY``,
``NO_PROXY``), as with httpx before. Error messages never contain the URL.
"""

from __future__ import annotations

import json
import urllib.request
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from floorstream.plugin import DeliveryError, scrub

if TYPE_CHECKING:  # imported by the first poster: a daemon without HTTP sinks never loads it
    import urllib3

__all__ = ["HttpPoster", "HttpResponse"]


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        """The body as JSON; raises ValueError when it is not."""
        return json.loads(self.body)


def _proxy_for(url: str) -> str | None:
    """The proxy the environment configures for ``url`` (None: connect directly)."""
    parts = urlsplit(url)
    proxies = urllib.request.getproxies()
    proxy = proxies.get(parts.scheme)
    if not proxy or urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    return proxy


class HttpPoster:
    """POSTs to any URL over kept-alive connections; not thread-safe (one per worker)."""

    def __init__(self, *, timeout: float, verify_tls: bool = True,
                 secrets: frozenset[str] = frozenset()) -> None:
        import urllib3

        self.timeout = urllib3.Timeout(connect=timeout, read=timeout)
        self.verify_tls = verify_tls
        self.secrets = secrets
        self._managers: dict[str | None, urllib3.PoolManager] = {}
        self._proxies: dict[str, str | None] = {}  # the environment is read once per URL

    def _manager(self, url: str) -> urllib3.PoolManager:
        if url not in self._proxies:
            self._proxies[url] = _proxy_for(url)
        proxy = self._proxies[url]
        manager = self._managers.get(proxy)
        if manager is None:
            options: dict[str, Any] = {"num_pools": 4, "maxsize": 1, "block": False,
                                       "retries": False, "timeout": self.timeout}
            if not self.verify_tls:
                options["cert_reqs"] = "CERT_NONE"
                options["assert_hostname"] = False
            import urllib3

            manager = (urllib3.ProxyManager(proxy, **options) if proxy
                       else urllib3.PoolManager(**options))
            self._managers[proxy] = manager
        return manager

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> HttpResponse:
        """Send one request; raises :class:`DeliveryError` (scrubbed) when no answer came."""
        from urllib3.exceptions import HTTPError as Urllib3Error

        try:
            response = self._manager(url).request(
                "POST", url, body=body, headers=headers, redirect=False, retries=False,
                preload_content=True)
        except Urllib3Error as exc:
            # urllib3 names the host and path in its messages: say what happened, not where
            reason = getattr(exc, "reason", None) or exc
            raise DeliveryError(f"{type(reason).__name__}: "
                                f"{scrub(str(reason), self.secrets)}") from None
        return HttpResponse(response.status,
                            {k.lower(): v for k, v in response.headers.items()},
                            response.data)

    def close(self) -> None:
        for manager in self._managers.values():
            manager.clear()
        self._managers.clear()
