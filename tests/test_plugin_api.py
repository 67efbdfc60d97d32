"""The public plugin API behaves as docs/plugins.md says: wrapper hooks work on per-post hooks
and are refused on registration hooks; a library publish goes through the daemon's pipeline
(``post_committed`` fires, detector state is shared, the commit retry applies); the library
prints nothing; ``floorstream.plugin`` exports exactly its sorted ``__all__``."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Generator, Sequence
from pathlib import Path
from typing import Any

import pytest

import floorstream
import floorstream.plugin
from floorstream.config import parse_mapping
from floorstream.daemon import Daemon
from floorstream.plugin import Adapter, Change, Event, PluginError, Post, Registry, hookimpl
from floorstream.plugins import build_plugins


class Recorder:
    """A plugin that records every committed post."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    @hookimpl
    def post_committed(self, posts: Sequence[Post]) -> None:
        self.batches.append([p.summary for p in posts])


class WrappingRender:
    """A new-style pluggy wrapper around ``render_post``: it sees what the other plugins
    returned and may change it."""

    @hookimpl(wrapper=True)
    def render_post(self, event: Event, default: str) -> Generator[None, Any, Any]:
        result = yield
        return f"[{event.severity.label}] {result if result is not None else default}"


class BrokenRender:
    @hookimpl
    def render_post(self, event: Event, default: str) -> str | None:
        raise RuntimeError("render plugin bug")


class WrappingRegistration:
    @hookimpl(wrapper=True)
    def register_adapters(self, registry: Registry[type[Adapter[Any]]]) -> Generator[None]:
        yield


def _config(tmp_path: Path, plugins: Any) -> Any:
    return parse_mapping({
        "store": f"sqlite:///{tmp_path}/fs.db",
        "sources": [{"name": "presses", "adapter": "simulator", "enabled": False,
                     "detect": [{"state_change": {"field": "state"}}]}],
    }, plugins)


def test_a_wrapper_on_a_per_post_hook_wraps_the_others_and_survives_a_broken_one(
        tmp_path: Path) -> None:
    plugins = build_plugins(extra=[BrokenRender(), WrappingRender()], load_entry_points=False)
    with floorstream.Stream(_config(tmp_path, plugins), plugins) as stream:
        post = stream.publish(source="erp", subject="PO 4500012", type="po.approved",
                              severity="notice", summary="PO 4500012 approved")
    assert post is not None
    assert post.summary == "[notice] PO 4500012 approved"


def test_a_wrapper_on_a_registration_hook_is_refused_with_a_clear_error() -> None:
    with pytest.raises(PluginError, match="register_adapters is a registration hook"):
        build_plugins(extra=[WrappingRegistration()], load_entry_points=False)


def test_library_publish_fires_post_committed_and_shares_the_daemons_detector_state(
        tmp_path: Path) -> None:
    recorder = Recorder()
    plugins = build_plugins(extra=[recorder], load_entry_points=False)
    daemon = Daemon(_config(tmp_path, plugins), plugins, delivery=False)
    daemon.start()
    try:
        stream = daemon.stream()
        first = stream.publish(source="erp", subject="PO 1", type="po.approved",
                               summary="PO 1 approved", key="k1")
        assert first is not None and recorder.batches == [["PO 1 approved"]]
        # a change published by library code runs the source's detectors with the same
        # state the daemon's adapters feed: the second reading is a transition
        assert stream.publish_change(Change(source="presses", subject="press-07",
                                            kind="telemetry", position="1",
                                            data={"state": "running"})) == []
        posts = stream.publish_change(Change(source="presses", subject="press-07",
                                             kind="telemetry", position="2",
                                             data={"state": "stopped"}))
        assert [p.type for p in posts] == ["machine.state_changed"]
        assert recorder.batches[-1] == [posts[0].summary]
        assert daemon.pipeline.committed_posts == 2  # both went through the one pipeline
        # the same publish again is the same post: nothing new is committed or announced
        again = stream.publish(source="erp", subject="PO 1", type="po.approved",
                               summary="PO 1 approved", key="k1")
        assert again is not None and again.id == first.id
        assert len(recorder.batches) == 2
    finally:
        daemon.stop()


def test_the_library_prints_nothing_and_logs_through_stdlib_logging(
        tmp_path: Path) -> None:
    script = f"""
import logging, floorstream
with floorstream.open(store="sqlite:///{tmp_path}/lib.db") as stream:
    stream.publish(source="erp", subject="x", type="a.b", summary="hello")
    logging.getLogger("floorstream.test").warning("not shown: the host set up no logging")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, check=True)
    assert done.stdout == ""
    assert done.stderr == ""


def test_library_log_lines_reach_the_hosts_logging() -> None:
    script = """
import logging, structlog, floorstream
logging.basicConfig(format="%(name)s %(levelname)s %(message)s")
structlog.get_logger("floorstream.pipeline").warning("commit_failed_retrying", attempt=2)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, check=True)
    assert done.stdout == ""
    assert "floorstream.pipeline WARNING event='commit_failed_retrying' attempt=2" in done.stderr


def test_the_public_api_is_sorted_and_complete() -> None:
    names = floorstream.plugin.__all__
    assert names == sorted(names, key=lambda n: (n[0].islower(), n))
    for name in names:
        assert getattr(floorstream.plugin, name) is not None
    for needed in ("hookimpl", "Registry", "Adapter", "AdapterContext", "Emitter",
                   "SourceConfig", "Detector", "DetectorOptions", "DetectorState", "Decoder",
                   "Sink", "SinkConfig", "Duration", "phrasing", "DeliveryError",
                   "FloorstreamError", "Commands", "Phrase"):
        assert needed in names
    assert issubclass(floorstream.plugin.DeliveryError, floorstream.FloorstreamError)


def test_python_dash_m_floorstream_runs_the_cli() -> None:
    done = subprocess.run([sys.executable, "-m", "floorstream", "--version"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.startswith("floorstream ")


def test_erp_commands_come_from_the_erp_plugin(capsys: pytest.CaptureFixture[str]) -> None:
    from floorstream.cli import main

    with pytest.raises(SystemExit):
        main(["erp", "install-triggers", "--help"])
    assert "--print" in capsys.readouterr().out
