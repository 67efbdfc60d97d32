"""The live web feed (docs/web.md): team feeds, threads, permalinks, kiosk screens, follow,
acknowledge and comment, a JSON (Activity Streams 2.0) API, server-sent events and Atom.

:func:`create_app` builds the ASGI application (mount it in your own app, or let the daemon
serve it: ``web: {port: 8080}``); :class:`WebServer` runs it under uvicorn on a thread of its
own. Needs the ``web`` extra: ``pip install 'floorstream[web]'``.
"""

from floorstream.web.app import create_app
from floorstream.web.server import WebServer

__all__ = ["WebServer", "create_app"]
