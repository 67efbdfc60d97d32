"""floorstream-opcua: an ``opcua`` source for floorstream.

PLCs and line controllers speak OPC UA: this plugin subscribes to their variables (by NodeId
or browse path, with deadbands and sampling intervals) and hands each value change to the
source's detectors as a field, so ``state_change``, ``threshold`` and ``silence`` work as they
do for MQTT; and it follows Alarms & Conditions, posting an alarm, its acknowledgement and its
clear as one thread. It imports only floorstream's public plugin API.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from floorstream.plugin import Adapter, Registry, hookimpl

from .phrases import register_phrases

if TYPE_CHECKING:
    from .adapter import OpcuaAdapter
    from .config import OpcuaConfig

__all__ = ["OpcuaAdapter", "OpcuaConfig", "register_adapters", "register_phrases"]


@hookimpl
def register_adapters(registry: Registry[type[Adapter[Any]]]) -> None:
    # by reference: the adapter and its config model load when a config names ``opcua``
    registry.add_lazy("opcua", "floorstream_opcua.adapter:OpcuaAdapter")


def __getattr__(name: str) -> Any:
    """``OpcuaAdapter`` and ``OpcuaConfig`` are imported on first use, not with the plugin."""
    homes = {"OpcuaAdapter": "adapter", "OpcuaConfig": "config"}
    if name not in homes:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{homes[name]}"), name)
