"""Item 7 of issue 12: ``sparkplug: {prefix: site/}`` reads a bridged namespace; a message
whose topic does not fit it is quarantined with that reason; ``floorstream check`` warns about
a ``decode: sparkplug`` filter outside the namespace."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from floorstream.adapters.mqtt.config import MqttConfig
from support import FLOORSTREAM

from .conftest import Session

pytestmark = pytest.mark.mqtt


def test_a_bridged_namespace_is_read_and_a_topic_outside_it_quarantined(
        sparkplug: Callable[..., Session], topic_prefix: str) -> None:
    site = f"site-{topic_prefix.replace('/', '-')}"
    sp = sparkplug(f"prefix: {site}/", prefix=f"{site}/",
                   topics=[f"{site}/#", f"other-{site}/#"])
    node = sp.node("Gw")
    stray = (f"other-{site}/spBv1.0/{sp.group}/DDATA/Gw/Press07",
             node.ddata("Press07", {"State": "STOPPED"}, named=True, seq=0)[1])
    sp.publisher.publish_all([stray, (f"{site}/plant/press/temp", b"{}"),
                              node.nbirth(), node.dbirth("Press07", {"State": "RUNNING"}),
                              node.ddata("Press07", {"State": "STOPPED"})])
    sp.sentinel()
    assert sp.summaries() == ["Press07 stopped (was running)"]
    rows = sp.store.quarantined(source="sp")
    assert sorted(r.context["topic"] for r in rows) == sorted(
        [stray[0], f"{site}/plant/press/temp"])
    assert all(r.error.startswith("topic does not fit the Sparkplug B namespace (expected "
                                  f"{site}/spBv1.0/") for r in rows)


def _config(topics: list[str], prefix: str | None = None) -> MqttConfig:
    extra = {"sparkplug": {"prefix": prefix}} if prefix is not None else {}
    return MqttConfig.model_validate({"name": "sp", "adapter": "mqtt", "decode": "sparkplug",
                                      "topics": topics, **extra})


def test_check_warns_about_filters_outside_the_namespace(tmp_path: Path) -> None:
    assert _config(["spBv1.0/G/#", "spBv1.0/STATE/scada", "STATE/mes",
                    "spBv1.0/+/DDATA/#"]).check_warnings() == []
    assert _config(["site/spBv1.0/G/#", "site/STATE/h"], "site/").check_warnings() == []
    assert _config(["plant/#"]).check_warnings() == [
        "topic filter 'plant/#' is outside the Sparkplug namespace spBv1.0/…: every message "
        "it brings is quarantined"]
    assert _config(["#", "+/spBv1.0/#"], "site/").check_warnings() == [
        "topic filter '#' also matches topics outside the Sparkplug namespace "
        "site/spBv1.0/…: those messages are quarantined",
        "topic filter '+/spBv1.0/#' also matches topics outside the Sparkplug namespace "
        "site/spBv1.0/…: those messages are quarantined"]
    assert _config(["spBv1.0/G/#"], "site/").check_warnings()[0].startswith(
        "topic filter 'spBv1.0/G/#' is outside")
    shared = MqttConfig.model_validate({"name": "sp", "adapter": "mqtt", "decode": "sparkplug",
                                        "topics": ["spBv1.0/G/#"], "shared_group": "fs"})
    assert [w[:50] for w in shared.check_warnings()] == [
        "shared_group splits each edge node's messages betw"]
    config = tmp_path / "floorstream.yaml"
    config.write_text(f"""
store: sqlite:///{tmp_path}/fs.db
teams: {{maintenance: {{}}}}
default_team: maintenance
sources:
  - name: sp
    adapter: mqtt
    decode: sparkplug
    topics: ["plant/+/telemetry", "spBv1.0/G/#"]
""")
    done = subprocess.run([FLOORSTREAM, "check", "--offline", "-c", str(config)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert ("warning: sources.sp: topic filter 'plant/+/telemetry' is outside the Sparkplug "
            "namespace spBv1.0/…") in done.stderr
