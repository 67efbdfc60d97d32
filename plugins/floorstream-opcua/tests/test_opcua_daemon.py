"""The ``opcua`` source in a running daemon: posts from value changes and alarms, and what a
server restart (a PLC reboot) does to them — a reconnect, the current values read again, no
post repeated, and a real transition after it posted once."""

from __future__ import annotations

from pathlib import Path

from opcua_support import COUNT, STATE, OpcuaServer, Plc

from support import DaemonRunner, sentinel, wait_for

CONFIG = """
store: sqlite:///{dir}/fs.db
teams: {{maintenance: {{}}}}
sources:
  - name: line1
    adapter: opcua
    url: {url}
    subject: press-07
    publishing_interval: 50ms
    sampling_interval: 20ms
    reconnect: {{min_delay: 200ms, max_delay: 500ms}}
    items:
      - {{node: "{state}", field: state}}
      - {{node: "{count}", field: count}}
    alarms: {{}}
    detect:
      - state_change: {{field: state, normal: [RUNNING], severity: {{FAULT: critical}}}}
      - state_change: {{field: count}}
routes:
  - match: {{source: line1}}
    teams: [maintenance]
"""


def test_posts_survive_a_server_restart_without_repeats(tmp_path: Path) -> None:
    server = OpcuaServer().start()
    plc = Plc(server.url)
    config = CONFIG.format(dir=tmp_path, url=server.url, state=STATE, count=COUNT)
    try:
        with DaemonRunner(config) as daemon:
            daemon.start()
            adapter = daemon.adapter("line1")
            wait_for(lambda: adapter.context.health.is_connected, 20, "the subscription")
            plc.write(STATE, "FAULT")
            plc.alarm(active=True, severity=900)
            daemon.wait_posts(2)

            server.stop()  # the PLC reboots and comes back in the state it had
            wait_for(lambda: adapter.context.health.is_connected is False, 20, "the loss")
            server.args += ["--state", "FAULT"]
            server.start()
            wait_for(lambda: adapter.session is not None and adapter.session.connects >= 2
                     and adapter.context.health.is_connected, 30, "the reconnect")
            # the reboot ended the alarm: the refresh no longer reports it (a publish carries
            # data changes and events side by side, unordered: wait for it on its own)
            wait_for(lambda: "alarm.cleared" in [p.type for p in daemon.posts()], 20,
                     "the alarm's clear")
            # count 0 → 1 posts; everything the reconnect re-read was emitted before it
            sentinel(lambda: plc.write(COUNT, 1),
                     lambda: any("1" in s and "was 0" in s for s in daemon.summaries()))
            after_restart = daemon.summaries()

            plc.write(STATE, "STOPPED")  # a real transition after the restart
            sentinel(lambda: plc.write(COUNT, 2),
                     lambda: any("was 1" in s for s in daemon.summaries()))
            posts = daemon.posts()
    finally:
        server.stop()

    summaries = [p.summary for p in posts]
    assert summaries == [*after_restart, summaries[-2], summaries[-1]], summaries
    assert [p.type for p in posts] == [
        "machine.state_changed", "alarm.raised",  # before the restart
        "alarm.cleared",  # the reboot ended the alarm: the refresh no longer reports it
        "machine.state_changed",  # count 0 → 1 (the sentinel)
        "machine.state_changed",  # FAULT → STOPPED, once
        "machine.state_changed",  # count 1 → 2 (the sentinel)
    ], summaries
    fault, raised, cleared, _, stopped, _ = posts
    assert "FAULT" in fault.summary.upper() and fault.severity.label == "critical"
    assert raised.summary == "press-07 alarm: Spindle overheated"
    assert cleared.refers_to == raised.id and cleared.relation == "resolution"
    assert cleared.thread == raised.thread == "ns=2;s=Press07.Overheat"
    assert "STOPPED" in stopped.summary.upper() and "FAULT" in stopped.summary.upper()
    assert sum("FAULT" in s.upper() for s in summaries) == 2  # raised once, left once
