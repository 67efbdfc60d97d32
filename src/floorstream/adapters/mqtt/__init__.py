"""The ``mqtt`` adapter: machine telemetry (plain JSON, bare values, Sparkplug B) from MQTT.

Modules, one job each: :mod:`.config` (the source's keys), :mod:`.connection` (paho client:
session, TLS, auth, manual acks, backoff), :mod:`.topics` (filters and subject/attrs templates),
:mod:`.sparkplug` (Sparkplug session state), :mod:`.lastwill` (status topics),
:mod:`.adapter` (the hot path and the plugin hook).
"""

from floorstream.adapters.mqtt.adapter import MqttAdapter, register_adapters
from floorstream.adapters.mqtt.config import MqttConfig

__all__ = ["MqttAdapter", "MqttConfig", "register_adapters"]
