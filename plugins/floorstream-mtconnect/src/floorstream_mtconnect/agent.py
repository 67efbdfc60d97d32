"""``mtconnect.agent``: follow an MTConnect agent through its REST API.

``/probe`` gives the device model (data item ids, names, types, units); ``/current`` the state
to start from; ``/sample?from=<next>&interval=…`` then streams every observation after it, as
a multipart response that stays open. Each observation becomes one change at position
``<instanceId>:<sequence>``, and the checkpoint is ``<instanceId>:<nextSequence>``:

* **first start** (no checkpoint): ``/current`` is a *baseline*: detectors learn the open
  alarms, the part count and every value, nothing is posted;
* **restart of floorstream**: ``/sample?from=<next>`` of the same agent instance: nothing lost
  (while the agent's buffer still holds it), nothing read twice;
* **agent restarted** (a new ``instanceId``, sequences start again): the model is probed
  again and ``/current`` is a baseline again, so alarms still open are not posted as new
  (what happened between the agent's stop and its restart is not in any agent's buffer);
* **fell out of the buffer** (``from`` below the agent's ``firstSequence``, an
  ``OUT_OF_RANGE`` error): one ``source.problem`` post naming the sequences lost, the health
  shows it, and the source goes on from ``/current``, whose observations newer than the
  checkpoint go through the detectors like any other (a fault raised in the gap is posted,
  one still open that was posted before is not).

A document that is not XML or not MTConnect is quarantined with its bytes and the reason,
and the stream goes on with the next part.
"""

from __future__ import annotations

import hashlib
import http.client
import socket
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any, ClassVar
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from floorstream.model import Change, Event, utcnow
from floorstream.plugin import (
    Adapter,
    DecodeError,
    Duration,
    Emitter,
    ReplayContext,
)
from floorstream_mtconnect.config import MTConnectSource
from floorstream_mtconnect.documents import (
    AgentError,
    DeviceModel,
    DocumentError,
    Observation,
    Streams,
    parse_devices,
    parse_document,
)
from floorstream_mtconnect.multipart import MultipartError, boundary_of, parts
from floorstream_mtconnect.observations import to_change

__all__ = ["AgentConfig", "AgentSource", "parse_checkpoint"]


class AgentConfig(MTConnectSource):
    """``mtconnect.agent`` source keys (plus the common ones: name, detect, attrs…)."""

    url: str = Field(description="the agent's base URL, e.g. http://agent:5000")
    device: str | None = Field(default=None, description="only this device (name or uuid); "
                                                         "default: every device of the agent")
    interval: Duration = Field(default=0.5, ge=0, description="the agent writes a part at "
                                                              "most this often")
    heartbeat: Duration = Field(default=10.0, gt=0, description="an idle agent sends an empty "
                                                                "part this often; silence "
                                                                "twice as long is a lost "
                                                                "connection")
    count: int = Field(default=1000, ge=1, le=100_000,
                       description="observations per part at most")
    timeout: Duration = Field(default=10.0, gt=0, description="connect and answer timeout "
                                                              "for probe and current")
    retry: Duration = Field(default=5.0, gt=0, description="wait before reconnecting")

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("expected an http:// or https:// URL of the agent")
        return value.rstrip("/")


def _active_codes(observations: list[Observation]) -> dict[str, tuple[int, list[str]]]:
    """Per condition item of a ``/current``: (index of its last observation, the native codes
    of its active Warnings and Faults). Items reported Unavailable are left out: unknown is
    not "nothing active"."""
    found: dict[str, tuple[int, list[str]]] = {}
    unknown: set[str] = set()
    for index, obs in enumerate(observations):
        if obs.category != "CONDITION":
            continue
        if obs.value == "UNAVAILABLE":
            unknown.add(obs.item_id)
        codes = found.get(obs.item_id, (index, []))[1]
        if obs.value in ("WARNING", "FAULT"):
            codes.append(obs.native_code)
        found[obs.item_id] = (index, codes)
    return {item: value for item, value in found.items() if item not in unknown}


def parse_checkpoint(checkpoint: str | None) -> tuple[str, int] | None:
    """``"<instanceId>:<nextSequence>"`` → (instance, next); None for none or another form."""
    if not checkpoint:
        return None
    instance, _, number = checkpoint.rpartition(":")
    if not instance or not number.isdigit():
        return None
    return instance, int(number)


