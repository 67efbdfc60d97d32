"""A JSON mqtt source without the Sparkplug stack (issue 16: RSS), and the same checkpoints.

The adapter builds the Sparkplug host (sessions, reorder, births, backfills, host states) only
for a ``decode: sparkplug`` source or a checkpoint that holds Sparkplug state; every other
source writes its checkpoint itself, and that text must be the host's with nothing in it, so
a checkpoint does not change with the import. (That a started JSON daemon has none of these
modules in ``sys.modules`` is tests/test_lazy_imports.py.)
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from floorstream.adapters.mqtt.sparkplug_host import SparkplugHost
from floorstream.config import parse_mapping
from floorstream.plugin.adapter import AdapterContext
from floorstream.plugins import build_plugins

WILL = {"topic": "p/+/status"}


def _adapter(checkpoint: str | None = None, **options: Any) -> Any:
    plugins = build_plugins(load_entry_points=False)
    source = parse_mapping({"store": "sqlite://", "sources": [
        {"name": "plant", "adapter": "mqtt", "topics": ["p/+"], **options}]},
        plugins).sources[0]
    return plugins.adapters.get("mqtt")(
        source, AdapterContext(source.name, checkpoint, plugins.decoders))


@pytest.mark.parametrize("options", [{}, {"last_will": WILL}])
def test_a_json_source_writes_the_hosts_checkpoint_without_the_host(
        options: dict[str, Any]) -> None:
    adapter = _adapter(**options)
    assert adapter.sparkplug is None and adapter.sessions is None
    extra = {"offline": adapter.last_will.dump()} if adapter.last_will else {}
    host = SparkplugHost(adapter.cfg, adapter.context.log, {}, None)
    assert adapter.checkpoint() == host.checkpoint_text(extra)


def test_a_json_source_keeps_the_offline_machines_of_its_checkpoint() -> None:
    adapter = _adapter('{"sparkplug":{},"offline":{"press-1":["x"]}}', last_will=WILL)
    assert adapter.sparkplug is None
    assert adapter.checkpoint() == '{"sparkplug":{},"offline":{"press-1":["x"]}}'


def test_sparkplug_state_in_a_json_sources_checkpoint_is_kept() -> None:
    """A source that was Sparkplug and is JSON now: its node sessions and host states stay in
    its checkpoints, as when every source had the host."""
    state = {"sparkplug": {"G/N": {"bdseq": 3, "aliases": {"1": "Temp"}, "devices": [],
                                   "online": True, "offline_event": None,
                                   "offline_at": None, "dead_devices": {}}},
             "sparkplug_hosts": {"scada": {"online": True, "timestamp": 1}}}
    adapter = _adapter(json.dumps(state))
    assert adapter.sparkplug is not None
    kept = json.loads(adapter.checkpoint())
    assert kept["sparkplug"] == state["sparkplug"]
    assert kept["sparkplug_hosts"] == state["sparkplug_hosts"]


def test_a_sparkplug_source_has_its_host() -> None:
    adapter = _adapter(decode="sparkplug", topics=["spBv1.0/#"])
    assert adapter.sparkplug is not None and adapter.sessions is adapter.sparkplug.sessions
    assert adapter.checkpoint() == '{"sparkplug":{}}'
