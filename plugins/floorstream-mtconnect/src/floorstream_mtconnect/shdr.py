"""``mtconnect.shdr``: read an MTConnect adapter's SHDR stream directly, over TCP.

An SHDR adapter (the program next to the CNC that an agent normally connects to) writes one
line per instant, pipe-delimited::

    2022-08-08T13:57:44.3292338Z|pexecution|ACTIVE
    2022-08-08T13:57:45.1388093Z|p1block|NR02 G00 W=WL+CL1|X1load|55|Z4actm|5576.6236
    2022-08-08T13:57:41.9185216Z|system|NORMAL||||                     (a condition)
    2022-08-08T13:57:41.9185216Z|Xtravel|FAULT|OT-1|2|HIGH|Overtravel   (level|code|severity|
                                                                          qualifier|text)

What floorstream does with it:

* **the initial dump is a baseline.** On every connection the adapter first writes every
  item's current value, at one timestamp. The lines at the first timestamp of a connection are
  learnt by the detectors and posted never: a reconnect does not repeat alarms or cycles.
* **a jump backwards in time is a baseline too.** When a line is more than ``jump`` earlier
  than the latest one (the adapter restarted with another clock, two recordings were joined),
  the lines at that earlier timestamp are a new dump. Smaller steps back are ordinary: adapters
  stamp items from several threads, and the Okuma recording has steps of 10–95 ms.
* **what an item is** comes from the device model when ``probe:`` names the agent's device
  file (type, units, category); else ``types:`` names the types that matter (``pexecution:
  EXECUTION``), and a value that reads NORMAL, WARNING or FAULT followed by four more fields
  is a condition (``conditions:`` lists condition items explicitly).
* assets (``@ASSET@`` with ``--multiline--`` bodies) and protocol lines (``* PONG``,
  ``* shdrVersion:``) are not observations and are skipped; a line that cannot be read (no
  timestamp, a key without a value, bad UTF-8) is quarantined with its bytes and the reason.

SHDR has no history: what an adapter wrote while floorstream was not connected is gone, and
a reconnect starts with a dump. The checkpoint is the last timestamp read, for people.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, field_validator

from floorstream.model import Change, Event, utcnow
from floorstream.plugin import Adapter, DecodeError, Duration, Emitter, ReplayContext
from floorstream_mtconnect.config import MTConnectSource
from floorstream_mtconnect.documents import (
    DataItem,
    DeviceModel,
    DocumentError,
    Observation,
    parse_devices,
    parse_time,
)
from floorstream_mtconnect.observations import to_change

__all__ = ["ShdrConfig", "ShdrLine", "ShdrSource", "parse_line"]

_LEVELS = frozenset({"NORMAL", "WARNING", "FAULT"})
_EVENT_TYPES = frozenset({"EXECUTION", "CONTROLLER_MODE", "PART_COUNT", "PROGRAM",
                          "AVAILABILITY", "FUNCTIONAL_MODE", "EMERGENCY_STOP", "BLOCK",
                          "LINE", "TOOL_NUMBER", "PROGRAM_COMMENT", "DOOR_STATE"})


class ShdrConfig(MTConnectSource):
    """``mtconnect.shdr`` source keys (plus the common ones: name, detect, attrs…)."""

    host: str = Field(description="the adapter's host")
    port: int = Field(default=7878, ge=1, le=65535, description="the adapter's port")
    device: str = Field(description="the machine's name: the subject of its changes")
    probe: Path | None = Field(default=None, description="the device's MTConnectDevices "
                                                         "XML (an agent's Devices.xml): item "
                                                         "types, units and categories")
    types: dict[str, str] = Field(default_factory=dict,
                                  description="SHDR key → MTConnect type (pexecution: "
                                              "EXECUTION, ppartcount: PART_COUNT)")
    condition_items: list[str] = Field(default_factory=list,
                                       description="keys that are conditions, beyond the "
                                                   "probe's")
    jump: Duration = Field(default=1.0, ge=0, description="a line this much earlier than "
                                                          "the latest is a time jump back "
                                                          "(a baseline)")
    heartbeat: Duration = Field(default=10.0, gt=0, description="PING the adapter this often "
                                                                "(when it answers PONG)")
    timeout: Duration = Field(default=10.0, gt=0, description="connect timeout")
    retry: Duration = Field(default=5.0, gt=0, description="wait before reconnecting")

    @field_validator("types")
    @classmethod
    def _upper(cls, value: dict[str, str]) -> dict[str, str]:
        return {k: v.strip().upper() for k, v in value.items()}

    @field_validator("probe")
    @classmethod
    def _readable(cls, value: Path | None) -> Path | None:
        """A device file that cannot be read is a config error, found by ``check``."""
        if value is not None:
            try:
                parse_devices(value.read_bytes())
            except OSError as exc:
                raise ValueError(f"cannot read {value}: {exc.strerror or exc}") from None
            except DocumentError as exc:
                raise ValueError(f"{value} is not an MTConnectDevices document: {exc}") \
                    from None
        return value


@dataclass(frozen=True, slots=True)
class ShdrLine:
    """What one data line says: its time and its observations (empty for an asset)."""

    timestamp: str
    time: datetime
    observations: list[tuple[Observation, DataItem | None, str]]  # (obs, item, position)
    multiline: str | None = None  # an asset body follows, up to this terminator


def _item(key: str, config: ShdrConfig, model: DeviceModel | None, value: str) -> \
        DataItem | None:
    if model is not None and (found := model.find(key)) is not None:
        return found
    kind = config.types.get(key)
    if kind is None and key.lower() in ("avail", "availability"):
        kind = "AVAILABILITY"
    if kind is None:
        return None
    category = "EVENT" if kind in _EVENT_TYPES else "SAMPLE"
    return DataItem(id=key, name=key, type=kind, category=category, device=config.device,
                    component="", component_id="")


def parse_line(text: str, config: ShdrConfig, model: DeviceModel | None) -> ShdrLine:
    """One data line; raises ``DocumentError`` with the reason when it cannot be read."""
    fields = text.split("|")
    stamp = fields[0].strip()
    when = parse_time(stamp)
    if when is None:
        raise DocumentError(f"{stamp[:40]!r} is not a timestamp")
    found: list[tuple[Observation, DataItem | None, str]] = []
    used: set[str] = set()
    index = 1
    while index < len(fields):
        key = fields[index].strip()
        if key.startswith("@"):  # @ASSET@, @REMOVE_ASSET@, @UPDATE_ASSET@…: not observations
            last = fields[-1].strip()
            return ShdrLine(stamp, when, found,
                            last if last.startswith("--multiline--") else None)
        if not key:
            raise DocumentError(f"field {index + 1} should name an item and is empty")
        device = config.device
        prefix, colon, rest_of_key = key.partition(":")
        if colon and rest_of_key and (prefix == config.device or (
                model is not None and prefix in model.devices)):
            device, key = prefix, rest_of_key  # an adapter for several devices: Device:item
        if index + 1 >= len(fields):
            raise DocumentError(f"item {key!r} has no value")
        value = fields[index + 1]
        item = _item(key, config, model, value)
        rest = fields[index + 2:index + 6]
        condition = (item.category == "CONDITION" if item is not None else
                     key in config.condition_items
                     or (value.strip().upper() in _LEVELS and len(rest) == 4)
                     or (value.strip().upper() == "UNAVAILABLE" and len(rest) == 4
                         and not any(r.strip() for r in rest)))
        if condition:
            if len(rest) < 4:
                raise DocumentError(f"condition {key!r} needs level|nativeCode|severity|"
                                    "qualifier|text")
            code, severity, qualifier, message = (r.strip() for r in rest)
            level = value.strip().upper()
            obs = Observation(0, stamp, key, key, level.title(), "CONDITION", level,
                              device, item.component if item else "",
                              item.component_id if item else "", native_code=code,
                              native_severity=severity, qualifier=qualifier, text=message,
                              condition_type=item.type if item else "")
            position = f"{stamp}:{fields[index].strip()}:{code}"
            index += 6
        else:
            category = item.category if item is not None else (
                "SAMPLE" if _number(value) else "EVENT")
            obs = Observation(0, stamp, key, key, "", category, value.strip(), device,
                              item.component if item else "",
                              item.component_id if item else "")
            position = f"{stamp}:{fields[index].strip()}"
            index += 2
        while position in used:
            position += "+"
        used.add(position)
        found.append((obs, item, position))
    return ShdrLine(stamp, when, found)


def _number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


class _Lines:
    """Lines from a socket, with a short receive timeout so a stop is seen promptly."""

    def __init__(self, sock: socket.socket, limit: int) -> None:
        self.sock, self.limit, self.buffer = sock, limit, b""
        self.last_data = time.monotonic()
        self.skipping = False  # the rest of a line already handed over as too long

    def lines(self, stop: threading.Event) -> Iterator[bytes | None]:
        """Complete lines; None when nothing came for a while (to send a PING)."""
        while not stop.is_set():
            newline = self.buffer.find(b"\n")
            if newline >= 0:
                line, self.buffer = self.buffer[:newline + 1], self.buffer[newline + 1:]
                if self.skipping:
                    self.skipping = False
                    continue
                yield line if len(line) <= self.limit else line[:self.limit]  # (no end: long)
                continue
            if len(self.buffer) > self.limit:
                line, self.buffer = self.buffer, b""
                if not self.skipping:
                    self.skipping = True
                    yield line  # too long: its start, without an end, to be quarantined
                continue
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                yield None
                continue
            if not chunk:
                return
            self.last_data = time.monotonic()
            self.buffer += chunk


class ShdrSource(Adapter[ShdrConfig]):
    name: ClassVar[str] = "mtconnect.shdr"
    reports_connection: ClassVar[bool] = True

    def __init__(self, config: ShdrConfig, context: Any) -> None:
        super().__init__(config, context)
        self._model: DeviceModel | None = None
        if config.probe is not None:
            self._model = parse_devices(config.probe.read_bytes())

    @classmethod
    def check(cls, config: Any) -> list[str]:
        """``floorstream check``: the adapter accepts a connection (nothing is read)."""
        try:
            with socket.create_connection((config.host, config.port),
                                          timeout=min(config.timeout, 5.0)):
                return []
        except OSError as exc:
            return [f"cannot connect to the SHDR adapter at {config.host}:{config.port} now: "
                    f"{exc.strerror or exc}"]

    def run(self, emitter: Emitter, stop: threading.Event) -> None:
        log = self.context.log.bind(source=self.config.name, host=self.config.host,
                                    port=self.config.port)
        while not stop.is_set():
            try:
                with socket.create_connection((self.config.host, self.config.port),
                                              timeout=self.config.timeout) as sock:
                    sock.settimeout(0.2)
                    # an adapter that never answers PING: the kernel still finds a dead peer
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
                    self.context.health.connected()
                    reason = self._follow(sock, emitter, stop)
                if not stop.is_set():
                    self.context.health.disconnected(reason)
                    log.warning("mtconnect_shdr_connection_lost", reason=reason)
            except OSError as exc:
                if stop.is_set():
                    break
                self.context.health.disconnected(exc)
                log.warning("mtconnect_shdr_unreachable", error=str(exc))
            except Exception as exc:  # a bug here must not end the source: say it, go on
                self.context.health.disconnected(exc)
                log.exception("mtconnect_shdr_failed", error=str(exc))
            stop.wait(self.config.retry)

    def _follow(self, sock: socket.socket, emitter: Emitter, stop: threading.Event) -> str:
        """Read lines until the connection ends; returns why it ended."""
        config = self.config
        reader = _Lines(sock, config.max_document)
        sock.sendall(b"* PING\n")
        pong: float | None = None  # the adapter's heartbeat, once it answered a PING
        pinged = time.monotonic()
        dump: str | None = None  # the timestamp whose lines are a baseline
        first = True
        latest: datetime | None = None
        multiline: str | None = None
        for raw in reader.lines(stop):
            now = time.monotonic()
            if pong is not None and now - reader.last_data > 2 * pong:
                return f"no PONG from the adapter for {2 * pong:g} s"
            if now - pinged >= (pong or config.heartbeat):
                sock.sendall(b"* PING\n")
                pinged = now
            if raw is None:
                continue
            if multiline is not None:  # an asset's XML body: skipped up to its terminator
                if raw.strip() == multiline.encode():
                    multiline = None
                continue
            if not raw.endswith(b"\n"):
                self._quarantine(emitter, raw, f"a line above the {config.max_document}-"
                                 "byte limit (its start is kept)", reason="too_large")
                continue
            try:
                text = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as exc:
                self._quarantine(emitter, raw, f"not UTF-8: {exc}")
                continue
            if not text.strip():
                continue
            if text.startswith("*"):
                command = text[1:].strip()
                if command.upper().startswith("PONG"):
                    try:
                        pong = max(0.05, float(command[4:].strip()) / 1000)
                    except ValueError:
                        pong = config.heartbeat
                continue
            try:
                line = parse_line(text, config, self._model)
            except DocumentError as exc:
                self._quarantine(emitter, raw, str(exc))
                continue
            if line.multiline is not None:
                multiline = line.multiline
            if not line.observations:
                continue
            jumped = latest is not None and (latest - line.time).total_seconds() > config.jump
            if first or jumped:
                if jumped:
                    self.context.log.info("mtconnect_shdr_time_jump", source=config.name,
                                          at=line.timestamp, latest=latest.isoformat()
                                          if latest is not None else None)
                dump, latest, first = line.timestamp, line.time, False
            elif line.timestamp != dump:
                dump = None
            assert latest is not None
            latest = max(latest, line.time)
            self._send(emitter, line, baseline=line.timestamp == dump)
        return "the adapter closed the connection"

    def _send(self, emitter: Emitter, line: ShdrLine, *, baseline: bool) -> None:
        send = emitter.baseline if baseline else emitter.emit
        now = utcnow()
        attrs = dict(self.config.attrs)
        last = len(line.observations) - 1
        for index, (obs, item, position) in enumerate(line.observations):
            change = to_change(self.config.name, obs, position, item=item, attrs=attrs,
                               observed_at=now)
            send(change, checkpoint=line.timestamp if index == last else None)

    def _quarantine(self, emitter: Emitter, raw: bytes, error: str,
                    reason: str = "invalid") -> None:
        emitter.quarantine(raw, error, position=raw[:40].decode("utf-8", "replace"),
                           context={"reason": reason, "device": self.config.device})

    @classmethod
    def replay(cls, raw: bytes, context: ReplayContext) -> Sequence[Change | Event]:
        """A quarantined line read again with the source's config as it is now."""
        config = context.config
        model = parse_devices(config.probe.read_bytes()) if config.probe else None
        try:
            line = parse_line(raw.decode("utf-8").rstrip("\r\n"), config, model)
        except (UnicodeDecodeError, DocumentError) as exc:
            raise DecodeError(str(exc)) from exc
        now = utcnow()
        return [to_change(config.name, obs, position, item=item, attrs=dict(config.attrs),
                          observed_at=now) for obs, item, position in line.observations]
