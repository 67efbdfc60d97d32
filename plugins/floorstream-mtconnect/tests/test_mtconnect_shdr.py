"""``mtconnect.shdr`` reading the real Okuma SHDR recording over a real TCP socket: the dump at
the first timestamp and the one after the time jump back are baselines, assets and protocol
lines are skipped, bad lines are quarantined, and the daemon makes one post of the whole
recording: the cycle."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from floorstream_mtconnect.shdr import ShdrSource, parse_line

from floorstream.config import parse_config
from floorstream.daemon import Daemon
from floorstream.plugin import AdapterContext
from floorstream.plugins import build_plugins
from floorstream.store.store import Store
from floorstream.testing import AdapterConformance, RecordingEmitter
from support.waiting import wait_for

RECORDING = (Path(__file__).parent / "samples"
             / "okuma_shdr_excerpt_lines10590-10770.txt").read_bytes()
LINES = RECORDING.decode().splitlines()
TYPES = {"pexecution": "EXECUTION", "ppartcount": "PART_COUNT", "pmode": "CONTROLLER_MODE",
         "fmode": "FUNCTIONAL_MODE"}


class Adapter:
    """An SHDR adapter on a local port: every connection gets the recording (and what a test
    appends), like cppagent's simulator replaying a file, and its PINGs a PONG."""

    def __init__(self, tail: bytes = b"", recording: bytes = RECORDING) -> None:
        self.payload = recording + tail
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.connections = 0
        self.pings = 0
        self.pong = b"* PONG 1000\n"
        self.answers = 1_000_000  # PINGs answered per connection, then silence
        self.closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        with client:
            try:
                client.sendall(self.payload)
                client.settimeout(0.2)
                answered = 0
                while not self.closed.is_set():
                    try:
                        data = client.recv(1024)
                    except TimeoutError:
                        continue
                    if not data:
                        return
                    for _ in range(data.count(b"* PING")):
                        self.pings += 1
                        if answered < self.answers:
                            answered += 1
                            client.sendall(self.pong)
            except OSError:
                return

    def close(self) -> None:
        self.closed.set()
        self.server.close()


ADAPTER = Adapter()


class TestShdrConformance(AdapterConformance):
    adapter = ShdrSource
    config = {"name": "okuma", "adapter": "mtconnect.shdr", "host": "127.0.0.1",
              "port": ADAPTER.port, "device": "okuma", "types": TYPES, "retry": 0.1}
    min_changes = 300
    timeout = 20.0
    # SHDR has no history to resume from: the recording is replayed on every connection, so
    # what the kit checks here is that a second connection hands every line over the same
    # way (the dumps as baselines, the rest as changes) at the same positions, so the post
    # ids of a replay are the ones already made
    exact_resume = False


@pytest.fixture
def adapter() -> Iterator[Adapter]:
    server = Adapter(tail=b"not a timestamp|x|1\n"
                          b"2022-08-08T13:58:09.0000000Z|lonely\n"
                          b"2022-08-08T13:58:09.1000000Z|X1load|\xff\xfe\n"
                          b"2022-08-08T13:58:10.0000000Z|ppartcount|2\n")
    yield server
    server.close()


def follow(server: Adapter, until: Callable[[RecordingEmitter], bool],
           **keys: object) -> RecordingEmitter:
    config = ShdrSource.config_model.model_validate(
        {"name": "okuma", "adapter": "mtconnect.shdr", "host": "127.0.0.1",
         "port": server.port, "device": "okuma", "types": TYPES, "heartbeat": 0.1, **keys})
    emitter = RecordingEmitter()
    source = ShdrSource(config, AdapterContext(
        "okuma", None, build_plugins(load_entry_points=False).decoders))
    thread = threading.Thread(target=source.run, args=(emitter, emitter.stop))
    thread.start()
    try:
        wait_for(lambda: until(emitter), what="the recording")
    finally:
        emitter.stop.set()
        thread.join(5)
    assert not thread.is_alive()
    return emitter


