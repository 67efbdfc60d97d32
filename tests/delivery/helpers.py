"""Small builders for the delivery tests: configs, posts, outbox commits.

The HTTP server, waiting and daemons come from ``tests/support`` (``support.http_receiver``,
``support.wait_for``, ``support.DaemonRunner``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from floorstream.config import Config, parse_config
from floorstream.model import Post, Severity, event_id
from floorstream.plugins import Plugins, build_plugins
from floorstream.store.store import CommitBatch, Store


def plugins() -> Plugins:
    return build_plugins(load_entry_points=False)


def config(text: str, environ: dict[str, str] | None = None) -> tuple[Config, Plugins]:
    found = plugins()
    return parse_config(text, found, environ=environ or {}), found


T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


def make_post(n: int, team: str, *, severity: Severity = Severity.WARNING,
              subject: str = "press-07", clears: str | None = None,
              created_at: datetime | None = None) -> Post:
    return Post(id=event_id("test", subject, str(n), f"t.{team}"), type="machine.state_changed",
                source="test", subject=subject, summary=f"{team} post {n}", severity=severity,
                teams=(team,), occurred_at=T0 + timedelta(seconds=n), clears=clears,
                created_at=created_at or datetime.now(UTC))


def commit(store: Store, posts: list[Post], sinks: dict[str, list[str]]) -> None:
    """Commit posts with one outbox row per (post, team sink), as the pipeline does."""
    batch = CommitBatch(posts=list(posts))
    for post in posts:
        for team in post.teams:
            for sink in sinks.get(team, []):
                batch.deliveries.append((post.id, team, sink))
    store.commit(batch)

