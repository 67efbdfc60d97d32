"""A small but real MTConnect agent for the tests: HTTP on a local port, the documented REST API.

It starts from the real documents in ``samples/``: ``/probe`` answers the probe document byte
for byte, and ``/current`` answers the real Streams document byte for byte as long as nothing
was added since. Observations added by a test get the next sequence numbers; ``/current`` and
``/sample?from=&count=`` are then built from the agent's buffer with correct windows
(``firstSequence`` moves up as the buffer of ``buffer_size`` observations overflows, and a
``from`` below it answers an ``OUT_OF_RANGE`` error document). ``interval=`` streams
``multipart/x-mixed-replace`` parts over chunked transfer encoding, with empty documents every
``heartbeat`` when idle, as cppagent does. :meth:`restart` is an agent restart: a new
``instanceId``, sequences from 1, every open stream closed.
"""

from __future__ import annotations

import bisect
import itertools
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

SAMPLES = Path(__file__).parent / "samples"
PROBE = (SAMPLES / "SimpleDevice_probe.xml").read_bytes()
CURRENT = (SAMPLES / "SimpleStream_current.xml").read_bytes()
NS = "urn:mtconnect.org:MTConnectStreams:1.4"
_BLOCKS = {"SAMPLE": "Samples", "EVENT": "Events", "CONDITION": "Condition"}
_ids = itertools.count(2)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


@dataclass
class Entry:
    sequence: int
    device: tuple[str, str]  # name, uuid
    component: tuple[str, str, str | None]  # element name, id, name
    block: str
    element: ET.Element


