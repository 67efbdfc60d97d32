"""PostgreSQL LISTEN/NOTIFY wake-up: poll at once when the installed triggers notify.

A thread holds one autocommit psycopg connection listening on ``floorstream_erp`` and sets the
poll loop's wake event on each notification. It is only a hint: the interval poll still runs,
so a lost connection or a missing trigger costs latency, never data.
"""

from __future__ import annotations

import threading

from sqlalchemy import make_url

from floorstream.adapters.erp.triggers import CHANNEL
from floorstream.plugin.log import get_logger

__all__ = ["Listener"]

log = get_logger("floorstream.adapter.erp")


class Listener:
    def __init__(self, url: str, wake: threading.Event, stop: threading.Event) -> None:
        parsed = make_url(url)
        self.dsn = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
        self.wake = wake
        self.stop = stop
        self.notified = 0
        self._thread = threading.Thread(target=self._run, name="erp-listen", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float = 2.0) -> None:
        self._thread.join(timeout)

    def _run(self) -> None:
        import psycopg  # only needed on PostgreSQL

        while not self.stop.is_set():
            try:
                with psycopg.connect(self.dsn, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.wake.set()  # poll once: changes may have come while not listening
                    while not self.stop.is_set():
                        for _ in conn.notifies(timeout=0.5):
                            self.notified += 1
                            self.wake.set()
            except Exception as exc:
                log.warning("erp_listen_failed", error=str(exc))
                self.stop.wait(2.0)
