"""Named registries that plugins fill through the ``register_*`` hooks.

One registry per kind of thing (adapters, detectors, decoders, sinks). Registering a name twice
is an error at start, not a silent override; looking up a name nobody registered suggests the
closest known one, because a typo in a config file is the most common way to get here.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from floorstream.errors import DuplicateNameError, UnknownNameError

__all__ = ["Entry", "Registry"]

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    """A registered item and the plugin that registered it."""

    name: str
    item: T
    plugin: str


class Registry(Generic[T]):
    """Name → item, remembering which plugin registered each name."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}
        self.current_plugin = "<unknown>"

    def add(self, item: T, name: str | None = None) -> T:
        """Register ``item`` under ``name`` (default: its ``name`` attribute). Returns it, so
        the method can be used as a class decorator."""
        key = name if name is not None else _name_of(item)
        if key in self._entries:
            first = self._entries[key].plugin
            raise DuplicateNameError(
                f"{self.kind} {key!r} is registered twice: by plugin {first!r} and by plugin "
                f"{self.current_plugin!r}; disable one of them in the config's plugins.disable"
            )
        self._entries[key] = Entry(key, item, self.current_plugin)
        return item

    def get(self, name: str) -> T:
        try:
            return self._entries[name].item
        except KeyError:
            known = sorted(self._entries)
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
            raise UnknownNameError(self.kind, name, known, close[0] if close else None) from None

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[Entry[T]]:
        return iter(sorted(self._entries.values(), key=lambda e: e.name))

    def names(self) -> list[str]:
        return sorted(self._entries)


def _name_of(item: Any) -> str:
    name = getattr(item, "name", None)
    if not isinstance(name, str) or not name:
        raise TypeError(f"{item!r} has no 'name' attribute; pass name= to Registry.add")
    return name
