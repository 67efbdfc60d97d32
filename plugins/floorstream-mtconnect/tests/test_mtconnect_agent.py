"""``mtconnect.agent`` against a real HTTP agent serving the MTConnect Institute's sample
documents (``mtconnect_testagent``): the conformance kit, the first-start baseline of the real
``/current``, the sample stream, an agent restart, a gap in the agent's buffer, a broken part,
and the whole daemon with its store."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from floorstream_mtconnect.agent import AgentSource
from mtconnect_testagent import Agent

from floorstream.config import parse_config
from floorstream.daemon import Daemon
from floorstream.model import Post
from floorstream.plugin import AdapterContext
from floorstream.plugins import build_plugins
from floorstream.store.store import Store
from floorstream.testing import AdapterConformance, RecordingEmitter
from support.waiting import wait_for

AGENT = Agent()
INSTANCE = AGENT.instance  # the real document's instanceId
#: what the machine does after the real /current: a cycle among axis samples, the warning
#: clearing, the spindle load (20 observations at fixed times, so runs are comparable)
CYCLE = [
    '<Execution dataItemId="a01c7f30" timestamp="2018-10-31T21:00:02Z">ACTIVE</Execution>',
    *(f'<Position dataItemId="dcbc0570" name="Xpos" timestamp="2018-10-31T21:00:{3 + i:02d}Z">'
      f'{205.23 + i:.2f}</Position>' for i in range(8)),
    '<Load dataItemId="r1841b70" name="Sload" timestamp="2018-10-31T21:00:12Z">97</Load>',
    '<Normal dataItemId="afb596b0" name="Soverload" type="AMPERAGE" nativeCode="MOT-WARN" '
    'timestamp="2018-10-31T21:00:13Z"/>',
    *(f'<Position dataItemId="dcbc0570" name="Xpos" timestamp="2018-10-31T21:00:{14 + i:02d}Z">'
      f'{210.5 - i:.2f}</Position>' for i in range(6)),
    '<Execution dataItemId="a01c7f30" timestamp="2018-10-31T21:00:40Z">PROGRAM_COMPLETED'
    '</Execution>',
    '<PartCount dataItemId="d2e9e4a0" timestamp="2018-10-31T21:00:41Z">663</PartCount>',
    '<Execution dataItemId="a01c7f30" timestamp="2018-10-31T21:00:42Z">READY</Execution>',
]
assert len(CYCLE) == 20


class TestAgentConformance(AdapterConformance):
    adapter = AgentSource
    config = {"name": "cnc", "adapter": "mtconnect.agent", "url": AGENT.url,
              "interval": 0.02, "heartbeat": 1.0}
    min_changes = 12 + len(CYCLE)  # the real /current (a baseline), then the cycle
    timeout = 20.0

    def prepare_source(self) -> None:
        AGENT.reset()
        AGENT.then(*CYCLE)


class Run:
    """An adapter on a recording emitter, in a thread, stopped by the context manager."""

    def __init__(self, agent: Agent, checkpoint: str | None = None, **config: Any) -> None:
        settings = {"name": "cnc", "adapter": "mtconnect.agent", "url": agent.url,
                    "interval": 0.02, "heartbeat": 1.0, "retry": 0.1, **config}
        self.emitter = RecordingEmitter()
        self.adapter = AgentSource(
            AgentSource.config_model.model_validate(settings),
            AdapterContext("cnc", checkpoint, build_plugins(load_entry_points=False).decoders))
        self.thread = threading.Thread(target=self.adapter.run,
                                       args=(self.emitter, self.emitter.stop))

    def __enter__(self) -> RecordingEmitter:
        self.thread.start()
        return self.emitter

    def __exit__(self, *exc: object) -> None:
        started = time.monotonic()
        self.emitter.stop.set()
        self.thread.join(5)
        assert not self.thread.is_alive() and time.monotonic() - started < 3.0, \
            "the adapter must stop promptly, even in the middle of an idle stream"


@pytest.fixture
def agent() -> Iterator[Agent]:
    fresh = Agent()
    yield fresh
    fresh.close()


def positions(emitter: RecordingEmitter) -> list[str]:
    return [c.position for c in emitter.changes]


def test_first_start_learns_the_real_current_document_then_follows_the_stream(
        agent: Agent) -> None:
    with Run(agent) as emitter:
        wait_for(lambda: len(emitter.baselines) == 12, what="the baseline")
        assert emitter.changes == [] and emitter.last_checkpoint == f"{INSTANCE}:43124"
        by_item = {c.data["mtconnect"]["item"]: c for c in emitter.baselines}
        xpos = by_item["dcbc0570"]  # the newest of its two: 205.23 mm, after an UNAVAILABLE
        assert [c.position for c in emitter.baselines][:2] == [f"{INSTANCE}:131",
                                                              f"{INSTANCE}:201"]
        assert xpos.data["Xpos"] == 205.23 and xpos.data["mtconnect"]["units"] == "MILLIMETER"
        unavailable = emitter.baselines[0]
        assert "Xpos" not in unavailable.data and unavailable.data["mtconnect"]["unavailable"]
        fault = next(c for c in emitter.baselines if c.data["mtconnect"].get("level") == "FAULT")
        assert fault.subject == "SimpleCnc" and fault.kind == "mtconnect.condition"
        assert fault.data["mtconnect"]["native_code"] == "MOT-OVR"
        assert fault.data["mtconnect"]["text"] == "Spindle Motor Overload"
        assert by_item["if36ff60"].data == {"mode": "AUTOMATIC", "mtconnect": {
            "item": "if36ff60", "key": "mode", "type": "CONTROLLER_MODE", "category": "EVENT",
            "component": "Path P1", "component_id": "a4a7bdf0", "sequence": 255}}
        first = agent.add('<PartCount dataItemId="d2e9e4a0">663</PartCount>')
        agent.add('<Load dataItemId="r1841b70" name="Sload">42.5</Load>')
        wait_for(lambda: len(emitter.changes) == 2, what="two sampled changes")
    assert positions(emitter) == [f"{INSTANCE}:{first}", f"{INSTANCE}:{first + 1}"]
    assert emitter.changes[0].data["d2e9e4a0"] == 663
    assert emitter.changes[1].data["Sload"] == 42.5
    assert emitter.last_checkpoint == f"{INSTANCE}:{first + 2}"
    assert agent.requests[:3] == ["/probe", "/current",
                                  "/sample?from=43124&count=1000&interval=20&heartbeat=1000"]


def test_an_agent_restart_is_a_new_baseline_not_old_alarms_again(agent: Agent) -> None:
    with Run(agent) as emitter:
        wait_for(lambda: emitter.last_checkpoint == f"{INSTANCE}:43124", what="the baseline")
        # the agent restarts; its adapter reports the fault that is still there
        agent.restart('<Fault dataItemId="afb596b0" type="AMPERAGE" nativeCode="MOT-OVR">'
                      'Spindle Motor Overload</Fault>',
                      '<PartCount dataItemId="d2e9e4a0">0</PartCount>')
        new = agent.instance
        wait_for(lambda: emitter.last_checkpoint == f"{new}:3", what="the second baseline")
        assert emitter.changes == [] and emitter.problems == []
        assert [c.position for c in emitter.baselines[-2:]] == [f"{new}:1", f"{new}:2"]
        later = agent.add('<PartCount dataItemId="d2e9e4a0">1</PartCount>')
        wait_for(lambda: emitter.changes, what="the stream of the new instance")
    assert positions(emitter) == [f"{new}:{later}"]


def test_a_checkpoint_that_fell_out_of_the_buffer_is_reported_once(agent: Agent) -> None:
    agent.buffer_size = 5
    for count in range(663, 673):  # ten parts while floorstream was away: 5 stay buffered
        agent.add(f'<PartCount dataItemId="d2e9e4a0">{count}</PartCount>')
    stale = f"{INSTANCE}:43126"
    run = Run(agent, checkpoint=stale)
    with run as emitter:
        wait_for(lambda: emitter.last_checkpoint, what="the state read after the gap")
        agent.add('<Execution dataItemId="a01c7f30">ACTIVE</Execution>')
        wait_for(lambda: "a01c7f30" in emitter.changes[-1].data, what="the stream after it")
    ((subject, message),) = emitter.problems  # once, though the stream went on
    assert subject == agent.url and "43126" in message and "fell out" in message
    health = run.adapter.context.health
    assert health.is_connected and "fell out" in (health.last_error or "")
    # /current after the gap: the newest part count (an ordinary change: the detectors
    # compare it with what they knew), not a baseline and not the five still buffered
    counts = [c.data["d2e9e4a0"] for c in emitter.changes if "d2e9e4a0" in c.data]
    assert counts == [672] and emitter.baselines == []
    # and the spindle condition's active alarms as /current lists them (see the next test)
    (condition,) = [c for c in emitter.changes if c.kind == "mtconnect.condition"]
    assert condition.data["mtconnect"]["active"] == ["MOT-OVR", "MOT-WARN"]
    assert emitter.changes[-1].data["a01c7f30"] == "ACTIVE"


def test_an_alarm_that_cleared_in_a_gap_is_closed_by_the_current_read_after_it(
        agent: Agent) -> None:
    from floorstream_mtconnect.conditions import Conditions

    from floorstream.plugin import DetectorState
    from floorstream.testing.detectors import make

    detector, state = make(Conditions), DetectorState()
    with Run(agent) as emitter:  # the first start learns MOT-WARN and MOT-OVR open
        checkpoint = wait_for(lambda: emitter.last_checkpoint, what="the baseline")
    for change in emitter.baselines:
        detector.on_change(change, state)
    agent.buffer_size = 3  # the warning clears, then more than the buffer holds comes
    agent.add('<Normal dataItemId="afb596b0" type="AMPERAGE" nativeCode="MOT-WARN"/>')
    for count in range(663, 668):
        agent.add(f'<PartCount dataItemId="d2e9e4a0">{count}</PartCount>')
    with Run(agent, checkpoint=checkpoint) as emitter:
        wait_for(lambda: emitter.problems and len(emitter.changes) >= 2, what="the resync")
    events = [e for c in emitter.changes for e in detector.on_change(c, state)]
    # /current lists the fault alone (its old observation, again): the warning is over
    assert [(e.type, e.fields["native_code"], e.relation) for e in events] == [
        ("mtconnect.condition_cleared", "MOT-WARN", "resolution")]
    assert list(state.data["open"]["afb596b0"]) == ["MOT-OVR"]
    assert emitter.last_checkpoint == f"{INSTANCE}:{agent.next}"


def test_an_agent_that_does_not_stream_is_polled(agent: Agent) -> None:
    agent.streaming = False
    with Run(agent) as emitter:
        wait_for(lambda: emitter.last_checkpoint, what="the baseline")
        first = agent.add('<PartCount dataItemId="d2e9e4a0">663</PartCount>')
        wait_for(lambda: emitter.changes, what="the polled observation")
        second = agent.add('<PartCount dataItemId="d2e9e4a0">664</PartCount>')
        wait_for(lambda: len(emitter.changes) == 2, what="the next poll")
    assert positions(emitter) == [f"{INSTANCE}:{first}", f"{INSTANCE}:{second}"]
    assert agent.requests.count("/sample?from=43125&count=1000&interval=20&heartbeat=1000") \
        >= 1


def test_a_broken_part_is_quarantined_and_the_stream_goes_on(agent: Agent) -> None:
    with Run(agent) as emitter:
        wait_for(lambda: emitter.last_checkpoint, what="the baseline")
        agent.add_raw_part(b"<MTConnectStreams><Header instanceId='1'")
        agent.add_raw_part(b'<!DOCTYPE x [<!ENTITY a "aaaa">]><MTConnectStreams/>')
        sequence = agent.add('<Execution dataItemId="a01c7f30">ACTIVE</Execution>')
        wait_for(lambda: emitter.changes, what="the observation after the broken parts")
    broken, entity = emitter.quarantined
    assert broken.raw == b"<MTConnectStreams><Header instanceId='1'"
    assert "not well-formed XML" in broken.error
    assert "DTDs and entities are not accepted" in entity.error
    assert positions(emitter) == [f"{INSTANCE}:{sequence}"]


def test_an_unreachable_agent_shows_in_health_and_is_retried() -> None:
    agent = Agent()
    url = agent.url
    agent.close()
    run = Run(agent)
    run.adapter.config = run.adapter.config.model_copy(update={"url": url})
    with run as emitter:
        health = run.adapter.context.health
        wait_for(lambda: health.failures >= 2, what="two failed attempts")
        assert health.is_connected is False and "Connection refused" in (health.last_error
                                                                         or "")
    assert emitter.emitted == []


# -- the daemon, its store and its posts -------------------------------------------------------

CONFIG = """
store: sqlite:///{db}
teams: {{maintenance: {{}}, production: {{}}}}
sources:
  - name: cnc
    adapter: mtconnect.agent
    url: {url}
    interval: 20ms
    heartbeat: 1s
    retry: 100ms
    detect:
      - threshold: {{field: Sload, above: 95, clear_below: 85, unit: "%"}}
