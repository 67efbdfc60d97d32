"""floorstream: plant and supply-chain changes → short activity posts for the teams that act.

Embedding::

    import floorstream
    with floorstream.open(store="sqlite:///floorstream.db") as stream:
        stream.publish(source="odoo", subject="WH/MO/00042", type="record.field_changed",
                       fields={"field": "state", "label": "state", "before": "Confirmed",
                               "after": "In progress"})
        for post in stream.feed("general"):
            print(post.summary)
"""

from floorstream.api import Stream, open
from floorstream.errors import ConfigError, DecodeError, FloorstreamError
from floorstream.logs import library_logging
from floorstream.model import Change, Event, Post, Severity
from floorstream.plugin import hookimpl

library_logging()

__all__ = [
    "Change",
    "ConfigError",
    "DecodeError",
    "Event",
    "FloorstreamError",
    "Post",
    "Severity",
    "Stream",
    "hookimpl",
    "open",
]

__version__ = "0.1.0"
