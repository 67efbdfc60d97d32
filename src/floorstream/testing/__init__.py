"""A test kit for plugin authors: doubles and a conformance suite for adapters.

Usage in a plugin's tests (five lines)::

    from floorstream.testing import AdapterConformance

    class TestMyAdapter(AdapterConformance):
        adapter = MyAdapter
        config = {"name": "src", "adapter": "my", "url": "..."}
        min_changes = 3
"""

from floorstream.testing.conformance import AdapterConformance
from floorstream.testing.doubles import RecordingEmitter

__all__ = ["AdapterConformance", "RecordingEmitter"]
