"""``adapter: opcua``: the floorstream side of an OPC UA source.

The asyncua client runs its asyncio loop on a thread of its own (:mod:`.session`); this
adapter's ``run`` thread takes what it converted, in order, and hands it to the pipeline:
value changes through ``emit`` (the source's detectors decide what they mean, exactly as for
MQTT telemetry), alarm transitions through ``event`` with the open alarms as checkpoint,
items the server refuses as ``problem`` posts, values that have no plain form to quarantine.

What it guarantees, stated plainly: OPC UA keeps no history for a subscription, so nothing
missed while disconnected can be replayed. After every (re)connect each item's *current*
value is delivered once, with a position made of its source timestamp and value: a value
unchanged since it was last seen has the same position and the detectors, whose state is
committed, see no transition; a value that changed while floorstream was away posts once,
as the transition it is. Intermediate values the server did not keep are not invented.
"""

from __future__ import annotations

import queue
import threading
from typing import TYPE_CHECKING, Any, ClassVar

from floorstream.plugin import Adapter, Emitter

from .config import OpcuaConfig

if TYPE_CHECKING:  # the client half (asyncua, cryptography) is imported when a source runs
    from .session import OpcuaSession, Record

__all__ = ["OpcuaAdapter"]

#: publish responses queued between the two threads before the publish loop waits
QUEUE_RESPONSES = 64


class OpcuaAdapter(Adapter[OpcuaConfig]):
    """Subscriptions on OPC UA variables (and alarms) as floorstream changes (and events)."""

    name: ClassVar[str] = "opcua"
    reports_connection: ClassVar[bool] = True

    session: OpcuaSession | None = None

    def run(self, emitter: Emitter, stop: threading.Event) -> None:
        from .session import OpcuaSession

        out: queue.Queue[list[Record]] = queue.Queue(maxsize=QUEUE_RESPONSES)
        session = self.session = OpcuaSession(self.config, self.context, out)
        thread = threading.Thread(target=session.run, name=f"opcua-{self.config.name}",
                                  daemon=True)
        thread.start()
        try:
            while not stop.is_set():
                try:
                    records = out.get(timeout=0.1)
                except queue.Empty:
                    if not thread.is_alive():
                        raise RuntimeError("the OPC UA client thread ended") from None
                    continue
                for kind, payload in records:
                    _hand(emitter, kind, payload)
        finally:
            session.stop()
            thread.join(10)

    def close(self) -> None:
        self.session = None

    @classmethod
    def check(cls, config: Any) -> list[str]:
        """``floorstream check``: connect as the source would and name the items the server
        does not have (an unknown NodeId, a browse path that does not resolve)."""
        from .probe import probe

        assert isinstance(config, OpcuaConfig)
        return probe(config)


def _hand(emitter: Emitter, kind: str, payload: Any) -> None:
    if kind == "change":
        emitter.emit(payload)
    elif kind == "event":
        event, checkpoint = payload
        emitter.event(event, checkpoint=checkpoint)
    elif kind == "problem":
        subject, message, position = payload
        emitter.problem(subject, message, position=position)
    elif kind == "quarantine":
        raw, reason, position, context = payload
        emitter.quarantine(raw, reason, position=position, context=context)