class _CheckContext:
    """What :meth:`AgentSource.check` hands the adapter: no checkpoint, nothing else used."""

    checkpoint: str | None = None


class _Restarted(Exception):
    """The agent answered with another instanceId: it restarted."""


class _AgentFailure(Exception):
    """The agent answered, but not with what we asked for (an error document, a bad probe)."""


class AgentSource(Adapter[AgentConfig]):
    """One agent, one thread: probe, then current or resume, then one long sample stream."""

    name: ClassVar[str] = "mtconnect.agent"
    reports_connection: ClassVar[bool] = True

    def __init__(self, config: AgentConfig, context: Any) -> None:
        super().__init__(config, context)
        split = urlsplit(config.url)
        self._https = split.scheme == "https"
        self._host = split.hostname or ""
        self._port = split.port
        self._prefix = split.path.rstrip("/") + (f"/{config.device}" if config.device else "")
        resumed = parse_checkpoint(context.checkpoint)
        self._instance: str | None = resumed[0] if resumed else None
        self._next: int = resumed[1] if resumed else 0
        self._model = DeviceModel()
        self._quarantined: set[str] = set()
        self._lock = threading.Lock()
        self._connection: http.client.HTTPConnection | None = None
        self._stop = threading.Event()  # run()'s, once it runs

    # -- the loop ----------------------------------------------------------------------------

    def run(self, emitter: Emitter, stop: threading.Event) -> None:
        self._stop = stop
        log = self.context.log.bind(source=self.config.name, url=self.config.url)
        closer = threading.Thread(target=self._close_on, args=(stop,), daemon=True,
                                  name=f"mtconnect-{self.config.name}-stop")
        closer.start()
        while not stop.is_set():
            try:
                self._session(emitter, stop)
            except _Restarted:
                log.info("mtconnect_agent_restarted", before=self._instance)
                self._instance, self._next = None, 0  # probe again, baseline from /current
                stop.wait(min(self.config.retry, 0.2))  # never a tight loop on a broken agent
                continue
            except (OSError, http.client.HTTPException, _AgentFailure, MultipartError) as exc:
                if stop.is_set():
                    break
                self.context.health.disconnected(exc)
                log.warning("mtconnect_agent_unreachable", error=str(exc))
            except Exception as exc:  # a bug here must not end the source: say it, go on
                self.context.health.disconnected(exc)
                log.exception("mtconnect_agent_failed", error=str(exc))
            stop.wait(self.config.retry)

    def _close_on(self, stop: threading.Event) -> None:
        """Unblocks a read in progress when the source is stopped (a stream may be idle for a
        whole heartbeat)."""
        stop.wait()
        with self._lock:
            connection = self._connection
        if connection is not None and connection.sock is not None:
            with suppress(OSError):
                connection.sock.shutdown(socket.SHUT_RDWR)

    def _session(self, emitter: Emitter, stop: threading.Event) -> None:
        self._model = self._probe(emitter)
        self.context.health.connected()
        if self._instance is None:
            self._from_current(emitter, baseline=True)
        while not stop.is_set():
            self._follow(emitter, stop)

    # -- HTTP ---------------------------------------------------------------------------------

    @contextmanager
    def _request(self, path: str, timeout: float) -> Iterator[http.client.HTTPResponse]:
        kind = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        connection = kind(self._host, self._port, timeout=timeout)
        with self._lock:
            self._connection = connection
        try:
            connection.request("GET", f"{self._prefix}{path}",
                               headers={"Accept": "application/xml"})
            if self._stop.is_set():  # stopped while connecting: the closer found no socket
                raise OSError("stopping")
            yield connection.getresponse()
        finally:
            with self._lock:
                self._connection = None
            connection.close()

    def _get(self, path: str) -> tuple[int, bytes]:
        with self._request(path, self.config.timeout) as response:
            body = response.read(self.config.max_document + 1)
            return response.status, body

    def _document(self, emitter: Emitter, raw: bytes, what: str) -> Streams | AgentError | None:
        """Parse, or quarantine (once per distinct payload) and return None."""
        try:
            if len(raw) > self.config.max_document:
                raise DocumentError(f"{what} is above the {self.config.max_document}-byte "
                                    "limit")
            return parse_document(raw)
        except DocumentError as exc:
            self._quarantine(emitter, raw, f"{what}: {exc}")
            return None

    def _quarantine(self, emitter: Emitter, raw: bytes, reason: str) -> None:
        digest = hashlib.blake2b(raw, digest_size=16).hexdigest()
        if digest in self._quarantined:
            return
        self._quarantined.add(digest)
        emitter.quarantine(raw, reason, position=f"{self._instance}:{self._next}",
                           context={"url": self.config.url, "reason": "invalid"})

    # -- probe and current --------------------------------------------------------------------

    def _probe(self, emitter: Emitter) -> DeviceModel:
        status, raw = self._get("/probe")
        try:
            return parse_devices(raw)
        except DocumentError as exc:
            document = None
            with suppress(DocumentError):
                document = parse_document(raw)
            if isinstance(document, AgentError):
                raise _AgentFailure(f"/probe answered {status} {', '.join(document.codes)}: "
                                    f"{document.text}") from None
            self._quarantine(emitter, raw, f"/probe: {exc}")
            raise _AgentFailure(f"/probe answered {status} with a document that is not a "
                                f"device model: {exc}") from None

    def _current(self, emitter: Emitter) -> Streams:
        """``/current``; raises ``_Restarted`` when it comes from another agent instance."""
        status, raw = self._get("/current")
        document = self._document(emitter, raw, "/current")
        if document is None:
            raise _AgentFailure("/current answered a document that could not be read")
        if isinstance(document, AgentError):
            raise _AgentFailure(f"/current answered {status} {', '.join(document.codes)}: "
                                f"{document.text}")
        if self._instance is not None and document.header.instance_id != self._instance:
            raise _Restarted
        return document

    def _from_current(self, emitter: Emitter, *, baseline: bool,
                      document: Streams | None = None) -> None:
        """Read ``/current``: all of it as a baseline, or (after a gap) the observations newer
        than the checkpoint as ordinary changes."""
        if document is None:
            document = self._current(emitter)
        if baseline:
            self._next = 0
        newer = self._next
        self._instance = document.header.instance_id
        self._emit(emitter, document, baseline=baseline, after=newer, snapshot=True)

    # -- the sample stream --------------------------------------------------------------------

    def _follow(self, emitter: Emitter, stop: threading.Event) -> None:
        config = self.config
        path = (f"/sample?from={self._next}&count={config.count}"
                f"&interval={round(config.interval * 1000)}"
                f"&heartbeat={round(config.heartbeat * 1000)}")
        with self._request(path, 2 * config.heartbeat + config.timeout) as response:
            boundary = boundary_of(response.getheader("Content-Type", ""))
            if boundary is None:  # an agent without streaming: one document, then ask again
                raw = response.read(config.max_document + 1)
                self._handle(emitter, raw, response.status)
                if not stop.is_set():
                    stop.wait(max(config.interval, 0.05))
                return
            count = 0
            for raw in parts(response, boundary, config.max_document):
                count += 1
                if stop.is_set() or not self._handle(emitter, raw, response.status):
                    return
        # the agent closed the stream (it restarts, a proxy timed out): ask again from next,
        # at once unless it closed without a single part (then not in a tight loop)
        if not count:
            self.context.health.disconnected("the agent closed the sample stream at once")
            stop.wait(min(config.retry, 1.0))

    def _handle(self, emitter: Emitter, raw: bytes, status: int) -> bool:
        """One document of the stream; False when the stream must be opened again."""
        document = self._document(emitter, raw, "/sample")
        if document is None:
            return True
        if isinstance(document, AgentError):
            if document.header is not None and document.header.instance_id != self._instance:
                raise _Restarted
            if "OUT_OF_RANGE" in document.codes:
                self._out_of_range(emitter, document)
                return False
            raise _AgentFailure(f"/sample answered {status} {', '.join(document.codes)}: "
                                f"{document.text}")
        if document.header.instance_id != self._instance:
            raise _Restarted
        if self._next < document.header.first_sequence:
            self._out_of_range(emitter, None, first=document.header.first_sequence)
            return False
        self.context.health.connected()
        self._emit(emitter, document, baseline=False, after=self._next)
        return True

    def _out_of_range(self, emitter: Emitter, error: AgentError | None,
                      first: int | None = None) -> None:
        lost_from = self._next
        current = self._current(emitter)  # first: a restarted agent is no gap to report
        detail = f" ({error.text})" if error is not None and error.text else ""
        kept = f"; the agent keeps {first} onwards" if first is not None else ""
        message = (f"observations from sequence {lost_from} of agent instance "
                   f"{self._instance} fell out of the agent's buffer before they were read"
                   f"{kept}{detail}: they are lost; going on from the agent's current state")
        self.context.health.disconnected(message)
        self.context.log.warning("mtconnect_out_of_range", source=self.config.name,
                                 sequence=lost_from, instance=self._instance)
        emitter.problem(self.config.device or self.config.url, message,
                        position=f"{self._instance}:{lost_from}:out_of_range",
                        fields={"instance": self._instance, "from": lost_from})
        self._from_current(emitter, baseline=False, document=current)
        self.context.health.connected()

    def _emit(self, emitter: Emitter, document: Streams, *, baseline: bool, after: int,
              snapshot: bool = False) -> None:
        """Hand over the document's observations from sequence ``after`` on. A ``/current``
        (``snapshot``) lists every condition item's active alarms: the last observation of
        each condition item goes too (even when older than ``after``) and says which codes
        are active, so alarms that cleared unseen (in a gap, across an agent restart) close."""
        header = document.header
        instance = header.instance_id
        observations = document.observations
        active = _active_codes(observations) if snapshot else {}
        marked = {index for index, _ in active.values()}
        fresh = [(i, o) for i, o in enumerate(observations) if o.sequence >= after or i in marked]
        done = f"{instance}:{max(header.next_sequence, self._next)}"
        send = emitter.baseline if baseline else emitter.emit
        now = utcnow()
        source, attrs = self.config.name, dict(self.config.attrs)
        for count, (index, obs) in enumerate(fresh):
            last = count == len(fresh) - 1
            # a baseline is one unit: only its end moves the checkpoint (a restart in the
            # middle reads /current again); a stream moves it after every observation
            checkpoint = done if last else (None if baseline else
                                            f"{instance}:{max(obs.sequence + 1, after)}")
            codes = active.get(obs.item_id)
            change = to_change(source, obs, f"{instance}:{obs.sequence}",
                               item=self._model.items.get(obs.item_id), attrs=attrs,
                               observed_at=now,
                               active=codes[1] if codes and codes[0] == index else None,
                               active_at=done)
            send(change, checkpoint=checkpoint)
        if not fresh and done != f"{self._instance}:{self._next}":
            emitter.checkpoint(done)
        self._instance = instance
        self._next = max(header.next_sequence, self._next)

    @classmethod
    def check(cls, config: Any) -> list[str]:
        """``floorstream check``: the agent answers ``/probe`` with a device model (and has
        the configured device); a warning saying why not, else nothing."""
        source = cls(config, _CheckContext())
        try:
            status, raw = source._get("/probe")
        except (OSError, http.client.HTTPException) as exc:
            return [f"cannot reach the agent at {config.url} now: {exc}"]
        try:
            model = parse_devices(raw)
        except DocumentError as exc:
            try:
                document = parse_document(raw)
            except DocumentError:
                document = None
            if isinstance(document, AgentError):
                return [f"{config.url}{source._prefix}/probe answered {status} "
                        f"{', '.join(document.codes)}: {document.text}"]
            return [f"{config.url}{source._prefix}/probe is not a device model: {exc}"]
        if config.device and config.device not in model.devices \
                and config.device not in model.devices.values():
            return [f"the agent lists no device {config.device!r} (it has: "
                    f"{', '.join(model.devices)})"]
        return []

    @classmethod
    def replay(cls, raw: bytes, context: ReplayContext) -> Sequence[Change | Event]:
        """A quarantined Streams document read again: the same positions as live (its
        observations carry their own sequence and the header its instance)."""
        try:
            document = parse_document(raw)
        except DocumentError as exc:
            raise DecodeError(str(exc)) from exc
        if isinstance(document, AgentError):
            return []
        instance, now = document.header.instance_id, utcnow()
        return [to_change(context.config.name, obs, f"{instance}:{obs.sequence}", item=None,
                          attrs=dict(context.config.attrs), observed_at=now)
                for obs in document.observations]
