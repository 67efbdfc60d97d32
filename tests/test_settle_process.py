"""A process that runs a daemon until it stops moves what the start built to the collector's
permanent generation (``floorstream.daemon.settle_process``: no full collection of half a
million start-up objects in the middle of a stream); a daemon merely started does not touch
the embedding application's collector."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from floorstream.config import parse_mapping
from floorstream.daemon import Daemon
from floorstream.plugins import build_plugins


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    plugins = build_plugins(load_entry_points=False)
    source = {"name": "line", "adapter": "simulator",
              "detect": [{"state_change": {"field": "state"}}]}
    config = parse_mapping({"store": f"sqlite:///{tmp_path}/fs.db", "sources": [source]},
                           plugins)
    gc.unfreeze()
    yield Daemon(config, plugins)
    gc.unfreeze()  # (the rest of the test run keeps its collector as it was)


def test_run_forever_freezes_what_the_start_built(daemon: Daemon) -> None:
    daemon.run_forever(duration=0.2)
    assert gc.get_freeze_count() > 10_000


def test_a_started_daemon_leaves_the_collector_alone(daemon: Daemon) -> None:
    daemon.start()
    try:
        assert gc.get_freeze_count() == 0
    finally:
        daemon.stop()
