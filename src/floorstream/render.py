"""Events → the one line people read.

Three layers, most specific first: a ``render_post`` plugin, the source's summary template from
the config, the default phrasing below. Templates run in Jinja2's immutable sandbox, so a config
file can format values but never call into Python.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping
from typing import Any

import jinja2
import structlog
from jinja2.sandbox import ImmutableSandboxedEnvironment

from floorstream import phrases_supply, phrasing
from floorstream.model import Event

__all__ = ["DEFAULT_PHRASES", "Renderer", "default_summary", "template_environment"]

log = structlog.get_logger(__name__)

MAX_SUMMARY = 200


def template_environment() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(undefined=jinja2.ChainableUndefined, autoescape=False)
    env.filters["duration"] = phrasing.duration
    env.filters["number"] = phrasing.number
    env.filters["value"] = phrasing.value
    env.filters["quantity"] = phrasing.quantity
    return env


def _state_changed(e: Event) -> str:
    f = e.fields
    if "duration_s" in f:
        return f"{e.subject} {f['after_label']} again after {phrasing.duration(f['duration_s'])}"
    return f"{e.subject} {f['after_label']} (was {f['before_label']})"


def _limit_exceeded(e: Event) -> str:
    f = e.fields
    unit = f.get("unit", "")
    text = (f"{e.subject}: {f['label']} {phrasing.quantity(f['value'], unit)}, "
            f"{f['direction']} the {phrasing.quantity(f['limit'], unit)} limit")
    if f.get("duration_s"):
        text += f" for {phrasing.duration(f['duration_s'])}"
    return text


def _limit_cleared(e: Event) -> str:
    f = e.fields
    unit = f.get("unit", "")
    side = "below" if f["direction"] == "above" else "above"
    return (f"{e.subject}: {f['label']} back to {phrasing.quantity(f['value'], unit)}, "
            f"{side} {phrasing.quantity(f['limit'], unit)} (peak "
            f"{phrasing.quantity(f['peak'], unit)}, {phrasing.duration(f['duration_s'])})")


def _offline(e: Event) -> str:
    return f"{e.subject} offline: no data for {phrasing.duration(e.fields['silent_s'])}"


def _online(e: Event) -> str:
    return f"{e.subject} back online after {phrasing.duration(e.fields['silent_s'])}"


def _field_changed(e: Event) -> str:
    f = e.fields
    return (f"{e.subject}: {f['label']} {phrasing.value(f['before'])} → "
            f"{phrasing.value(f['after'])}")


def _mass_update(e: Event) -> str:
    f = e.fields
    text = f"{e.subject}: {f['count']:,} rows changed at once"
    changes = [f"{c['label']} {phrasing.value(c['before'])} → {phrasing.value(c['after'])} "
               f"×{c['count']:,}" if c.get("before") is not None else
               f"{c['label']} → {phrasing.value(c['after'])} ×{c['count']:,}"
               for c in f.get("changes", [])[:2]]
    return text + (f" ({'; '.join(changes)})" if changes else "")


def _digest(e: Event) -> str:
    f = e.fields
    kinds = ", ".join(f"{n} {t.split('.')[-1].replace('_', ' ')}"
                      for t, n in sorted(f["by_type"].items(), key=lambda kv: -kv[1]))
    noun = "post" if f["suppressed"] == 1 else "posts"
    return (f"{e.subject}: {f['suppressed']} more {noun} in "
            f"{phrasing.duration(f['window_s'])} not shown ({kinds})")


DEFAULT_PHRASES: dict[str, Callable[[Event], str]] = {
    "machine.state_changed": _state_changed,
    "metric.limit_exceeded": _limit_exceeded,
    "metric.limit_cleared": _limit_cleared,
    "machine.offline": _offline,
    "machine.online": _online,
    "record.field_changed": _field_changed,
    "record.created": lambda e: f"{e.subject} created",
    "record.deleted": lambda e: f"{e.subject} deleted",
    "record.mass_update": _mass_update,
    "flood.digest": _digest,
    "flood.calm": lambda e: f"{e.subject}: calm again, every post shown from now on",
    "source.problem": lambda e: f"{e.source}: {e.fields.get('message', 'problem')}",
    **phrases_supply.PHRASES,
}


def default_summary(event: Event) -> str:
    """The builtin phrasing; an explicit ``summary`` field (from ``publish``) wins."""
    given = event.fields.get("summary")
    if isinstance(given, str) and given:
        return given
    phrase = DEFAULT_PHRASES.get(event.type)
    if phrase is not None:
        try:
            return phrase(event)
        except (KeyError, TypeError, ValueError):
            log.warning("default_phrase_failed", type=event.type, id=event.id)
    detail = ", ".join(f"{k} {phrasing.value(v)}" for k, v in list(event.fields.items())[:4])
    label = event.type.replace(".", " ").replace("_", " ")
    return f"{event.subject}: {label}" + (f" ({detail})" if detail else "")


def clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_SUMMARY else text[: MAX_SUMMARY - 1] + "…"


class Renderer:
    """Renders events with per-source templates compiled once."""

    def __init__(self, templates: Mapping[str, str | Mapping[str, str] | None]) -> None:
        env = template_environment()
        self._templates: dict[str, list[tuple[str, jinja2.Template]]] = {}
        for source, spec in templates.items():
            if spec is None:
                continue
            pairs = {"*": spec} if isinstance(spec, str) else dict(spec)
            self._templates[source] = [(glob, env.from_string(t)) for glob, t in pairs.items()]

    def summary(self, event: Event) -> str:
        default = default_summary(event)
        template = self._template_for(event)
        if template is None:
            return default
        try:
            text = template.render(_context(event, default))
        except Exception as exc:  # a template bug must cost one post its phrasing, not the post
            log.warning("template_failed", source=event.source, type=event.type, error=str(exc))
            return default
        return text.strip() or default

    def _template_for(self, event: Event) -> jinja2.Template | None:
        for glob, template in self._templates.get(event.source, ()):
            if fnmatch.fnmatchcase(event.type, glob):
                return template
        return None


def _context(event: Event, default: str) -> dict[str, Any]:
    change = event.change
    return {
        "event": event, "fields": event.fields, "subject": event.subject, "source": event.source,
        "type": event.type, "severity": event.severity.label, "attrs": event.attrs,
        "change": event.fields, "row": change.data if change else {},
        "before": (change.before or {}) if change else {}, "default": default,
    }