class Agent:
    def __init__(self, *, buffer_size: int = 131072) -> None:
        self.buffer_size = buffer_size
        self.streaming = True  # False: an agent that answers interval= with one document
        self.lock = threading.Condition()
        self.items = self._items_of_probe()
        self.requests: list[str] = []
        self.reset()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        with self.lock:
            self.generation += 1
            self.lock.notify_all()
        self.server.shutdown()
        self.server.server_close()

    # -- state ------------------------------------------------------------------------------

    def reset(self) -> None:
        """Back to the real documents: the instance and the observations of the sample."""
        with self.lock:
            root = ET.fromstring(CURRENT)
            header = root.find(f"{{{NS}}}Header")
            assert header is not None
            self.instance = header.get("instanceId", "1")
            self.next = int(header.get("nextSequence", "1"))
            self.pristine = True
            self.entries: list[Entry] = []
            self.raw_parts: list[bytes] = []
            self.after_current: list[str] = []
            self.generation = getattr(self, "generation", 0) + 1
            for device in root.iter(f"{{{NS}}}DeviceStream"):
                dev = (device.get("name", ""), device.get("uuid", ""))
                for component in device.findall(f"{{{NS}}}ComponentStream"):
                    comp = (component.get("component", ""), component.get("componentId", ""),
                            component.get("name"))
                    for block in component:
                        for element in block:
                            self.entries.append(Entry(int(element.get("sequence", "0")), dev,
                                                      comp, _local(block.tag), element))
            self.entries.sort(key=lambda e: e.sequence)
            self.lock.notify_all()

    def restart(self, *observations: str) -> None:
        """An agent restart: new instanceId, sequence from 1, the given observations as the
        first ones (what the adapters report again after the restart)."""
        with self.lock:
            self.instance = str(int(self.instance) + next(_ids))
            self.next, self.pristine, self.entries = 1, False, []
            self.generation += 1
            self.lock.notify_all()
        for observation in observations:
            self.add(observation)

    def add(self, xml: str, timestamp: str | None = None) -> int:
        """Add an observation like ``<PartCount dataItemId="d2e9e4a0">663</PartCount>``;
        its component and block come from the probe. Returns its sequence."""
        element = ET.fromstring(xml)
        element.tag = f"{{{NS}}}{element.tag}"
        item = element.get("dataItemId", "")
        device, component, category = self.items[item]
        with self.lock:
            sequence = self.next
            self.next += 1
            element.set("sequence", str(sequence))
            element.set("timestamp", timestamp or element.get("timestamp") or
                        time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
            self.entries.append(Entry(sequence, device, component, _BLOCKS[category],
                                      element))
            if len(self.entries) > self.buffer_size + 1024:  # what fell out of the buffer
                del self.entries[:len(self.entries) - self.buffer_size]
            self.pristine = False
            self.lock.notify_all()
        return sequence

    def then(self, *observations: str) -> None:
        """Add these observations right after the next ``/current`` was answered: what a
        client reads next comes from ``/sample``, at sequence numbers fixed in advance."""
        with self.lock:
            self.after_current = list(observations)

    def add_raw_part(self, raw: bytes) -> None:
        """The next streamed part is these bytes (a broken document)."""
        with self.lock:
            self.raw_parts.append(raw)
            self.lock.notify_all()

    @property
    def first(self) -> int:
        return max(1, self.next - self.buffer_size)

    def _items_of_probe(self) -> dict[str, tuple[tuple[str, str], tuple[str, str, str | None],
                                                 str]]:
        found: dict[str, Any] = {}
        root = ET.fromstring(PROBE)

        def walk(element: ET.Element, device: tuple[str, str]) -> None:
            comp = (_local(element.tag), element.get("id", ""), element.get("name"))
            for items in element:
                if _local(items.tag) == "DataItems":
                    for item in items:
                        found[item.get("id", "")] = (device, comp, item.get("category", ""))
                if _local(items.tag) == "Components":
                    for child in items:
                        walk(child, device)

        for device in root.iter():
            if _local(device.tag) == "Device":
                walk(device, (device.get("name", ""), device.get("uuid", "")))
        return found

    # -- documents --------------------------------------------------------------------------

    def _document(self, entries: list[Entry], next_sequence: int) -> bytes:
        root = ET.Element(f"{{{NS}}}MTConnectStreams")
        ET.SubElement(root, f"{{{NS}}}Header", {
            "creationTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "sender": "test-agent", "instanceId": self.instance, "version": "1.4.0",
            "bufferSize": str(self.buffer_size), "firstSequence": str(self.first),
            "lastSequence": str(self.next - 1), "nextSequence": str(next_sequence)})
        streams = ET.SubElement(root, f"{{{NS}}}Streams")
        devices: dict[tuple[str, str], ET.Element] = {}
        blocks: dict[tuple[Any, ...], ET.Element] = {}
        components: dict[tuple[Any, ...], ET.Element] = {}
        for entry in entries:
            if entry.device not in devices:
                devices[entry.device] = ET.SubElement(streams, f"{{{NS}}}DeviceStream", {
                    "name": entry.device[0], "uuid": entry.device[1]})
            ckey = (entry.device, entry.component)
            if ckey not in components:
                attrs = {"component": entry.component[0], "componentId": entry.component[1]}
                if entry.component[2]:
                    attrs["name"] = entry.component[2]
                components[ckey] = ET.SubElement(devices[entry.device],
                                                 f"{{{NS}}}ComponentStream", attrs)
            bkey = (ckey, entry.block)
            if bkey not in blocks:
                blocks[bkey] = ET.SubElement(components[ckey], f"{{{NS}}}{entry.block}")
            blocks[bkey].append(entry.element)
        ET.register_namespace("", NS)
        return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root)

    def current(self) -> bytes:
        with self.lock:
            if self.pristine:
                return CURRENT
            latest: dict[str, Entry] = {}
            active: dict[str, dict[str, Entry]] = {}
            for entry in self.entries:
                item = entry.element.get("dataItemId", "")
                if entry.block != "Condition":
                    latest[item] = entry
                    continue
                level, code = _local(entry.element.tag), entry.element.get("nativeCode", "")
                states = active.setdefault(item, {})
                if level in ("Normal", "Unavailable"):
                    if code:
                        states.pop(code, None)
                    else:
                        states.clear()
                    if not states:
                        states[""] = entry
                else:
                    states.pop("", None)
                    states[code] = entry
            chosen = [*latest.values(), *(e for s in active.values() for e in s.values())]
            return self._document(sorted(chosen, key=lambda e: e.sequence), self.next)

    def window(self, start: int, count: int) -> tuple[int, bytes]:
        """(status, document) of ``/sample?from=start&count=count``."""
        with self.lock:
            if start < self.first or start > self.next:
                return 400, self._error("OUT_OF_RANGE",
                                        f"'from' must be greater than {self.first - 1} and "
                                        f"less than {self.next + 1}")
            at = bisect.bisect_left(self.entries, start, key=lambda e: e.sequence)
            chosen = self.entries[at:at + count]
            following = chosen[-1].sequence + 1 if chosen else self.next
            return 200, self._document(chosen, following)

    def _error(self, code: str, text: str) -> bytes:
        return (f'<?xml version="1.0" encoding="UTF-8"?>\n<MTConnectError '
                f'xmlns="urn:mtconnect.org:MTConnectError:1.4"><Header creationTime="'
                f'{time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}" sender="test-agent" '
                f'instanceId="{self.instance}" version="1.4.0" bufferSize="{self.buffer_size}"'
                f'/><Errors><Error errorCode="{code}">{text}</Error></Errors>'
                f'</MTConnectError>').encode()

    # -- HTTP -------------------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        agent = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                agent.requests.append(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                request = url.path.rstrip("/").rsplit("/", 1)[-1]
                if request == "probe":
                    self._send(200, PROBE)
                elif request == "current":
                    self._send(200, agent.current())
                    with agent.lock:
                        pending, agent.after_current = agent.after_current, []
                    for observation in pending:
                        agent.add(observation)
                elif request == "sample":
                    start = int(query.get("from", agent.first))
                    count = int(query.get("count", 100))
                    if "interval" in query and agent.streaming:
                        self._stream(start, count, int(query["interval"]) / 1000,
                                     int(query.get("heartbeat", 10000)) / 1000)
                    else:
                        self._send(*agent.window(start, count))
                else:
                    self._send(400, agent._error("UNSUPPORTED", f"no {request} here"))

            def _send(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _chunk(self, data: bytes) -> None:
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

            def _part(self, body: bytes) -> None:
                self._chunk(b"--XYZZY\r\nContent-type: text/xml\r\nContent-length: "
                            + str(len(body)).encode() + b"\r\n\r\n" + body + b"\r\n")

            def _stream(self, start: int, count: int, interval: float,
                        heartbeat: float) -> None:
                status, body = agent.window(start, count)
                if status != 200:
                    self._send(status, body)
                    return
                self.send_response(200)
                self.send_header("Content-Type",
                                 "multipart/x-mixed-replace;boundary=XYZZY")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                generation, cursor, idle_since = agent.generation, start, time.monotonic()
                try:
                    while True:
                        with agent.lock:
                            if agent.generation != generation:
                                break
                            raw = agent.raw_parts.pop(0) if agent.raw_parts else None
                            has_new = cursor < agent.next
                        if raw is not None:
                            self._part(raw)
                        elif has_new or time.monotonic() - idle_since >= heartbeat:
                            status, body = agent.window(cursor, count)
                            self._part(body)
                            if status != 200:
                                break
                            cursor = int(ET.fromstring(body)[0].get("nextSequence", cursor))
                            idle_since = time.monotonic()
                        with agent.lock:
                            if agent.generation == generation and cursor >= agent.next \
                                    and not agent.raw_parts:
                                agent.lock.wait(max(interval, 0.01))
                            elif interval:
                                agent.lock.wait(interval)
                    self._chunk(b"--XYZZY--\r\n")
                    self.wfile.write(b"0\r\n\r\n")
                except OSError:
                    pass  # the client went away
                self.close_connection = True

        return Handler