def test_the_dumps_are_baselines_and_the_rest_are_changes(adapter: Adapter) -> None:
    emitter = follow(adapter, lambda e: len(e.quarantined) == 3 and adapter.pings >= 2)
    baseline_times = {c.position.split(":")[0][:26] for c in emitter.baselines}
    stamp = {line.split("|")[0][:26] for line in (LINES[0], LINES[15])}
    # the first line of the connection, and the full state dump after the jump back from
    # 14:30:19 to 13:57:41 (its 79 items and the ten system conditions), nothing else
    assert {c.occurred_at.isoformat()[:26] for c in emitter.baselines} == {
        "2022-08-08T14:30:16.792719", "2022-08-08T13:57:41.918521"} and len(stamp) == 2
    assert len(emitter.baselines) == 1 + 79 + 10 and len(baseline_times) == 2
    dumped = {c.data["mtconnect"]["key"]: c for c in emitter.baselines}
    assert dumped["ppartcount"].data["ppartcount"] == 0  # the counter reset: learnt, unsaid
    assert dumped["system"].kind == "mtconnect.condition"
    assert dumped["system"].data["mtconnect"]["level"] == "NORMAL"
    assert dumped["avail"].data["avail"] == "AVAILABLE"
    # the small steps back (13:57:49.06 → 48.97) are ordinary lines, not dumps
    cutting = [c for c in emitter.changes if "pCuttingTime" in c.data]
    assert [c.data["pCuttingTime"] for c in cutting] == [1389, 1390]
    # samples are numbers, a 3D position stays text, an UNAVAILABLE is no value
    loads = [c.data["X1load"] for c in emitter.changes if "X1load" in c.data]
    assert loads[:3] == [51.0, 52.0, 51.0]
    frcmd = [c for c in emitter.changes if c.data["mtconnect"]["key"] == "p1Frcmd"]
    assert frcmd[1].data["mtconnect"]["unavailable"] and "p1Frcmd" not in frcmd[1].data
    # the assets and their XML bodies, the '*' lines: skipped, not quarantined
    assert not any("CuttingTool" in str(c.data) for c in emitter.emitted)
    bad = [(q.raw, q.error) for q in emitter.quarantined]
    assert bad[0] == (b"not a timestamp|x|1\n", "'not a timestamp' is not a timestamp")
    assert bad[1] == (b"2022-08-08T13:58:09.0000000Z|lonely\n", "item 'lonely' has no value")
    assert bad[2][0].endswith(b"\xff\xfe\n") and "not UTF-8" in bad[2][1]
    assert emitter.changes[-1].data["ppartcount"] == 2  # the source went on
    assert emitter.last_checkpoint == "2022-08-08T13:58:10.0000000Z"


def test_a_condition_line_with_its_native_code() -> None:
    config = ShdrSource.config_model.model_validate(
        {"name": "m", "adapter": "mtconnect.shdr", "host": "h", "device": "m"})
    line = parse_line("2022-08-08T13:57:41.9185216Z|Xtravel|FAULT|OT-1|2|HIGH|X overtravel"
                      "|Xload|51", config, None)
    (cond, _, position), (load, _, _) = line.observations
    assert (cond.category, cond.value, cond.native_code, cond.qualifier, cond.text) == (
        "CONDITION", "FAULT", "OT-1", "HIGH", "X overtravel")
    assert position == "2022-08-08T13:57:41.9185216Z:Xtravel:OT-1"
    assert (load.item_id, load.value, load.category) == ("Xload", "51", "SAMPLE")
    # an adapter for several devices prefixes their items: Device:item
    line = parse_line("2022-08-08T13:57:41Z|m:avail|AVAILABLE|other:Xload|3", config, None)
    (avail, _, position), (other, _, _) = line.observations
    assert (avail.device, avail.item_id, position) == ("m", "avail",
                                                      "2022-08-08T13:57:41Z:m:avail")
    assert (other.device, other.item_id) == ("m", "other:Xload")  # not a device we know


CONFIG = """
store: sqlite:///{db}
teams: {{production: {{}}}}
sources:
  - name: okuma
    adapter: mtconnect.shdr
    host: 127.0.0.1
    port: {port}
    device: okuma-p300
    types: {{pexecution: EXECUTION, ppartcount: PART_COUNT, pmode: CONTROLLER_MODE}}
routes:
  - match: {{source: okuma}}
    teams: [production]
"""


def test_the_daemon_makes_one_post_of_the_recording_the_cycle(adapter: Adapter,
                                                              tmp_path: Path) -> None:
    plugins = build_plugins()
    config = parse_config(CONFIG.format(db=tmp_path / "fs.db", port=adapter.port), plugins)
    store = Store.open(config.settings.store)
    daemon = Daemon(config, plugins)
    daemon.start()
    try:
        # the last line (part 2) is the sentinel: once it is posted, all before it was read
        found = wait_for(lambda: (p if len(p := store.feed("production")) >= 2 else None),
                         what="the sentinel part")
        assert [p.summary for p in reversed(found)] == [
            "okuma-p300: cycle complete, part 1 (17 s)",  # ACTIVE 13:57:44 → count 13:58:01
            "okuma-p300: cycle complete, part 2"]
        assert store.count_quarantined(source="okuma") == 3
    finally:
        daemon.stop()
        store.close()


