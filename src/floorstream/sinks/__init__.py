"""Sinks: deliver committed posts to where people work (chat, mail, boards)."""

from floorstream.sinks.base import Sink, SinkConfig

__all__ = ["Sink", "SinkConfig"]
