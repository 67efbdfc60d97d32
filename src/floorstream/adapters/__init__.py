"""Adapters: connect to a source and emit Changes. Builtin ones are plugins like any other."""

from floorstream.adapters.base import Adapter, AdapterContext, DetectorSpec, Emitter, SourceConfig

__all__ = ["Adapter", "AdapterContext", "DetectorSpec", "Emitter", "SourceConfig"]
