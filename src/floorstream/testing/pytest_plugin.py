"""pytest plugin: fixtures for testing floorstream plugins.

Opt-in (no ``pytest11`` entry point, so it stays out of other projects' test runs): name it in
a ``conftest.py`` with ``pytest_plugins = ["floorstream.testing.pytest_plugin"]``.
"""

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
