"""``floorstream feed`` and ``floorstream explain``.

The feed lists a team's posts in the order they were committed (newest last; ``--follow``
appends as they come), which is also the order its sinks receive them. Each line starts with
the time the post was made, so the times only go forward; a post about an event that happened
earlier (a supply message that arrived late, an ERP change read after a restart) says when the
event happened at the end of the line: ``(event 2026-11-20 14:00)``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, tzinfo
from typing import Any

from floorstream.cli.common import add_config_arg, add_store_args, config_path, load, open_store
from floorstream.config import Config
from floorstream.errors import ConfigError
from floorstream.model import Event, Post, Severity, utcnow
from floorstream.processing import Processor
from floorstream.route import Router
from floorstream.store.store import Store

SEVERITIES = [s.name.lower() for s in Severity]
POST_URN = "urn:floorstream:post:"  # the ids of ``feed --json`` (Activity Streams objects)
#: an event this much older than its post shows its own time at the end of the feed line
LATE = 60.0


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1 (``--limit``)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def _post_id(text: str) -> str:
    """A post id as stored, or as the feed shows it (``urn:floorstream:post:<id>``)."""
    text = text.strip()
    return text[len(POST_URN):] if text.startswith(POST_URN) else text


def register(subparsers: Any) -> None:
    feed = subparsers.add_parser("feed", help="show a team's posts")
    add_store_args(feed)
    feed.add_argument("--team", "-t", required=True)
    feed.add_argument("--limit", "-n", type=positive_int, default=20)
    feed.add_argument("--severity", type=str.lower, choices=SEVERITIES,
                      help="at least this severity")
    feed.add_argument("--follow", "-f", action="store_true", help="keep printing new posts")
    feed.add_argument("--json", action="store_true",
                      help="one Activity Streams 2.0 object per line")
    feed.add_argument("--explain", action="store_true", help="say which rule routed each post")
    feed.set_defaults(func=run_feed)

    explain = subparsers.add_parser(
        "explain", help="which routing rule sends a post (or a hypothetical event) where")
    add_config_arg(explain)
    explain.add_argument("post_id", nargs="?", type=_post_id,
                         help="a stored post's id (as `feed` shows it, urn:floorstream:post:… "
                              "included)")
    explain.add_argument("--source")
    explain.add_argument("--type")
    explain.add_argument("--subject", default="example")
    explain.add_argument("--severity", type=str.lower, choices=SEVERITIES, default="info")
    explain.add_argument("--attr", action="append", default=[], metavar="KEY=VALUE",
                         type=_key_value)
    explain.set_defaults(func=run_explain)


def _line(post: Post, explain: bool, zone: tzinfo = UTC) -> str:
    # on the clock the summaries use (display.timezone, else UTC) and labelled with it: a
    # line on another clock than its own summary's times would mix two; unlabelled, the
    # times read an hour off on a plant server set to Europe/Berlin
    when = post.created_at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %Z")
    text = f"{when}  {post.severity.label:<8}  {post.summary}"
    if (post.created_at - post.occurred_at).total_seconds() >= LATE:
        text += f"  (event {post.occurred_at.astimezone(zone).strftime('%Y-%m-%d %H:%M %Z')})"
    if explain:
        why = "; ".join(f"{r['team']} ← {r['rule']}" for r in post.routing)
        text += f"\n    routed: {why}"
    return text


def _feed_store(args: argparse.Namespace) -> tuple[Store, Config | None]:
    """The store (``--store``, else the config's) and the config when there is one: with
    ``--store`` and no config file the teams are those with posts in the store."""
    if args.store:
        try:
            config = load(args)[0] if config_path(args).exists() else None
        except ConfigError:  # the store was named: a broken config only costs the team list
            config = None
        return Store.open(args.store), config
    config = load(args)[0]
    return Store.open(config.settings.store), config


def run_feed(args: argparse.Namespace) -> int:
    store, config = _feed_store(args)
    level = Severity.parse(args.severity) if args.severity else None
    teams = (set(config.settings.teams) | {config.settings.default_team,
                                           config.settings.admin_team}) if config else set()
    zone = (config.settings.display.zone if config else None) or UTC
    if args.team not in teams and args.team not in store.teams():
        known = sorted(teams) or store.teams()
        where = "configured teams" if config else "teams with posts in the store"
        print(f"floorstream: unknown team {args.team!r}; {where}: "
              f"{', '.join(known) or '(none)'}", file=sys.stderr)
        store.close()
        return 2

    def show(posts: list[Post]) -> None:
        for post in posts:
            print(json.dumps(post.as_activity(), ensure_ascii=False) if args.json
                  else _line(post, args.explain, zone))
        sys.stdout.flush()

    posts = list(reversed(store.feed(args.team, limit=args.limit, min_severity=level)))
    show(posts)
    if not args.follow:
        if not posts:
            print(f"no posts for team {args.team!r} yet", file=sys.stderr)
        return 0
    last = store.post_seq(posts[-1].id) if posts else 0
    try:
        while True:
            time.sleep(0.5)
            new = store.feed(args.team, limit=500, min_severity=level, after_seq=last or 0)
            if new:
                show(new)
                last = store.post_seq(new[-1].id) or last
    except KeyboardInterrupt:
        return 0


def run_explain(args: argparse.Namespace) -> int:
    config, plugins = load(args)
    router = Router(config.settings.routes, config.settings.default_team)
    if args.post_id:
        post = open_store(args).post(args.post_id)
        if post is None:
            print(f"no post with id {args.post_id}", file=sys.stderr)
            return 1
        print(f"{post.summary}")
        for entry in post.routing:
            print(f"  {entry['team']}: chosen by {entry['rule']}")
        event = Event.create(type=post.type, source=post.source, subject=post.subject,
                             position="explain", occurred_at=post.occurred_at,
                             severity=post.severity,
                             attrs=dict(t.split(":", 1) for t in post.tags if ":" in t))
    else:
        if not args.source or not args.type:
            print("give a post id, or --source and --type", file=sys.stderr)
            return 2
        attrs = dict(args.attr)
        event = Event.create(type=args.type, source=args.source, subject=args.subject,
                             position="explain", occurred_at=utcnow(),
                             severity=Severity.parse(args.severity), attrs=attrs)
        routed, _ = Processor(config, plugins).router.route(event)
        print(f"teams: {', '.join(routed)}")
    for verdict in router.explain(event):
        mark = "✓" if verdict.matched else "✗"
        chosen = f" → {', '.join(verdict.teams)}" if verdict.matched else ""
        print(f"  {mark} {verdict.rule}: {verdict.reason}{chosen}")
    return 0
