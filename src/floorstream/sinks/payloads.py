"""Payload shapes of the chat services' webhooks, built from a Post.

Pure functions, no I/O: Slack (incoming webhook or ``chat.postMessage``), Microsoft Teams
Workflows (an Adaptive Card in a ``message``), Mattermost (incoming webhook or ``/api/v4/posts``)
and the generic Activity Streams 2.0 object.
"""

from __future__ import annotations

from typing import Any

from floorstream.model import Post, Severity
from floorstream.plugin import Outgoing

__all__ = ["activity", "mattermost", "plain_text", "slack", "teams"]

_ICON = {Severity.INFO: "ℹ️", Severity.NOTICE: "🔵", Severity.WARNING: "⚠️",
         Severity.CRITICAL: "🚨"}
_CARD_COLOR = {Severity.INFO: "Default", Severity.NOTICE: "Accent",
               Severity.WARNING: "Warning", Severity.CRITICAL: "Attention"}


def _when(post: Post) -> str:
    return post.occurred_at.strftime("%Y-%m-%d %H:%M UTC")


def plain_text(post: Post) -> str:
    """Summary, body and links as plain text (e-mail, Apprise, MQTT consumers)."""
    parts = [post.summary]
    if post.body:
        parts.append(post.body)
    parts.append(f"{post.severity.label} · {post.subject} · {post.source} · {_when(post)}")
    parts.extend(f"{name}: {href}" for name, href in post.links.items())
    return "\n\n".join(parts)


def activity(post: Post, outgoing: Outgoing) -> dict[str, Any]:
    """The AS2.0 object plus the team it is for and, for a digest, the folded posts."""
    body = post.as_activity()
    body["floorstream:team"] = outgoing.team
    if outgoing.digest:
        body["object"]["type"] = "Collection"
        body["object"]["items"] = [p.as_activity() for p in outgoing.digest]
    return body


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack(post: Post, outgoing: Outgoing, channel: str | None = None) -> dict[str, Any]:
    icon = _ICON[post.severity]
    text = f"{icon} {_slack_escape(post.summary)}"
    headline = f"{icon} *{_slack_escape(post.summary)}*"
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": headline}},
    ]
    if post.body:
        blocks.append({"type": "section",
                       "text": {"type": "mrkdwn", "text": _slack_escape(post.body)[:2900]}})
    context = (f"{post.severity.label} · {_slack_escape(post.subject)} · {post.source} · "
               f"{_when(post)}")
    links = " · ".join(f"<{href}|{_slack_escape(name)}>" for name, href in post.links.items())
    blocks.append({"type": "context", "elements": [
        {"type": "mrkdwn", "text": context + (f" · {links}" if links else "")}]})
    payload: dict[str, Any] = {"text": text, "blocks": blocks}
    if channel:
        payload["channel"] = channel
    if outgoing.thread:
        payload["thread_ts"] = outgoing.thread
    return payload


def teams(post: Post, outgoing: Outgoing) -> dict[str, Any]:
    """A Teams Workflows ("When a Teams webhook request is received") message with a card."""
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": post.summary, "weight": "Bolder", "wrap": True,
         "size": "Medium", "color": _CARD_COLOR[post.severity]},
    ]
    if post.body:
        body.append({"type": "TextBlock", "text": post.body, "wrap": True})
    body.append({"type": "FactSet", "facts": [
        {"title": "Severity", "value": post.severity.label},
        {"title": "Subject", "value": post.subject},
        {"title": "Source", "value": post.source},
        {"title": "When", "value": _when(post)},
    ]})
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard", "version": "1.4", "body": body,
    }
    if post.links:
        card["actions"] = [{"type": "Action.OpenUrl", "title": name, "url": href}
                           for name, href in post.links.items()]
    return {"type": "message", "attachments": [
        {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None,
         "content": card}]}


def _markdown(post: Post) -> str:
    lines = [f"{_ICON[post.severity]} **{post.summary}**"]
    if post.body:
        lines.append(post.body)
    meta = f"_{post.severity.label} · {post.subject} · {post.source} · {_when(post)}_"
    links = " · ".join(f"[{name}]({href})" for name, href in post.links.items())
    lines.append(meta + (f" · {links}" if links else ""))
    return "\n".join(lines)


def mattermost(post: Post, outgoing: Outgoing, channel: str | None = None,
               api: bool = False) -> dict[str, Any]:
    """Incoming-webhook payload, or with ``api`` the ``/api/v4/posts`` body (threads via
    ``root_id``; ``channel`` is then the channel id)."""
    text = _markdown(post)
    if api:
        payload: dict[str, Any] = {"channel_id": channel, "message": text,
                                   "props": {"floorstream_post": post.id}}
        if outgoing.thread:
            payload["root_id"] = outgoing.thread
        return payload
    payload = {"text": text, "props": {"floorstream_post": post.id}}
    if channel:
        payload["channel"] = channel
    return payload
