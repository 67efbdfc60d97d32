"""floorstream-opcua: an ``opcua`` source for floorstream.

PLCs and line controllers speak OPC UA: this plugin subscribes to their variables (by NodeId
or browse path, with deadbands and sampling intervals) and hands each value change to the
source's detectors as a field, so ``state_change``, ``threshold`` and ``silence`` work as they
do for MQTT; and it follows Alarms & Conditions, posting an alarm, its acknowledgement and its
clear as one thread. It imports only floorstream's public plugin API.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from floorstream.plugin import Adapter, Registry, hookimpl, lazy_exports

from .phrases import register_phrases

if TYPE_CHECKING:
    from .adapter import OpcuaAdapter
    from .config import OpcuaConfig

__all__ = ["OpcuaAdapter", "OpcuaConfig", "register_adapters", "register_phrases"]


@hookimpl
def register_adapters(registry: Registry[type[Adapter[Any]]]) -> None:
    # by reference: the adapter and its config model load when a config names ``opcua``
    registry.add_lazy("opcua", "floorstream_opcua.adapter:OpcuaAdapter")


#: ``OpcuaAdapter`` and ``OpcuaConfig`` are imported on first use, not with the plugin
__getattr__ = lazy_exports(__name__, {"OpcuaAdapter": "adapter", "OpcuaConfig": "config"})
