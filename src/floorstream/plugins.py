"""Build the plugin manager and fill the registries.

The manager is built by a function, never at import time, so tests and embedders get a fresh one
and nothing global leaks between them. Builtin plugins are ordinary modules registered the same
way as the third-party ones found through the ``floorstream`` entry-point group.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy
import structlog

from floorstream import hookspecs
from floorstream._markers import PROJECT_NAME
from floorstream.errors import PluginError
from floorstream.registry import Registry

__all__ = ["BUILTIN_PLUGINS", "PluginInfo", "Plugins", "build_plugins", "call_isolated"]

log = structlog.get_logger(__name__)

#: Modules that hold floorstream's own hook implementations, registered like any plugin.
BUILTIN_PLUGINS: tuple[str, ...] = (
    "floorstream.decoders.builtin",
    "floorstream.detectors.builtin",
    "floorstream.adapters.simulator",
    "floorstream.adapters.supply.folder",
    "floorstream.adapters.supply.http_poll",
    "floorstream.adapters.supply.inbox",
    "floorstream.adapters.erp.adapter",
    "floorstream.sinks.builtin",
    "floorstream.decoders.sparkplug",
    "floorstream.adapters.mqtt.adapter",
)


@dataclass
class PluginInfo:
    """One plugin as ``floorstream plugins`` shows it."""

    name: str
    distribution: str
    version: str
    registers: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class Plugins:
    """The plugin manager together with the registries it filled."""

    manager: pluggy.PluginManager
    adapters: Registry[Any]
    detectors: Registry[Any]
    decoders: Registry[Any]
    sinks: Registry[Any]

    def describe(self) -> list[PluginInfo]:
        """Every registered plugin with its distribution, version and what it registers."""
        dists: dict[int, tuple[str, str]] = {}
        for plugin, dist in self.manager.list_plugin_distinfo():
            dists[id(plugin)] = (dist.metadata["name"], dist.version)
        own_version = _own_version()
        infos: dict[str, PluginInfo] = {}
        for name, plugin in self.manager.list_name_plugin():
            if plugin is None:
                continue
            dist_name, version = dists.get(id(plugin), ("floorstream", own_version))
            infos[name] = PluginInfo(name, dist_name, version)
        for registry in (self.adapters, self.detectors, self.decoders, self.sinks):
            for entry in registry:
                info = infos.setdefault(entry.plugin, PluginInfo(entry.plugin, "?", "?"))
                info.registers.setdefault(registry.kind, []).append(entry.name)
        return sorted(infos.values(), key=lambda i: i.name)


def _own_version() -> str:
    try:
        return metadata.version("floorstream")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def build_plugins(
    *,
    extra: Iterable[object] = (),
    load_entry_points: bool = True,
    disable: Sequence[str] = (),
) -> Plugins:
    """Create a plugin manager with the builtin plugins, entry-point plugins and ``extra``.

    :param extra: plugin objects (modules or instances) to register too, e.g. from a test.
    :param load_entry_points: discover third-party plugins in the ``floorstream`` group.
    :param disable: plugin names to block (as listed by ``floorstream plugins``).
    """
    pm = pluggy.PluginManager(PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    for name in disable:
        pm.set_blocked(name)
    for module_name in BUILTIN_PLUGINS:
        if pm.is_blocked(module_name):
            continue
        pm.register(importlib.import_module(module_name), name=module_name)
    if load_entry_points:
        try:
            pm.load_setuptools_entrypoints(PROJECT_NAME)
        except Exception as exc:  # a broken third-party package must say which one it is
            raise PluginError(
                f"loading floorstream plugins from entry points failed: {exc}") from exc
    for plugin in extra:
        pm.register(plugin, name=_plugin_name(pm, plugin))
    pm.check_pending()

    plugins = Plugins(
        manager=pm,
        adapters=Registry("adapter"),
        detectors=Registry("detector"),
        decoders=Registry("decoder"),
        sinks=Registry("sink"),
    )
    for hook_name, registry in (
        ("register_decoders", plugins.decoders),
        ("register_detectors", plugins.detectors),
        ("register_adapters", plugins.adapters),
        ("register_sinks", plugins.sinks),
    ):
        _fill(pm, hook_name, registry)
    return plugins


def _plugin_name(pm: pluggy.PluginManager, plugin: object) -> str:
    """A readable name for a plugin object (pluggy would use ``id()`` for an instance), so
    errors and ``floorstream plugins`` can say which one it is."""
    base = getattr(plugin, "__name__", None)
    if not isinstance(base, str):
        base = f"{type(plugin).__module__}.{type(plugin).__qualname__}"
    name, n = base, 1
    while pm.has_plugin(name):
        n += 1
        name = f"{base}#{n}"
    return name


def _fill(pm: pluggy.PluginManager, hook_name: str, registry: Registry[Any]) -> None:
    """Call a registration hook plugin by plugin, so each entry knows who registered it."""
    caller = getattr(pm.hook, hook_name)
    for impl in caller.get_hookimpls():  # registration order, builtins first
        registry.current_plugin = impl.plugin_name
        try:
            impl.function(**{arg: registry for arg in impl.argnames})
        except PluginError:
            raise
        except Exception as exc:
            raise PluginError(
                f"plugin {impl.plugin_name!r} failed in {hook_name}: {exc!r}"
            ) from exc
    registry.current_plugin = "<unknown>"


def call_isolated(
    caller: Any,
    *,
    firstresult: bool = False,
    on_error: Callable[[str, BaseException], None] | None = None,
    **kwargs: Any,
) -> list[Any]:
    """Call a hook implementation by implementation, so one failing plugin cannot stop the rest.

    pluggy aborts the whole call when one implementation raises; the daemon must instead log the
    culprit by name and carry on. Returns the non-None results (at most one if ``firstresult``).
    """
    results: list[Any] = []
    for impl in reversed(caller.get_hookimpls()):
        try:
            result = impl.function(**{arg: kwargs[arg] for arg in impl.argnames})
        except Exception as exc:
            log.error("plugin_failed", plugin=impl.plugin_name, hook=caller.name, error=repr(exc))
            if on_error is not None:
                on_error(impl.plugin_name, exc)
            continue
        if result is not None:
            results.append(result)
            if firstresult:
                break
    return results
