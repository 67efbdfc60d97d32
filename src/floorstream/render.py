"""Events → the one line people read.

Three layers, most specific first: a ``render_post`` plugin, the source's summary template from
the config, the phrase book (each plugin's default wording of the event types it makes, filled
through the ``register_phrases`` hook; the core itself phrases only ``source.problem``).
Templates run in Jinja2's immutable sandbox, so a config file can format values but never call
into Python; one that only puts fields into text is rendered the same without Jinja2
(floorstream.plaintemplate).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from datetime import UTC, tzinfo
from typing import TYPE_CHECKING, Any

from floorstream.logs import get_logger
from floorstream.model import Event
from floorstream.plaintemplate import FILTERS, Template, compile_template
from floorstream.plugin import Phrase, Registry, hookimpl, phrasing

if TYPE_CHECKING:
    from jinja2.sandbox import ImmutableSandboxedEnvironment

__all__ = ["Renderer", "default_summary", "template_environment"]

log = get_logger(__name__)

MAX_SUMMARY = 200


def template_environment() -> ImmutableSandboxedEnvironment:
    """The sandbox summary templates run in. Jinja2 is imported here, when a config has a
    template, not with floorstream (~1.7 MB of RSS a config without templates never uses)."""
    import jinja2
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(undefined=jinja2.ChainableUndefined, autoescape=False)
    env.filters.update(FILTERS)  # duration, number, value, quantity, clock
    return env


def _problem(e: Event) -> str:
    return f"{e.source}: {e.fields.get('message', 'problem')}"


@hookimpl
def register_phrases(phrases: Registry[Phrase]) -> None:
    """The one phrase the core owns: a source's own problem (``Emitter.problem``)."""
    phrases.add(_problem, name="source.problem")


def default_summary(event: Event, phrases: Mapping[str, Phrase] | None = None) -> str:
    """The phrase book's wording (see the ``register_phrases`` hook); an explicit ``summary``
    field (from ``publish``) wins, and an event type nobody phrased gets a generic line."""
    given = event.fields.get("summary")
    if isinstance(given, str) and given:
        return given
    phrase = phrases.get(event.type) if phrases else None
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
    """Renders events with per-source templates compiled once; times in posts are shown in
    ``zone`` (the config's ``display.timezone``; UTC when not set), labelled."""

    def __init__(self, templates: Mapping[str, str | Mapping[str, str] | None],
                 phrases: Mapping[str, Phrase] | None = None,
                 zone: tzinfo | None = None) -> None:
        self.phrases: Mapping[str, Phrase] = dict(phrases or {})
        self.zone = zone or UTC
        self._env: ImmutableSandboxedEnvironment | None = None
        self._templates: dict[str, list[tuple[str, Template]]] = {}
        for source, spec in templates.items():
            if spec is None:
                continue
            pairs = {"*": spec} if isinstance(spec, str) else dict(spec)
            self._templates[source] = [(glob, compile_template(t, self._environment))
                                       for glob, t in pairs.items()]

    def _environment(self) -> ImmutableSandboxedEnvironment:
        """The Jinja2 sandbox, made when a template first needs it (none may)."""
        if self._env is None:
            self._env = template_environment()
        return self._env

    def summary(self, event: Event) -> str:
        with phrasing.in_zone(self.zone):
            return self._summary(event)

    def _summary(self, event: Event) -> str:
        default = default_summary(event, self.phrases)
        template = self._template_for(event)
        if template is None:
            return default
        try:
            text = template.render(_context(event, default))
        except Exception as exc:  # a template bug must cost one post its phrasing, not the post
            log.warning("template_failed", source=event.source, type=event.type, error=str(exc))
            return default
        return text.strip() or default

    def _template_for(self, event: Event) -> Template | None:
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
