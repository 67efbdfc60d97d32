"""The webhook sink's HTTP client on real sockets: proxies from the environment, NO_PROXY,
redirects not followed, refused connections reported without the secret URL."""

from __future__ import annotations

import socket

import pytest

from floorstream.model import Severity
from floorstream.plugin.sink import DeliveryError, Outgoing, PermanentDeliveryError
from floorstream.sinks.webhook import WebhookConfig, WebhookSink
from support import http_receiver

from .helpers import make_post

SECRET = "B0TT0KEN-8d7c6b5a"


def _sink(url: str) -> WebhookSink:
    return WebhookSink(WebhookConfig(name="hook", type="webhook", url=url))


def _send(sink: WebhookSink) -> str | None:
    post = make_post(1, "maintenance", severity=Severity.CRITICAL)
    try:
        return sink.deliver(post, Outgoing("key-1", "maintenance"))
    finally:
        sink.close()


def test_http_proxy_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    with http_receiver() as rec:  # the recording server plays the forward proxy
        proxy = rec.url
        monkeypatch.setenv("HTTP_PROXY", proxy)
        monkeypatch.setenv("http_proxy", proxy)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        _send(_sink(f"http://hooks.example.invalid/services/{SECRET}"))
    (request,) = rec.requests
    assert request.path == f"http://hooks.example.invalid/services/{SECRET}"  # absolute form
    assert request.headers["idempotency-key"] == "key-1"
    assert request.json["summary"] == "maintenance post 1"


def test_no_proxy_hosts_are_called_directly(monkeypatch: pytest.MonkeyPatch) -> None:
    with http_receiver() as rec:
        url = rec.url
        monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
        monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        monkeypatch.setenv("no_proxy", "127.0.0.1")
        _send(_sink(f"{url}/hook"))
    assert [r.path for r in rec.requests] == ["/hook"]


def test_a_redirect_is_not_followed_and_fails_for_good() -> None:
    with http_receiver() as rec:
        url = rec.url
        rec.reply = lambda r: (302, {"Location": f"{url}/elsewhere"}, b"")
        with pytest.raises(PermanentDeliveryError, match="redirect"):
            _send(_sink(f"{url}/hook"))
    assert [r.path for r in rec.requests] == ["/hook"]


def test_a_refused_connection_is_retryable_and_names_no_secret() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(DeliveryError) as caught:
        _send(_sink(f"http://127.0.0.1:{port}/hooks/{SECRET}"))
    assert not isinstance(caught.value, PermanentDeliveryError)
    assert "NewConnectionError" in str(caught.value) or "refused" in str(caught.value)
    assert SECRET not in str(caught.value)
