"""Build the plugin manager and fill the registries.

The manager is built by a function, never at import time, so tests and embedders get a fresh one
and nothing global leaks between them. Builtin plugins are ordinary modules registered the same
way as the third-party ones found through the ``floorstream`` entry-point group.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy

from floorstream.errors import PluginError
from floorstream.logs import get_logger
from floorstream.model import Event
from floorstream.plugin import hookspecs
from floorstream.plugin.markers import PROJECT_NAME, hookimpl
from floorstream.plugin.phrasebook import Phrase
from floorstream.plugin.registry import Registry

__all__ = ["BUILTIN_PLUGINS", "LAZY_BUILTINS", "PluginInfo", "Plugins", "build_plugins"]

log = get_logger(__name__)

#: Modules that hold floorstream's own hook implementations, registered like any plugin.
BUILTIN_PLUGINS: tuple[str, ...] = (
    "floorstream.render",
    "floorstream.flood",
    "floorstream.decoders.builtin",
    "floorstream.detectors.builtin",
    "floorstream.detectors.phrases",
    "floorstream.adapters.simulator",
    "floorstream.adapters.supply.folder",
    "floorstream.adapters.supply.http_poll",
    "floorstream.adapters.supply.inbox",
    "floorstream.adapters.supply.phrases",
    "floorstream.adapters.supply.commands",
    "floorstream.adapters.erp.adapter",
    "floorstream.adapters.erp.phrases",
    "floorstream.adapters.erp.commands",
    "floorstream.sinks.builtin",
    "floorstream.adapters.mqtt.sparkplug_registration",  # protobuf loads on first use
    "floorstream.adapters.mqtt.adapter",
)


class _PhraseRef:
    """A phrase registered by reference: ``target`` (``"package.module:attribute"``) names a
    phrase book (event type → phrase) whose module is imported when a post of ``event_type``
    is first worded; the phrase itself then words every post, as if registered directly.

    The registry and the renderer hold this object like any phrase, so nothing that builds
    a renderer from the registry (start, a reload) imports the book (issue 16: the supply and
    ERP wording, ~50 KB of bytecode, in a daemon with no such source)."""

    __slots__ = ("_phrase", "event_type", "target")

    def __init__(self, target: str, event_type: str) -> None:
        self.target = target
        self.event_type = event_type
        self._phrase: Phrase | None = None

    def __call__(self, event: Event) -> str:
        phrase = self._phrase
        if phrase is None:
            phrase = self._phrase = self.load()
        return phrase(event)

    def load(self) -> Phrase:
        """The phrase itself, importing its module."""
        module_name, _, attribute = self.target.partition(":")
        book: Mapping[str, Phrase] = getattr(importlib.import_module(module_name), attribute)
        return book[self.event_type]

    def __repr__(self) -> str:
        return f"_PhraseRef({self.target!r}, {self.event_type!r})"


class _ByReference:
    """A builtin plugin that registers its adapters, sinks and phrases by reference
    (``add_lazy``, :class:`_PhraseRef`): an item's module, and what it imports, load when a
    config names the item (a phrase: when a post is worded with it)."""

    def __init__(self, *, adapters: dict[str, str] | None = None,
                 sinks: dict[str, str] | None = None,
                 phrases: dict[str, tuple[str, ...]] | None = None) -> None:
        self.adapters = adapters or {}
        self.sinks = sinks or {}
        self.phrases = phrases or {}  # phrase book "module:attribute" → its event types

    @hookimpl
    def register_phrases(self, phrases: Registry[Phrase]) -> None:
        for target, event_types in self.phrases.items():
            for event_type in event_types:
                phrases.add(_PhraseRef(target, event_type), name=event_type)

    @hookimpl
    def register_adapters(self, registry: Registry[Any]) -> None:
        for name, target in self.adapters.items():
            registry.add_lazy(name, target)

    @hookimpl
    def register_sinks(self, registry: Registry[Any]) -> None:
        for name, target in self.sinks.items():
            registry.add_lazy(name, target)


class _LazyCommands:
    """A builtin plugin that adds command-line tools: its module (and the adapter code the
    tools use) loads when the command line is built, not in a daemon."""

    def __init__(self, module: str) -> None:
        self.module = module

    @hookimpl
    def register_commands(self, commands: Any) -> None:
        importlib.import_module(self.module).register_commands(commands)


#: Builtin plugins registered through the same hooks as any other, by reference: under the
#: name of the module that holds the items (what ``plugins.disable`` and ``floorstream
#: plugins`` show), a small object registers "module:attribute" targets, so a daemon imports
#: the adapters and sinks its config uses and not the others (issue 16: the ERP and
#: supply-chain adapters, the sinks' clients and paho cost ~3.5 MB of RSS unused), and the
#: supply and ERP phrase books when a post is first worded with them.
LAZY_BUILTINS: dict[str, object] = {
    "floorstream.flood": _ByReference(phrases={  # flood control and settling: their stages
        "floorstream.flood:FLOOD_PHRASES": ("flood.digest", "flood.calm"),  # load on use
        "floorstream.settle:PHRASES": ("machine.blip", "machine.flapping", "machine.stable")}),
    "floorstream.adapters.simulator": _ByReference(
        adapters={"simulator": "floorstream.adapters.simulator:Simulator"}),
    "floorstream.adapters.supply.folder": _ByReference(
        adapters={"supply.folder": "floorstream.adapters.supply.folder:SupplyFolder"}),
    "floorstream.adapters.supply.http_poll": _ByReference(
        adapters={"supply.http": "floorstream.adapters.supply.http_poll:SupplyHttp"}),
    "floorstream.adapters.supply.inbox": _ByReference(
        adapters={"supply.inbox": "floorstream.adapters.supply.inbox:SupplyInbox"}),
    "floorstream.adapters.erp.adapter": _ByReference(
        adapters={"erp.table": "floorstream.adapters.erp.adapter:ErpTableAdapter"}),
    "floorstream.sinks.builtin": _ByReference(sinks={
        "feed": "floorstream.sinks.feed:FeedSink",
        "webhook": "floorstream.sinks.webhook:WebhookSink",
        "email": "floorstream.sinks.email:EmailSink",
        "mqtt": "floorstream.sinks.mqtt:MqttSink",
        "file": "floorstream.sinks.file:FileSink",
        "apprise": "floorstream.sinks.apprise_sink:AppriseSink",
    }),
    "floorstream.adapters.supply.phrases": _ByReference(phrases={
        "floorstream.adapters.supply.phrases:PHRASES": (
            "shipment.dispatched", "shipment.delayed", "shipment.status_changed",
            "shipment.delivered", "shipment.exception", "shipment.retracted",
            "asn.cancelled", "asn.mismatch", "asn.expired")}),
    "floorstream.adapters.erp.phrases": _ByReference(phrases={
        "floorstream.adapters.erp.phrases:PHRASES": (
            "record.mass_update", "record.status_changed", "record.row_changed",
            "record.row_added", "record.row_removed")}),
    "floorstream.adapters.supply.commands": _LazyCommands("floorstream.adapters.supply.commands"),
    "floorstream.adapters.erp.commands": _LazyCommands("floorstream.adapters.erp.commands"),
    "floorstream.adapters.mqtt.adapter": _ByReference(
        adapters={"mqtt": "floorstream.adapters.mqtt.adapter:MqttAdapter"}),
}

#: Hooks called once, plugin by plugin, to fill a registry (or the command line): a wrapper
#: implementation has nothing to wrap there and is refused at registration.
REGISTRATION_HOOKS: tuple[str, ...] = (
    "register_adapters", "register_detectors", "register_decoders", "register_sinks",
    "register_phrases", "register_commands",
)

#: Hooks called through pluggy for every post or batch; a failing ordinary implementation is
#: logged and skipped (see :func:`_guard`), wrappers run as pluggy documents them.
PER_POST_HOOKS: tuple[str, ...] = ("render_post", "route_post", "post_committed")


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
    phrases: Registry[Phrase]

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
        for registry in (self.adapters, self.detectors, self.decoders, self.sinks,
                         self.phrases):
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
        plugin = LAZY_BUILTINS.get(module_name) or importlib.import_module(module_name)
        pm.register(plugin, name=module_name)
    if load_entry_points:
        try:
            pm.load_setuptools_entrypoints(PROJECT_NAME)
        except Exception as exc:  # a broken third-party package must say which one it is
            raise PluginError(
                f"loading floorstream plugins from entry points failed: {exc}") from exc
    for plugin in extra:
        pm.register(plugin, name=_plugin_name(pm, plugin))
    pm.check_pending()
    _refuse_registration_wrappers(pm)
    _guard_per_post_hooks(pm)

    plugins = Plugins(
        manager=pm,
        adapters=Registry("adapter"),
        detectors=Registry("detector"),
        decoders=Registry("decoder"),
        sinks=Registry("sink"),
        phrases=Registry("phrase"),
    )
    for hook_name, registry in (
        ("register_phrases", plugins.phrases),
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
            impl.function(*[registry for _ in impl.argnames])
        except PluginError:
            raise
        except Exception as exc:
            raise PluginError(
                f"plugin {impl.plugin_name!r} failed in {hook_name}: {exc!r}"
            ) from exc
    registry.current_plugin = "<unknown>"


def _refuse_registration_wrappers(pm: pluggy.PluginManager) -> None:
    for hook_name in REGISTRATION_HOOKS:
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            if impl.hookwrapper or impl.wrapper:
                raise PluginError(
                    f"plugin {impl.plugin_name!r}: {hook_name} is a registration hook, called "
                    f"once per plugin to fill a registry; it cannot be a wrapper "
                    f"(drop wrapper=True/hookwrapper=True)")


def _guard_per_post_hooks(pm: pluggy.PluginManager) -> None:
    """Make every ordinary implementation of a per-post hook log and skip its own failure.

    pluggy aborts a whole hook call when one implementation raises; the daemon must instead
    name the culprit and carry on, so a broken phrasing plugin costs a post its phrasing, not
    the post. Wrappers are left as they are: pluggy hands them the other implementations'
    outcome as documented.
    """
    for hook_name in PER_POST_HOOKS:
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            if impl.hookwrapper or impl.wrapper or getattr(impl.function, "_fs_guarded", False):
                continue
            impl.function = _guard(impl.function, impl.plugin_name, hook_name)


def _guard(function: Callable[..., Any], plugin: str, hook: str) -> Callable[..., Any]:
    def guarded(*args: Any) -> Any:
        try:
            return function(*args)
        except Exception as exc:
            log.error("plugin_failed", plugin=plugin, hook=hook, error=repr(exc))
            return None

    guarded._fs_guarded = True  # type: ignore[attr-defined]
    return guarded
