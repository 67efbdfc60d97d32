"""Plugins: builtins register through the hooks, duplicates and typos fail clearly, a failing
render/route plugin is isolated, ``floorstream plugins`` lists everything."""

from __future__ import annotations

import json
from typing import Any, ClassVar

import pytest
import structlog
from floorstream_example_plugin import csv_tail

import floorstream
from floorstream import hookimpl
from floorstream.cli import main
from floorstream.errors import DuplicateNameError, PluginError, UnknownNameError
from floorstream.model import Event, Post
from floorstream.plugin.detector import Detector
from floorstream.plugin.registry import Registry
from floorstream.plugins import BUILTIN_PLUGINS, build_plugins


class FakeThreshold(Detector):
    name: ClassVar[str] = "threshold"


class AcmeDetectors:
    """A third-party plugin object registering a name floorstream already uses."""

    @hookimpl
    def register_detectors(self, registry: Registry[Any]) -> None:
        registry.add(FakeThreshold)


class BrokenRender:
    @hookimpl
    def render_post(self, event: Event, default: str) -> str | None:
        raise RuntimeError("render plugin bug")


class ShoutRender:
    @hookimpl
    def render_post(self, event: Event, default: str) -> str | None:
        return default.upper() if event.type == "shout" else None


class BrokenRoute:
    @hookimpl
    def route_post(self, post: Post, event: Event) -> list[str] | None:
        raise ValueError("route plugin bug")


class QualityRoute:
    @hookimpl
    def route_post(self, post: Post, event: Event) -> list[str] | None:
        return ["quality"] if event.subject.startswith("lot-") else None


def test_builtins_register_through_the_hooks() -> None:
    plugins = build_plugins(load_entry_points=False)
    assert {"state_change", "threshold", "field_change", "silence"} <= set(
        plugins.detectors.names())
    assert {"json", "value"} <= set(plugins.decoders.names())
    assert "simulator" in plugins.adapters
    by_name = {e.name: e.plugin for e in plugins.detectors}
    assert by_name["threshold"] == "floorstream.detectors.builtin"
    assert {e.plugin for e in plugins.adapters} <= set(BUILTIN_PLUGINS)
    for name in BUILTIN_PLUGINS:
        assert plugins.manager.get_plugin(name) is not None


def test_each_build_is_independent() -> None:
    first = build_plugins(extra=[csv_tail], load_entry_points=False)
    second = build_plugins(load_entry_points=False)
    assert "csv.tail" in first.adapters and "csv.tail" not in second.adapters


def test_a_duplicate_name_names_both_plugins() -> None:
    with pytest.raises(DuplicateNameError) as caught:
        build_plugins(extra=[AcmeDetectors()], load_entry_points=False)
    message = str(caught.value)
    assert "detector 'threshold' is registered twice" in message
    assert "'floorstream.detectors.builtin'" in message
    assert "AcmeDetectors" in message


def test_disabled_plugins_are_not_registered() -> None:
    plugins = build_plugins(extra=[AcmeDetectors()], load_entry_points=False,
                            disable=["floorstream.detectors.builtin"])
    assert plugins.detectors.get("threshold") is FakeThreshold


def test_a_plugin_failing_at_registration_is_named() -> None:
    class Exploding:
        @hookimpl
        def register_adapters(self, registry: Registry[Any]) -> None:
            raise KeyError("boom")

    with pytest.raises(PluginError, match=r"Exploding.*register_adapters.*boom"):
        build_plugins(extra=[Exploding()], load_entry_points=False)


def test_unknown_names_suggest_the_closest() -> None:
    plugins = build_plugins(load_entry_points=False)
    with pytest.raises(UnknownNameError, match=r"unknown detector 'tresholds'; did you mean "
                                               r"'threshold'\?"):
        plugins.detectors.get("tresholds")
    with pytest.raises(UnknownNameError) as caught:
        plugins.decoders.get("protobuf-xyz")
    assert caught.value.suggestion is None and "json" in caught.value.known


def test_the_example_plugin_registers_its_adapter() -> None:
    plugins = build_plugins(extra=[csv_tail], load_entry_points=False)
    entry = next(e for e in plugins.adapters if e.name == "csv.tail")
    assert entry.plugin == "floorstream_example_plugin.csv_tail"
    info = {i.name: i for i in plugins.describe()}[entry.plugin]
    assert info.registers == {"adapter": ["csv.tail"]}


def test_failing_render_and_route_plugins_are_isolated(tmp_path: Any) -> None:
    plugins = build_plugins(extra=[BrokenRender(), ShoutRender(), BrokenRoute(),
                                   QualityRoute()], load_entry_points=False)
    with structlog.testing.capture_logs() as logs, floorstream.open(
            store=f"sqlite:///{tmp_path}/fs.db", plugins=plugins) as stream:
        post = stream.publish(source="lab", subject="lot-42", type="shout",
                              summary="lot 42 released", key="1")
        other = stream.publish(source="lab", subject="press-7", type="note",
                               summary="calm", key="2")
    assert post is not None and other is not None
    assert post.summary == "LOT 42 RELEASED"  # the broken plugin did not stop the others
    assert post.teams == ("general", "quality")
    assert {"team": "quality", "rule": "plugin"} in post.routing
    assert other.summary == "calm" and other.teams == ("general",)
    failures = [entry for entry in logs if entry["event"] == "plugin_failed"]
    assert {(f["hook"], f["plugin"].split(".")[-1].split(" ")[0]) for f in failures} >= {
        ("render_post", _name_of(plugins, BrokenRender)),
        ("route_post", _name_of(plugins, BrokenRoute))}
    assert any("render plugin bug" in f["error"] for f in failures)


def _name_of(plugins: Any, cls: type) -> str:
    for name, plugin in plugins.manager.list_name_plugin():
        if isinstance(plugin, cls):
            return str(name).split(".")[-1].split(" ")[0]
    raise AssertionError(cls)


def test_plugins_cli_lists_distribution_version_and_registrations(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert f"floorstream.detectors.builtin  (floorstream {floorstream.__version__})" in out
    assert "detectors: field_change, silence, state_change, threshold" in out
    assert "phrases: flood.calm, flood.digest" in out
    assert "adapters: simulator" in out
    assert main(["plugins", "--json"]) == 0
    listed = {p["name"]: p for p in json.loads(capsys.readouterr().out)}
    assert listed["floorstream.decoders.builtin"]["registers"]["decoder"][:2] == [
        "json", "value"]
    assert listed["floorstream.decoders.builtin"]["distribution"] == "floorstream"
