"""The web feed under uvicorn on a thread of its own (the daemon's, or ``floorstream web``).

uvicorn runs its own asyncio loop in this thread; page handlers that read the store run in its
thread pool with their own database connections. Nothing here takes the pipeline's lock: the
daemon commits as if no one were reading (a comment takes the lock for its own commit only).
"""

from __future__ import annotations

import contextlib
import threading
import time
import urllib.request
from typing import Any

import uvicorn

from floorstream.api import Stream
from floorstream.config.settings import Config
from floorstream.logs import get_logger
from floorstream.store.store import Store
from floorstream.web.app import create_app
from floorstream.web.live import StreamParking

__all__ = ["WebServer"]

log = get_logger("floorstream.web")


class WebServer:
    """``start()`` serves ``config.settings.web`` (bind, port); ``stop()`` ends it."""

    def __init__(self, config: Config, *, stream: Stream | None = None,
                 store_url: str | None = None, port: int | None = None,
                 create: bool = False) -> None:
        settings = config.settings.web
        self.config = config
        self.bind = settings.bind
        self.wanted_port = settings.port if port is None else port
        # the web's own engine and connections, so readers never queue behind the pipeline
        # (the daemon created or upgraded the schema already; alone, ``create`` does it)
        self.store = Store.open(store_url or config.settings.store, create=create)
        self.app = create_app(config, store=self.store, stream=stream)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port: int | None = None

    @property
    def url(self) -> str:
        base = self.config.settings.web.base_url
        if base:
            return base.rstrip("/")
        host = "127.0.0.1" if self.bind in ("0.0.0.0", "::", "") else self.bind
        return f"http://{host}:{self.port}"

    def start(self, timeout: float = 15.0) -> None:
        # open event streams are streamed from outside the app's own layers (live.py), and
        # written to their connections directly: h11 by name, not whichever uvicorn finds
        # (httptools, if installed), as that is the protocol wire.py knows
        config = uvicorn.Config(StreamParking(self.app), host=self.bind, port=self.wanted_port or 0,
                                log_level="warning", access_log=False, lifespan="on",
                                timeout_graceful_shutdown=2, timeout_keep_alive=5, http="h11")
        server = uvicorn.Server(config)
        self._server = server
        self._thread = threading.Thread(target=server.run, name="floorstream-web", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the web feed did not start on {self.bind}:"
                                   f"{self.wanted_port} (port in use?)")
            time.sleep(0.02)
        sockets: list[Any] = [s for srv in server.servers for s in srv.sockets]
        self.port = int(sockets[0].getsockname()[1])
        self._warm()
        log.info("web_started", url=self.url)

    def _warm(self) -> None:
        """One request the app refuses (a malformed ``scope``: a 422 before any handler
        runs, whatever the config lets anonymous readers see), so FastAPI builds its
        routing's lazy parts now (dependants, pydantic validators: ~5,000 objects). A daemon
        settles its process after starting (``settle_process``: ``gc.freeze``), so they
        are frozen with the rest of the start instead of walked by every full collection
        for the process's life (docs/web.md, *Measured*)."""
        host = "127.0.0.1" if self.bind in ("0.0.0.0", "::", "") else self.bind
        if ":" in host:
            host = f"[{host}]"
        with contextlib.suppress(OSError):  # a bind we cannot reach: nothing lost but this
            urllib.request.urlopen(f"http://{host}:{self.port}/events?scope=-",
                                   timeout=5).close()

    def stop(self, timeout: float = 10.0) -> None:
        server = self._server
        if server is not None:
            self.app.state.web.hub.stop()  # ends every event stream, so shutdown is quick
            server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
        self.app.state.close()
        self.store.close()
