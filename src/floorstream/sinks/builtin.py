"""Builtin sinks, registered through ``register_sinks`` like any plugin's."""

from __future__ import annotations

from typing import Any

from floorstream.plugin import Registry, hookimpl
from floorstream.sinks.apprise_sink import AppriseSink
from floorstream.sinks.email import EmailSink
from floorstream.sinks.feed import FeedSink
from floorstream.sinks.file import FileSink
from floorstream.sinks.mqtt import MqttSink
from floorstream.sinks.webhook import WebhookSink


@hookimpl
def register_sinks(registry: Registry[Any]) -> None:
    for sink in (FeedSink, WebhookSink, EmailSink, MqttSink, FileSink, AppriseSink):
        registry.add(sink)
