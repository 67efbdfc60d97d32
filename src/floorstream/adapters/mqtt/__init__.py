"""The ``mqtt`` adapter: machine telemetry (plain JSON, bare values, Sparkplug B) from MQTT.

Modules, one job each: :mod:`.config` (the source's keys), :mod:`.connection` (paho client:
session, TLS, auth, manual acks, backoff), :mod:`.topics` (filters and subject/attrs templates),
:mod:`.sparkplug` (Sparkplug session state), :mod:`.lastwill` (status topics),
:mod:`.adapter` (the hot path and the plugin hook).
"""

from typing import TYPE_CHECKING

from floorstream.plugin import lazy_exports

if TYPE_CHECKING:
    from floorstream.adapters.mqtt.adapter import MqttAdapter, register_adapters
    from floorstream.adapters.mqtt.config import MqttConfig

__all__ = ["MqttAdapter", "MqttConfig", "register_adapters"]

#: where each name lives: imported on first use, so the Sparkplug decoder's registration (a
#: submodule) does not import paho and the adapter for a config without MQTT sources (issue 16)
_HOME = {"MqttAdapter": "adapter", "register_adapters": "adapter", "MqttConfig": "config"}

__getattr__ = lazy_exports(__name__, _HOME)
