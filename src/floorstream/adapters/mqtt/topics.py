"""Topic filters and the small templates that turn a topic and a payload into subject and attrs.

Everything here is compiled once at start, because it runs for every message: a filter becomes
a tuple of levels matched without regular expressions, and a template like ``"{topic[2]}"``
becomes a list of parts, with a fast path for the common "one topic level" case.

Template placeholders:

- ``{topic}``: the whole topic; ``{topic[N]}``: level N (0-based, negative counts from the end).
- ``{group}``, ``{node}``, ``{device}``: Sparkplug B names (only for Sparkplug topics).
- ``{path}``: a payload field by dotted path (``{machine}``, ``{meta.line}``) or by JSON
  pointer (``{/Messages/0/DataSetWriterName}``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["MissingValue", "Template", "TopicFilter", "lookup_path", "strip_shared"]

_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")
_TOPIC_LEVEL = re.compile(r"^topic\[(-?\d+)\]$")
_SPARKPLUG_NAMES = ("group", "node", "device")


class MissingValue(LookupError):
    """A template names a topic level or payload field the message does not have."""


def strip_shared(topic_filter: str) -> str:
    """The filter without a ``$share/<group>/`` prefix (what incoming topics are matched by)."""
    if topic_filter.startswith("$share/"):
        parts = topic_filter.split("/", 2)
        if len(parts) == 3:
            return parts[2]
    return topic_filter


def validate_filter(topic_filter: str) -> str:
    """Check MQTT filter syntax (``#`` only last, wildcards alone in their level)."""
    levels = strip_shared(topic_filter).split("/")
    for index, level in enumerate(levels):
        if "#" in level and (level != "#" or index != len(levels) - 1):
            raise ValueError(f"'#' must be the whole last level of {topic_filter!r}")
        if "+" in level and level != "+":
            raise ValueError(f"'+' must be a whole level of {topic_filter!r}")
    if not topic_filter:
        raise ValueError("empty topic filter")
    return topic_filter


class TopicFilter:
    """One subscription filter, matched level by level."""

    __slots__ = ("filter", "fixed", "levels", "multi")

    def __init__(self, topic_filter: str) -> None:
        self.filter = strip_shared(topic_filter)
        levels = self.filter.split("/")
        self.multi = levels[-1] == "#"
        self.levels: tuple[str, ...] = tuple(levels[:-1] if self.multi else levels)
        self.fixed = [(i, lv) for i, lv in enumerate(self.levels) if lv != "+"]

    def matches(self, levels: Sequence[str]) -> bool:
        if self.multi:
            if len(levels) < len(self.levels):
                return False
            # '#' does not match topics starting with '$' (MQTT 4.7.2)
            if not self.levels and levels and levels[0].startswith("$"):
                return False
        elif len(levels) != len(self.levels):
            return False
        return all(levels[i] == lv for i, lv in self.fixed)


def lookup_path(data: Any, path: str) -> Any:
    """A payload value by dotted path or JSON pointer (RFC 6901); raises MissingValue."""
    if path.startswith("/"):
        parts = [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]
    else:
        if isinstance(data, dict) and path in data:
            return data[path]
        parts = path.split(".")
    value = data
    for part in parts:
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            raise MissingValue(f"payload has no {path!r}")
    return value


Getter = Callable[[Sequence[str], str, Mapping[str, Any], Mapping[str, str]], str]


def _text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def _part(name: str) -> Getter:
    if name == "topic":
        return lambda levels, topic, data, names: topic
    match = _TOPIC_LEVEL.match(name)
    if match:
        index = int(match.group(1))

        def level(levels: Sequence[str], topic: str, data: Mapping[str, Any],
                  names: Mapping[str, str]) -> str:
            try:
                return levels[index]
            except IndexError:
                raise MissingValue(f"topic {topic!r} has no level {index}") from None
        return level
    if name in _SPARKPLUG_NAMES:
        def sparkplug(levels: Sequence[str], topic: str, data: Mapping[str, Any],
                      names: Mapping[str, str]) -> str:
            try:
                return names[name]
            except KeyError:
                raise MissingValue(f"{{{name}}} is only known for Sparkplug topics") from None
        return sparkplug
    return lambda levels, topic, data, names: _text(lookup_path(data, name))


class Template:
    """``"{topic[2]}"``, ``"line-{topic[3]}"``, ``"{machine}"``: compiled once, rendered per
    message. Literal braces are not supported (no subject needs them)."""

    __slots__ = ("_parts", "_single", "text", "uses_payload")

    def __init__(self, text: str) -> None:
        self.text = text
        parts: list[str | Getter] = []
        position = 0
        self.uses_payload = False
        for match in _PLACEHOLDER.finditer(text):
            if match.start() > position:
                parts.append(text[position:match.start()])
            name = match.group(1).strip()
            if name != "topic" and not _TOPIC_LEVEL.match(name) and name not in _SPARKPLUG_NAMES:
                self.uses_payload = True
            parts.append(_part(name))
            position = match.end()
        if position < len(text):
            parts.append(text[position:])
        self._parts = parts
        self._single: Getter | None = (
            parts[0] if len(parts) == 1 and not isinstance(parts[0], str) else None)

    def render(self, levels: Sequence[str], topic: str, data: Mapping[str, Any],
               names: Mapping[str, str] | None = None) -> str:
        """The text for one message; raises MissingValue when a part is absent."""
        names = names or {}
        if self._single is not None:
            return self._single(levels, topic, data, names)
        return "".join(p if isinstance(p, str) else p(levels, topic, data, names)
                       for p in self._parts)