def test_a_probe_that_cannot_be_read_is_a_config_error(tmp_path: Path) -> None:
    from pydantic import ValidationError

    broken = tmp_path / "Devices.xml"
    broken.write_text("<MTConnectDevices><Devices>")
    base = {"name": "m", "adapter": "mtconnect.shdr", "host": "h", "device": "m"}
    with pytest.raises(ValidationError, match="is not an MTConnectDevices document"):
        ShdrSource.config_model.model_validate({**base, "probe": str(broken)})
    with pytest.raises(ValidationError, match="cannot read"):
        ShdrSource.config_model.model_validate({**base, "probe": str(tmp_path / "none.xml")})


def test_a_quarantined_line_replays_once_the_config_knows_its_items(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from floorstream.plugin import DecodeError, ReplayContext

    def replay(raw: bytes, **keys: object) -> list[Any]:
        config = ShdrSource.config_model.model_validate(
            {"name": "m", "adapter": "mtconnect.shdr", "host": "h", "device": "m", **keys})
        return list(ShdrSource.replay(raw, ReplayContext(
            "m", config, None, {}, datetime.now(UTC),
            build_plugins(load_entry_points=False).decoders)))

    line = b"2022-08-08T13:58:09.0000000Z|ppartcount|7\n"
    (change,) = replay(line, types={"ppartcount": "PART_COUNT"})
    assert change.position == "2022-08-08T13:58:09.0000000Z:ppartcount"
    assert change.data["ppartcount"] == 7
    with pytest.raises(DecodeError, match="has no value"):
        replay(b"2022-08-08T13:58:09.0000000Z|lonely\n")


def test_a_line_above_the_limit_is_quarantined_once_and_the_next_line_read() -> None:
    server = Adapter(recording=b"2022-08-08T13:58:08.0000000Z|ppartcount|1\n"
                               b"2022-08-08T13:58:09.0000000Z|p1block|" + b"G01 X1 " * 500
                               + b"\n2022-08-08T13:58:10.0000000Z|ppartcount|2\n")
    try:
        emitter = follow(server, lambda e: len(e.changes) == 1, max_document=1024)
    finally:
        server.close()
    (long,) = emitter.quarantined
    assert long.raw.startswith(b"2022-08-08T13:58:09.0000000Z|p1block|G01")
    assert "above the 1024-byte limit" in long.error
    assert [c.data["ppartcount"] for c in emitter.emitted] == [1, 2]  # a baseline, a change


def test_check_says_when_the_adapter_cannot_be_reached() -> None:
    def check(port: int) -> list[str]:
        return ShdrSource.check(ShdrSource.config_model.model_validate(
            {"name": "m", "adapter": "mtconnect.shdr", "host": "127.0.0.1", "port": port,
             "device": "m"}))

    assert check(ADAPTER.port) == []
    (warning,) = check(9)
    assert warning == "cannot connect to the SHDR adapter at 127.0.0.1:9 now: Connection refused"


def test_an_adapter_that_stops_answering_ping_is_left_and_reconnected() -> None:
    server = Adapter(recording=b"2022-08-08T13:58:08.0000000Z|ppartcount|1\n")
    server.pong, server.answers = b"* PONG 100\n", 1  # a 100 ms heartbeat, then silence
    config = ShdrSource.config_model.model_validate(
        {"name": "m", "adapter": "mtconnect.shdr", "host": "127.0.0.1", "port": server.port,
         "device": "m", "retry": 0.05})
    emitter = RecordingEmitter()
    source = ShdrSource(config, AdapterContext(
        "m", None, build_plugins(load_entry_points=False).decoders))
    thread = threading.Thread(target=source.run, args=(emitter, emitter.stop))
    thread.start()
    try:
        wait_for(lambda: server.connections >= 2, what="a second connection")
        assert "no PONG from the adapter for 0.2 s" in (source.context.health.last_error
                                                        or "")
        # the second connection's dump is read after the server counted the connection
        wait_for(lambda: len(emitter.baselines) >= 2, what="the second connection's dump")
    finally:
        emitter.stop.set()
        thread.join(5)
        server.close()
    # each connection's dump is a baseline: the reconnection posts nothing
    assert emitter.changes == [] and len(emitter.baselines) >= 2
