"""floorstream's public plugin API: everything a plugin may import, and nothing else.

A plugin — floorstream's own adapters, detectors, decoders, sinks and phrases included —
imports from here and from :mod:`floorstream.model` only; the rest of the package is the
host and may change between releases. ``make test`` enforces that line for the builtins with
import-linter contracts (``[tool.importlinter]`` in pyproject.toml).

A minimal adapter package::

    from floorstream.plugin import Adapter, Emitter, Registry, SourceConfig, hookimpl

    class TailConfig(SourceConfig):
        path: str

    class Tail(Adapter[TailConfig]):
        name = "tail"

        def run(self, emitter: Emitter, stop: threading.Event) -> None:
            ...

    @hookimpl
    def register_adapters(registry: Registry[type[Adapter[Any]]]) -> None:
        registry.add(Tail)

and in its ``pyproject.toml``: ``[project.entry-points.floorstream] tail = "my_pkg.tail"``.
The hooks are documented in :mod:`floorstream.plugin.hookspecs`; ``floorstream.testing``
has the conformance kits that prove an adapter or a detector correct.
"""

from floorstream.errors import (
    ConfigError,
    DecodeError,
    DuplicateNameError,
    FloorstreamError,
    PluginError,
    UnknownNameError,
)
from floorstream.model import Change, Event, Post, Severity, event_id, utcnow
from floorstream.plugin import described, phrasing
from floorstream.plugin.adapter import (
    Ack,
    Adapter,
    AdapterContext,
    DetectorSpec,
    Emitter,
    FloodOptions,
    PruneContext,
    ReplayContext,
    SourceConfig,
    SourceHealth,
)
from floorstream.plugin.alpha import alpha_in, alpha_out
from floorstream.plugin.checkpoints import Checkpoint, CheckpointParts, checkpoint_text
from floorstream.plugin.commands import Commands
from floorstream.plugin.decoder import Decoder
from floorstream.plugin.detector import (
    Detector,
    DetectorOptions,
    DetectorState,
    FlapOptions,
    Interest,
    SettleOptions,
    SeverityName,
    field_keys,
    lookup,
)
from floorstream.plugin.durations import Duration, parse_duration
from floorstream.plugin.lazy import lazy_exports
from floorstream.plugin.markers import hookimpl
from floorstream.plugin.phrasebook import Phrase
from floorstream.plugin.progress import Progress
from floorstream.plugin.registry import Registry
from floorstream.plugin.sink import (
    DeliveryError,
    Outgoing,
    PermanentDeliveryError,
    RetryAfter,
    RetrySettings,
    Sink,
    SinkConfig,
    scrub,
    secret_values,
)
from floorstream.plugin.zones import TimeZoneName

__all__ = [
    "Ack",
    "Adapter",
    "AdapterContext",
    "Change",
    "Checkpoint",
    "CheckpointParts",
    "Commands",
    "ConfigError",
    "DecodeError",
    "Decoder",
    "DeliveryError",
    "Detector",
    "DetectorOptions",
    "DetectorSpec",
    "DetectorState",
    "DuplicateNameError",
    "Duration",
    "Emitter",
    "Event",
    "FlapOptions",
    "FloodOptions",
    "FloorstreamError",
    "Interest",
    "Outgoing",
    "PermanentDeliveryError",
    "Phrase",
    "PluginError",
    "Post",
    "Progress",
    "PruneContext",
    "Registry",
    "ReplayContext",
    "RetryAfter",
    "RetrySettings",
    "SettleOptions",
    "Severity",
    "SeverityName",
    "Sink",
    "SinkConfig",
    "SourceConfig",
    "SourceHealth",
    "TimeZoneName",
    "UnknownNameError",
    "alpha_in",
    "alpha_out",
    "checkpoint_text",
    "described",
    "event_id",
    "field_keys",
    "hookimpl",
    "lazy_exports",
    "lookup",
    "parse_duration",
    "phrasing",
    "scrub",
    "secret_values",
    "utcnow",
]
