"""``webhook``: POST a post as JSON — generic AS2.0, Slack, Teams Workflows or Mattermost.

With ``token`` (and ``channel``) the Slack and Mattermost formats call the services' APIs
(``chat.postMessage``, ``/api/v4/posts``) instead of incoming webhooks: those return the message
id, which is what lets a clearing post ("Press 7 running again after 42 min") reply in the
thread of the alarm it clears. Incoming webhooks cannot thread.

Every request carries an idempotency key header that stays the same across retries. A 429 (or
503) with ``Retry-After`` makes the worker wait as long as asked; other 4xx answers except 408
are permanent (retrying a rejected payload does not help). The URL and tokens are secrets: no
error message of this module contains them.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar, Literal

from pydantic import Field, SecretStr, field_validator

from floorstream.model import Post
from floorstream.plugin import (
    DeliveryError,
    Duration,
    Outgoing,
    PermanentDeliveryError,
    RetryAfter,
    Sink,
    SinkConfig,
    scrub,
)
from floorstream.sinks import payloads
from floorstream.sinks.http import HttpPoster, HttpResponse

__all__ = ["WebhookConfig", "WebhookSink", "retry_after_seconds"]


class WebhookConfig(SinkConfig):
    url: SecretStr = Field(description="the webhook or API URL; use ${ENV}: it is a secret")
    format: Literal["activity", "slack", "teams", "mattermost"] = Field(
        default="activity", description="payload shape")
    token: SecretStr | None = Field(default=None, description="Slack bot token / Mattermost "
                                                              "access token: use the API, thread")
    channel: str | None = Field(default=None, description="channel (Slack name/id, Mattermost "
                                                          "channel id with a token)")
    headers: dict[str, SecretStr] = Field(default_factory=dict, description="extra headers")
    idempotency_header: str = Field(default="Idempotency-Key")
    timeout: Duration = Field(default=10.0, description="per request")
    verify_tls: bool = True

    @field_validator("url")
    @classmethod
    def _http(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().startswith(("http://", "https://")):
            raise ValueError("expected an http:// or https:// URL")
        return value


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds: either delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class WebhookSink(Sink[WebhookConfig]):
    name: ClassVar[str] = "webhook"
    threads: ClassVar[bool] = True

    def __init__(self, config: WebhookConfig) -> None:
        super().__init__(config)
        self.cfg = config
        self.api = config.token is not None and config.format in ("slack", "mattermost")
        self._client: HttpPoster | None = None
        self._headers = {name: value.get_secret_value()
                         for name, value in config.headers.items()}
        self._headers["Content-Type"] = "application/json; charset=utf-8"
        if config.token is not None:
            self._headers["Authorization"] = f"Bearer {config.token.get_secret_value()}"

    @property
    def client(self) -> HttpPoster:
        """One keep-alive client per sink instance (each worker thread has its own)."""
        if self._client is None:
            self._client = HttpPoster(timeout=self.cfg.timeout, verify_tls=self.cfg.verify_tls,
                                      secrets=frozenset(self.secrets()))
        return self._client

    def payload(self, post: Post, outgoing: Outgoing) -> dict[str, Any]:
        fmt, channel = self.cfg.format, self.cfg.channel
        if fmt == "slack":
            return payloads.slack(post, outgoing, channel)
        if fmt == "teams":
            return payloads.teams(post, outgoing)
        if fmt == "mattermost":
            return payloads.mattermost(post, outgoing, channel, api=self.api)
        return payloads.activity(post, outgoing)

    def deliver(self, post: Post, outgoing: Outgoing) -> str | None:
        headers = dict(self._headers)
        headers[self.cfg.idempotency_header] = outgoing.idempotency_key
        body = json.dumps(self.payload(post, outgoing), ensure_ascii=False).encode()
        response = self.client.post(self.cfg.url.get_secret_value(), body, headers)
        self._check(response)
        return self._reference(response)

    def _check(self, response: HttpResponse) -> None:
        status = response.status
        if 200 <= status < 300:
            return
        detail = scrub(response.text[:200].strip(), self.secrets())
        message = f"HTTP {status} from {self.cfg.name}" + (f": {detail}" if detail else "")
        if status in (429, 503):
            delay = retry_after_seconds(response.headers.get("retry-after"))
            if delay is not None:
                raise RetryAfter(message, delay)
            raise DeliveryError(message)
        if 300 <= status < 400:  # not followed: it could carry the token elsewhere
            raise PermanentDeliveryError(f"HTTP {status} from {self.cfg.name}: a redirect "
                                         "(not followed; configure the final URL)")
        if 400 <= status < 500 and status not in (408, 409, 425):
            raise PermanentDeliveryError(message)
        raise DeliveryError(message)

    def _reference(self, response: HttpResponse) -> str | None:
        if not self.api:
            return None
        try:
            data = response.json()
        except ValueError:
            return None
        if not isinstance(data, dict):
            return None
        if self.cfg.format == "slack":
            if not data.get("ok", False):
                error = str(data.get("error", "unknown error"))
                if error in ("ratelimited", "internal_error", "service_unavailable",
                             "request_timeout", "fatal_error"):
                    raise DeliveryError(f"Slack API: {error}")
                raise PermanentDeliveryError(f"Slack API: {error}")
            ts = data.get("ts")
            return str(ts) if ts else None
        post_id = data.get("id")
        return str(post_id) if post_id else None

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
