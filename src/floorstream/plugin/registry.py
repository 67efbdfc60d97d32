"""Named registries that plugins fill through the ``register_*`` hooks.

One registry per kind of thing (adapters, detectors, decoders, sinks). Registering a name twice
is an error at start, not a silent override; looking up a name nobody registered suggests the
closest known one, because a typo in a config file is the most common way to get here.

An item can be registered by reference (:meth:`Registry.add_lazy`: a name and
``"package.module:attribute"``): its module is imported the first time the item is looked up,
so a daemon pays the imports (and RSS) of the adapters and sinks its config uses, not of every
installed one (issue 16).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import Any, Generic, TypeVar

from floorstream.errors import DuplicateNameError, PluginError, UnknownNameError

__all__ = ["Entry", "Registry"]

T = TypeVar("T")


class Entry(Generic[T]):
    """A registered item and the plugin that registered it.

    An entry made by :meth:`Registry.add_lazy` imports its item the first time ``item`` is
    read (and checks that the item's ``name``, if it has one, is the registered name).
    """

    __slots__ = ("_item", "_target", "name", "plugin")

    def __init__(self, name: str, item: T | None, plugin: str, *,
                 target: str | None = None) -> None:
        self.name = name
        self.plugin = plugin
        self._item = item
        self._target = target

    @property
    def item(self) -> T:
        if self._target is not None:
            self._item = _load(self._target, self.name, self.plugin)
            self._target = None
        return self._item  # type: ignore[return-value]

    @property
    def loaded(self) -> bool:
        """False while a lazily registered item has not been imported."""
        return self._target is None

    def __repr__(self) -> str:
        what = repr(self._item) if self._target is None else f"<not loaded: {self._target}>"
        return f"Entry(name={self.name!r}, item={what}, plugin={self.plugin!r})"


def _load(target: str, name: str, plugin: str) -> Any:
    module_name, _, attribute = target.partition(":")
    try:
        item = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise PluginError(f"plugin {plugin!r} registered {name!r} as {target!r}, which cannot "
                          f"be loaded: {exc}") from exc
    own = getattr(item, "name", name)
    if isinstance(own, str) and own != name:
        raise PluginError(f"plugin {plugin!r} registered {name!r} as {target!r}, whose name "
                          f"is {own!r}")
    return item


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
        self._claim(key)
        self._entries[key] = Entry(key, item, self.current_plugin)
        return item

    def add_lazy(self, name: str, target: str) -> None:
        """Register ``name`` for the item at ``target`` (``"package.module:attribute"``),
        imported when the item is first looked up (a config uses it), not now.

        Duplicate names are refused as by :meth:`add`; listing the names
        (``floorstream plugins``, the suggestions for a typo) imports nothing.
        """
        if ":" not in target:
            raise ValueError(f"{target!r} is not 'package.module:attribute'")
        self._claim(name)
        self._entries[name] = Entry(name, None, self.current_plugin, target=target)

    def _claim(self, name: str) -> None:
        """Refuse a name registered already, naming both plugins."""
        if name in self._entries:
            first = self._entries[name].plugin
            raise DuplicateNameError(
                f"{self.kind} {name!r} is registered twice: by plugin {first!r} and by plugin "
                f"{self.current_plugin!r}; disable one of them in the config's plugins.disable"
            )

    def get(self, name: str) -> T:
        try:
            return self._entries[name].item
        except KeyError:
            import difflib  # here: only a misspelt name needs it, not every daemon

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