routes:
  - match: {{source: cnc, type: "mtconnect.cycle_complete"}}
    teams: [production]
  - match: {{source: cnc}}
    teams: [maintenance]
"""


def posts(store: Store, team: str) -> list[Post]:
    return list(reversed(store.feed(team, limit=200)))


def test_the_daemon_posts_alarms_clears_and_cycles_once_across_restarts(
        agent: Agent, tmp_path: Path) -> None:
    plugins = build_plugins()
    config = parse_config(CONFIG.format(db=tmp_path / "fs.db", url=agent.url), plugins)
    store = Store.open(config.settings.store)
    daemon = Daemon(config, plugins)
    daemon.start()
    try:
        wait_for(lambda: store.checkpoints().get("cnc"), what="the baseline's checkpoint")
        agent.add('<Fault dataItemId="afb596b0" type="AMPERAGE" nativeCode="MOT-OVR">'
                  'Spindle Motor Overload</Fault>')  # still open: no news
        for observation in CYCLE:
            agent.add(observation)
        agent.add('<Fault dataItemId="e086dd60" type="POSITION" nativeCode="OT-X">'
                  'X overtravel</Fault>', "2018-10-31T21:01:00Z")  # the sentinel: posted last
        wait_for(lambda: any("OT-X" in p.summary for p in posts(store, "maintenance")),
                 what="the sentinel alarm")
        # the open overload again, the axis samples, the execution states: no posts
        assert [p.summary for p in posts(store, "maintenance")] == [
            "SimpleCnc: Sload 97%, above the 95% limit",
            # 20:45:19.998 → 21:00:13: 14 min 53 s, rounded (it once read "14 min")
            "SimpleCnc: MOT-WARN Spindle Motor Warning cleared after 15 min",
            "SimpleCnc: cycle complete, part 663 (O98877, 39 s)",
            "SimpleCnc: fault OT-X X overtravel (Linear X1 position)"]
        (cycle,) = posts(store, "production")
        assert cycle.summary == "SimpleCnc: cycle complete, part 663 (O98877, 39 s)"
        # a restart of floorstream resumes the stream: nothing twice, the next one posted
        daemon.stop()
        daemon = Daemon(config, plugins)
        daemon.start()
        agent.add('<Normal dataItemId="e086dd60" type="POSITION"/>', "2018-10-31T21:03:00Z")
        wait_for(lambda: len(posts(store, "maintenance")) == 5, what="the overtravel cleared")
        # an agent restart: the overload is still on, the counter reset; then a new part
        agent.restart('<Fault dataItemId="afb596b0" type="AMPERAGE" nativeCode="MOT-OVR">'
                      'Spindle Motor Overload</Fault>',
                      '<PartCount dataItemId="d2e9e4a0">0</PartCount>')
        new = agent.instance
        wait_for(lambda: store.checkpoints().get("cnc") == f"{new}:3", what="the re-baseline")
        agent.add('<PartCount dataItemId="d2e9e4a0">1</PartCount>')
        wait_for(lambda: len(posts(store, "production")) == 2, what="the part after")
        # the overload seen again after the agent's restart is no news; the new part is
        maintenance = posts(store, "maintenance")
        assert [p.summary for p in maintenance[4:]] == [
            "SimpleCnc: OT-X X overtravel cleared after 2 min",
            "SimpleCnc: cycle complete, part 1 (O98877)"]
        assert maintenance[4].thread == maintenance[3].thread  # the alarm and its clear
        assert maintenance[4].relation == "resolution"
        assert maintenance[4].refers_to == maintenance[3].id
        assert posts(store, "production")[-1].summary == \
            "SimpleCnc: cycle complete, part 1 (O98877)"  # the program the agent last said
    finally:
        daemon.stop()
        store.close()


def test_a_quarantined_document_replays_at_the_positions_it_would_have_had() -> None:
    from datetime import UTC, datetime

    from floorstream.plugin import ReplayContext

    raw = (Path(__file__).parent / "samples" / "SimpleStream_current.xml").read_bytes()
    config = AgentSource.config_model.model_validate(
        {"name": "cnc", "adapter": "mtconnect.agent", "url": "http://agent:5000"})
    replayed = AgentSource.replay(raw, ReplayContext(
        "cnc", config, None, {}, datetime.now(UTC),
        build_plugins(load_entry_points=False).decoders))
    assert [c.position for c in replayed][:3] == [f"{INSTANCE}:131", f"{INSTANCE}:201",
                                                   f"{INSTANCE}:255"]
    assert len(replayed) == 12 and {c.subject for c in replayed} == {"SimpleCnc"}


def test_check_says_when_the_agent_is_away_or_lacks_the_device(agent: Agent) -> None:
    def check(**keys: Any) -> list[str]:
        return AgentSource.check(AgentSource.config_model.model_validate(
            {"name": "cnc", "adapter": "mtconnect.agent", "url": agent.url, **keys}))

    assert check() == [] and check(device="SimpleCnc") == []
    (missing,) = check(device="Lathe-9")
    assert missing == "the agent lists no device 'Lathe-9' (it has: SimpleCnc, SampleDevice2)"
    (away,) = check(url="http://127.0.0.1:9", timeout=1)
    assert away.startswith("cannot reach the agent at http://127.0.0.1:9 now:")
