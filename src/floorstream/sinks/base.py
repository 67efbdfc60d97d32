"""The sink contract.

A sink gets a post that is already committed, together with its outbox row's idempotency key.
It raises on failure; the delivery worker decides about retries, so a sink stays a thin
translation from a Post to one service's API.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from floorstream.model import Post

__all__ = ["Sink", "SinkConfig"]


class SinkConfig(BaseModel):
    """Keys every sink accepts; a sink type subclasses it with its own keys."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    type: str = Field(description="the sink plugin (webhook, email, mqtt, file…)")


class Sink:
    name: ClassVar[str]
    config_model: ClassVar[type[SinkConfig]] = SinkConfig

    def __init__(self, config: SinkConfig) -> None:
        self.config = config

    def deliver(self, post: Post, *, idempotency_key: str) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Release connections."""
