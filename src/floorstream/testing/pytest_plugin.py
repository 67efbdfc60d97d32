"""pytest plugin (entry point ``pytest11``): fixtures for testing floorstream plugins."""

from __future__ import annotations

import pytest

from floorstream.plugins import Plugins, build_plugins
from floorstream.testing.doubles import RecordingEmitter


@pytest.fixture
def floorstream_plugins() -> Plugins:
    """A fresh plugin manager with builtin and installed plugins."""
    return build_plugins()


@pytest.fixture
def recording_emitter() -> RecordingEmitter:
    """An emitter that records changes and acks them at once."""
    return RecordingEmitter()
