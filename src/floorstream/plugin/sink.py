"""The sink contract.

A sink gets a post that is already committed, together with its outbox row's idempotency key.
It raises on failure; the delivery worker decides about retries, so a sink stays a thin
translation from a Post to one service's API.

Errors tell the worker what to do next::

    DeliveryError              try again later, with exponential backoff and jitter
    ├── RetryAfter             try again after the delay the service asked for (HTTP 429)
    └── PermanentDeliveryError do not retry: the request itself is wrong (HTTP 400, 404…)

Their messages end up in ``fs_deliveries.last_error`` and in logs, so a sink must never put a
webhook URL, password or token in them; the worker scrubs known secrets once more on top.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar
from urllib.parse import parse_qsl, quote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from floorstream.errors import FloorstreamError
from floorstream.model import Post
from floorstream.plugin.durations import Duration
from floorstream.plugin.generic import config_model_from_generic

__all__ = ["DeliveryError", "Outgoing", "PermanentDeliveryError", "RetryAfter",
           "RetrySettings", "Sink", "SinkConfig", "fragments", "scrub", "secret_values"]


class DeliveryError(FloorstreamError):
    """A delivery failed in a way that may pass: retry with backoff."""


class RetryAfter(DeliveryError):
    """The service asked to be called again after ``seconds`` (429 with Retry-After)."""

    def __init__(self, message: str, seconds: float) -> None:
        super().__init__(message)
        self.seconds = seconds


class PermanentDeliveryError(DeliveryError):
    """Retrying cannot help (the payload or address is rejected): fail the delivery now."""


class RetrySettings(BaseModel):
    """How a sink's failed deliveries are retried (tiny values make tests fast)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    max_attempts: int = Field(default=10, ge=1, description="then the delivery is failed")
    max_age: Duration = Field(default=24 * 3600.0,
                              description="a delivery older than this is failed, not retried")
    initial: Duration = Field(default=1.0, description="first backoff delay")
    max_delay: Duration = Field(default=300.0, description="backoff delays stop growing here")
    jitter: Duration = Field(default=1.0, description="random extra delay, up to this much")


class SinkConfig(BaseModel):
    """Keys every sink accepts; a sink type subclasses it with its own keys."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    type: str = Field(description="the sink plugin (webhook, email, mqtt, file…)")
    retry: RetrySettings = Field(default_factory=RetrySettings)
    workers: int = Field(default=1, ge=1, le=32,
                         description="delivery threads for this sink (teams run in parallel)")


@dataclass(frozen=True)
class Outgoing:
    """What the worker hands a sink besides the post.

    Fields:
        idempotency_key: stable for one (post, sink): a retried request carries the same key.
        team: the team whose policy sent it.
        thread: the service's reference of the post this one refers to (updates, resolves or
            retracts: Slack ``ts``, e-mail
            Message-ID…), when the sink returned one for it; lets the sink reply in a thread.
        digest: the posts folded into this message when it is a digest, oldest first.
    """

    idempotency_key: str
    team: str
    thread: str | None = None
    digest: tuple[Post, ...] = ()


SinkConfigT = TypeVar("SinkConfigT", bound=SinkConfig)


class Sink(Generic[SinkConfigT]):
    """Base class of sinks, generic in their config model.

    ``class MySink(Sink[MyConfig])`` sets ``config_model`` to ``MyConfig`` and types
    ``self.config`` as one. Subclasses set ``name`` and override :meth:`deliver`.
    """

    name: ClassVar[str]
    config_model: ClassVar[type[SinkConfig]] = SinkConfig
    #: True when ``deliver`` can thread a reply to an earlier message of this sink.
    threads: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        model = config_model_from_generic(cls, Sink, SinkConfig)
        if model is not None:
            cls.config_model = model

    def __init__(self, config: SinkConfigT) -> None:
        self.config: SinkConfigT = config

    def deliver(self, post: Post, outgoing: Outgoing) -> str | None:
        """Send one post (or a digest post); return the service's reference of the message
        (for threading later replies) or None. Raise a :class:`DeliveryError` on failure."""
        raise NotImplementedError

    def close(self) -> None:
        """Release connections."""

    def secrets(self) -> set[str]:
        """Values that must never be logged: every ``SecretStr`` in the config."""
        return secret_values(self.config)


def secret_values(model: BaseModel) -> set[str]:
    """All ``SecretStr`` values inside a pydantic model (nested models, lists and dicts too)."""
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, SecretStr):
            if value.get_secret_value():
                found.add(value.get_secret_value())
        elif isinstance(value, BaseModel):
            for name in type(value).model_fields:
                walk(getattr(value, name))
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item)

    walk(model)
    return found


def fragments(secret: str) -> set[str]:
    """A secret and the parts of it that are secret on their own.

    A webhook URL is secret because of its path (``/services/T00/B00/XXXX``); a service that
    echoes only the path in an error must not leak it either. So a URL contributes its
    path, its query, its password and every path segment or query value of 8+ characters.
    """
    found = {secret}
    if "://" not in secret:
        return found
    parsed = urlsplit(secret)
    if parsed.password:
        found.add(parsed.password)
    for part in (parsed.path, parsed.query):
        if len(part) > 1:
            found.add(part)
    pieces = [*parsed.path.split("/"), *(v for _, v in parse_qsl(parsed.query))]
    found.update(p for p in pieces if len(p) >= 8)
    return found


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret, its secret parts and their URL-quoted forms as ``***``."""
    expanded: set[str] = set()
    for secret in secrets:
        expanded |= fragments(secret)
    secrets = expanded
    for secret in sorted((s for s in secrets if len(s) >= 4), key=len, reverse=True):
        text = text.replace(secret, "***")
        quoted = quote(secret, safe="")
        if quoted != secret:
            text = text.replace(quoted, "***")
    return text
