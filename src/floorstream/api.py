"""The library API: ``floorstream.open()`` → :class:`Stream`, no daemon needed.

ERP customisation code calls :meth:`Stream.publish` from its own transaction hooks; the event
takes the same detect → render → route → commit path as the daemon's (the same
:class:`~floorstream.pipeline.Pipeline`), synchronously, and the post is durable when the
call returns.

Logging: the library logs through the standard ``logging`` tree (loggers named
``floorstream.*``) and prints nothing unless the host configures logging; the daemon's
``floorstream run`` sets up its own output instead.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from floorstream.config import Config, load_config, parse_mapping
from floorstream.model import Change, Event, Post, Severity, utcnow
from floorstream.pipeline import Pipeline
from floorstream.plugins import Plugins, build_plugins
from floorstream.processing import Envelope, Processor
from floorstream.store.store import Store

__all__ = ["Stream", "open"]


def open(
    config: str | Path | Mapping[str, Any] | Config | None = None,
    *,
    store: str | None = None,
    plugins: Plugins | None = None,
) -> Stream:
    """Open a stream from a config file, a config mapping, or just a store URL.

    ``open("floorstream.yaml")``, ``open(store="sqlite:///posts.db")`` or
    ``open({"store": "...", "routes": [...]})``.
    """
    given = plugins
    plugins = plugins or build_plugins()

    def validate(with_plugins: Plugins) -> Config:
        if isinstance(config, str | Path):
            if "://" in str(config) and store is None:
                return parse_mapping({"store": str(config)}, with_plugins)
            return load_config(config, with_plugins)
        data: dict[str, Any] = dict(config or {}) if not isinstance(config, Config) else {}
        if store is not None:
            data["store"] = store
        return parse_mapping(data, with_plugins)

    if isinstance(config, Config):
        return Stream(config, plugins)
    loaded = validate(plugins)
    disable = loaded.settings.plugins.disable
    if disable and given is None:
        # the config's plugins.disable applies to the library as to the daemon
        plugins = build_plugins(disable=disable)
        loaded = validate(plugins)
    return Stream(loaded, plugins)


class Stream:
    """A handle on floorstream's store and pipeline for embedding code. Thread-safe.

    A publish runs on the very :class:`~floorstream.pipeline.Pipeline` the daemon uses (the
    daemon's own, when the stream comes from :meth:`floorstream.daemon.Daemon.stream`): the
    same detector state, flood control, commit retry while the store is unreachable, and
    ``post_committed`` hook, synchronously on the caller's thread.
    """

    def __init__(self, config: Config, plugins: Plugins, store: Store | None = None, *,
                 pipeline: Pipeline | None = None) -> None:
        self.config = config
        self.plugins = plugins
        if pipeline is not None:
            self.store = pipeline.store
            self.pipeline = pipeline
        else:
            self.store = store or Store.open(config.settings.store)
            processor = Processor(config, plugins, states=self.store)
            self.pipeline = Pipeline(processor, self.store, config.settings.pipeline, plugins)
        self._owns_store = pipeline is None and store is None

    @property
    def processor(self) -> Processor:
        return self.pipeline.processor

    def publish(
        self,
        *,
        source: str,
        subject: str,
        type: str,
        fields: Mapping[str, Any] | None = None,
        severity: str | Severity = Severity.INFO,
        summary: str | None = None,
        key: str | None = None,
        occurred_at: datetime | None = None,
        attrs: Mapping[str, str] | None = None,
    ) -> Post | None:
        """Record an event and return its post (None if flood control folded it away).

        ``key`` makes retries safe: the same (source, subject, type, key) is posted once. It
        defaults to a hash of the fields and ``occurred_at``, so pass ``occurred_at`` (e.g. the
        record's write_date) or ``key`` when your code may publish the same change twice.
        """
        when = occurred_at or utcnow()
        body = dict(fields or {})
        if summary is not None:
            body["summary"] = summary
        position = key or _content_key(body, when)
        event = Event.create(type=type, source=source, subject=subject, position=position,
                             occurred_at=when, severity=Severity.parse(severity), fields=body,
                             attrs=dict(attrs or {}))
        posts = self._run([Envelope(source, event=event)])
        mine = [p for p in posts if p.id == event.id]
        if mine:
            return mine[0]
        return self.store.post(event.id)

    def publish_change(self, change: Change) -> list[Post]:
        """Run a raw change through the source's configured detectors; returns new posts."""
        return self._run([Envelope(change.source, change=change)])

    def _run(self, envelopes: list[Envelope]) -> list[Post]:
        return self.pipeline.run_now(envelopes)

    def feed(self, team: str, *, limit: int = 50, since: datetime | None = None,
             min_severity: str | Severity | None = None) -> list[Post]:
        """A team's posts, newest first."""
        level = Severity.parse(min_severity) if min_severity is not None else None
        return self.store.feed(team, limit=limit, since=since, min_severity=level)

    def close(self) -> None:
        if self._owns_store:
            self.store.close()

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _content_key(fields: Mapping[str, Any], when: datetime) -> str:
    text = json.dumps({"f": fields, "t": when.isoformat()}, sort_keys=True, default=str)
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()
