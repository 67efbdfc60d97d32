"""How the alarm posts read: "press-07 alarm: Spindle overheated", "press-07 alarm cleared
after 4 min: Spindle overheated", "press-07 alarm acknowledged: Spindle overheated"."""

from __future__ import annotations

from floorstream.plugin import Event, Phrase, Registry, hookimpl, phrasing

__all__ = ["register_phrases"]


def _raised(e: Event) -> str:
    return f"{e.subject} alarm: {e.fields['message']}"


def _cleared(e: Event) -> str:
    text = (f"{e.subject} alarm cleared after {phrasing.duration(e.fields['duration_s'])}: "
            f"{e.fields['message']}")
    if e.fields.get("reason"):
        text += f" ({e.fields['reason']})"
    return text


def _acknowledged(e: Event) -> str:
    return f"{e.subject} alarm acknowledged: {e.fields['message']}"


@hookimpl
def register_phrases(phrases: Registry[Phrase]) -> None:
    phrases.add(_raised, name="alarm.raised")
    phrases.add(_cleared, name="alarm.cleared")
    phrases.add(_acknowledged, name="alarm.acknowledged")
