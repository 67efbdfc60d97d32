"""``apprise``: any Apprise URL (Discord, Telegram, Pushover, ntfy, Gotify, …), optional extra.

``pip install 'floorstream[apprise]'``. Without the package the sink type still exists, so a
config naming it gets a clear "install the extra" error from ``floorstream check`` instead of an
"unknown sink type". Apprise URLs embed tokens, so they are secrets (use ``${ENV}``).
"""

from __future__ import annotations

import importlib.util
from typing import Any, ClassVar

from pydantic import Field, SecretStr, model_validator

from floorstream.model import Post, Severity
from floorstream.plugin import DeliveryError, Outgoing, Sink, SinkConfig
from floorstream.sinks.payloads import plain_text

__all__ = ["AppriseConfig", "AppriseSink", "apprise_installed"]


def apprise_installed() -> bool:
    return importlib.util.find_spec("apprise") is not None


class AppriseConfig(SinkConfig):
    urls: list[SecretStr] = Field(min_length=1, description="Apprise URLs; use ${ENV}")

    @model_validator(mode="after")
    def _installed(self) -> AppriseConfig:
        if not apprise_installed():
            raise ValueError("the apprise sink needs the apprise package: "
                             "pip install 'floorstream[apprise]'")
        return self


class AppriseSink(Sink[AppriseConfig]):
    name: ClassVar[str] = "apprise"

    def __init__(self, config: AppriseConfig) -> None:
        super().__init__(config)
        import apprise  # the optional extra; checked by the config model

        self._apprise: Any = apprise
        self.notifier = apprise.Apprise()
        for url in config.urls:
            if not self.notifier.add(url.get_secret_value()):
                raise ValueError(f"sink {config.name!r}: an Apprise URL was not understood")

    def deliver(self, post: Post, outgoing: Outgoing) -> str | None:
        kind = self._apprise.NotifyType
        notify_type = {Severity.CRITICAL: kind.FAILURE, Severity.WARNING: kind.WARNING}.get(
            post.severity, kind.INFO)
        ok = self.notifier.notify(title=post.summary, body=plain_text(post),
                                  notify_type=notify_type)
        if not ok:
            raise DeliveryError("apprise could not notify every URL of this sink")
        return None
