"""``floorstream feed`` and ``floorstream explain``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from floorstream.cli.common import add_config_arg, add_store_args, load, open_store
from floorstream.model import Event, Post, Severity, utcnow
from floorstream.processing import Processor
from floorstream.route import Router


def register(subparsers: Any) -> None:
    feed = subparsers.add_parser("feed", help="show a team's posts")
    add_store_args(feed)
    feed.add_argument("--team", "-t", required=True)
    feed.add_argument("--limit", "-n", type=int, default=20)
    feed.add_argument("--severity", help="at least this severity (info, notice, warning…)")
    feed.add_argument("--follow", "-f", action="store_true", help="keep printing new posts")
    feed.add_argument("--json", action="store_true",
                      help="one Activity Streams 2.0 object per line")
    feed.add_argument("--explain", action="store_true", help="say which rule routed each post")
    feed.set_defaults(func=run_feed)

    explain = subparsers.add_parser(
        "explain", help="which routing rule sends a post (or a hypothetical event) where")
    add_config_arg(explain)
    explain.add_argument("post_id", nargs="?", help="a stored post's id")
    explain.add_argument("--source")
    explain.add_argument("--type")
    explain.add_argument("--subject", default="example")
    explain.add_argument("--severity", default="info")
    explain.add_argument("--attr", action="append", default=[], metavar="KEY=VALUE")
    explain.set_defaults(func=run_explain)


def _line(post: Post, explain: bool) -> str:
    when = post.occurred_at.strftime("%Y-%m-%d %H:%M:%S")
    text = f"{when}  {post.severity.label:<8}  {post.summary}"
    if explain:
        why = "; ".join(f"{r['team']} ← {r['rule']}" for r in post.routing)
        text += f"\n    routed: {why}"
    return text


def run_feed(args: argparse.Namespace) -> int:
    store = open_store(args)
    level = Severity.parse(args.severity) if args.severity else None

    def show(posts: list[Post]) -> None:
        for post in posts:
            print(json.dumps(post.as_activity(), ensure_ascii=False) if args.json
                  else _line(post, args.explain))
        sys.stdout.flush()

    posts = list(reversed(store.feed(args.team, limit=args.limit, min_severity=level)))
    show(posts)
    if not args.follow:
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
        attrs = dict(a.split("=", 1) for a in args.attr)
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
