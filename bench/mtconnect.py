"""An MTConnect sample stream of 5,000 observations/s into ``floorstream run``.

A separate process runs the plugin's test agent (a real HTTP agent, ``plugins/floorstream-
mtconnect/tests/mtconnect_testagent.py``) and adds ``--rate`` observations a second to it,
in 50 ms batches: axis positions and loads of the SimpleCnc device, a spindle-load excursion
above the threshold every 10 s (so the detectors post now and then) and a cycle (Execution,
PartCount) every 5 s. ``floorstream run`` follows it with an ``mtconnect.agent`` source
(``/sample`` streamed every 50 ms, the condition and cycle detectors, a threshold) on SQLite.

After ``--warmup`` seconds it measures for ``--seconds``: the daemon's CPU share (CPU seconds
per wall second; 1.0 = one core busy), the observations it committed per second (from its
checkpoint, the agent's sequence), how far it is behind the agent at the end, and its peak
RSS (VmHWM). The agent's own CPU is reported apart. Numbers are from whatever machine runs
it; on the shared 2-core development machine they are taken under other people's load.

``python bench/mtconnect.py [--rate 5000] [--seconds 20] [--warmup 5]`` prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

HERE = Path(__file__).resolve()
ROOT = HERE.parent.parent
TESTS = ROOT / "plugins" / "floorstream-mtconnect" / "tests"
FLOORSTREAM = str(Path(sys.executable).parent / "floorstream")

CONFIG = """
store: sqlite:///{db}
teams: {{maintenance: {{}}}}
sources:
  - name: cnc
    adapter: mtconnect.agent
    url: {url}
    interval: 50ms
    heartbeat: 2s
    count: 5000
    detect:
      - threshold: {{field: Sload, above: 95, clear_below: 85, unit: "%"}}
routes:
  - match: {{source: cnc}}
    teams: [maintenance]
"""


def serve(rate: int, seconds: float) -> None:
    """The agent process: print the URL, then feed ``rate`` observations a second."""
    sys.path.insert(0, str(TESTS))
    from mtconnect_testagent import Agent

    agent = Agent(buffer_size=200_000)
    print(agent.url, flush=True)
    sys.stdin.readline()  # go: the daemon made its baseline
    per_batch = max(1, rate // 20)
    start, batch, parts = time.monotonic(), 0, 662
    while time.monotonic() - start < seconds:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{batch % 20 * 5:02d}Z"
        excursion = batch % 200 < 20  # 1 s above the limit every 10 s
        for i in range(per_batch):
            if i % 5 == 4:
                load = 97.0 + (i % 3) if excursion else 40.0 + (i % 7)
                agent.add(f'<Load dataItemId="r1841b70" name="Sload">{load}</Load>', stamp)
            else:
                agent.add(f'<Position dataItemId="dcbc0570" name="Xpos">'
                          f'{200 + (batch * per_batch + i) % 97 / 10:.2f}</Position>', stamp)
        if batch % 100 == 0:  # a cycle every 5 s
            parts += 1
            agent.add('<Execution dataItemId="a01c7f30">ACTIVE</Execution>', stamp)
            agent.add('<Execution dataItemId="a01c7f30">PROGRAM_COMPLETED</Execution>', stamp)
            agent.add(f'<PartCount dataItemId="d2e9e4a0">{parts}</PartCount>', stamp)
        batch += 1
        delay = start + batch / 20 - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    print(json.dumps({"next": agent.next, "instance": agent.instance}), flush=True)
    sys.stdin.readline()
    agent.close()


def _hwm(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def _sequence(checkpoint: str | None) -> int:
    return int(checkpoint.rpartition(":")[2]) if checkpoint else 0


def run(rate: int, seconds: float, warmup: float) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT / "src"))
    from floorstream.store.store import Store

    work = Path(tempfile.mkdtemp(prefix="bench-mtc-"))
    agent = subprocess.Popen([sys.executable, str(HERE), "--serve", str(rate),
                              str(warmup + seconds + 2)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    assert agent.stdout is not None and agent.stdin is not None
    url = agent.stdout.readline().strip()
    config = work / "floorstream.yaml"
    config.write_text(CONFIG.format(db=work / "fs.db", url=url))
    log = (work / "daemon.log").open("wb")
    daemon = subprocess.Popen([FLOORSTREAM, "run", "-c", str(config), "--log-format", "json"],
                              stdout=log, stderr=subprocess.STDOUT)
    store = Store.open(f"sqlite:///{work / 'fs.db'}")
    try:
        deadline = time.monotonic() + 30
        while not store.checkpoints().get("cnc"):
            assert time.monotonic() < deadline, "no baseline in 30 s"
            time.sleep(0.1)
        agent.stdin.write("go\n")
        agent.stdin.flush()
        ps, agent_ps = psutil.Process(daemon.pid), psutil.Process(agent.pid)
        time.sleep(warmup)
        cpu0, agent_cpu0 = ps.cpu_times(), agent_ps.cpu_times()
        seq0, t0 = _sequence(store.checkpoints().get("cnc")), time.monotonic()
        peak_rss = 0
        while time.monotonic() - t0 < seconds:
            peak_rss = max(peak_rss, ps.memory_info().rss)
            time.sleep(0.25)
        cpu1, agent_cpu1 = ps.cpu_times(), agent_ps.cpu_times()
        seq1, t1 = _sequence(store.checkpoints().get("cnc")), time.monotonic()
        end = json.loads(agent.stdout.readline())
        wall = t1 - t0
        result = {
            "rate_offered": rate,
            "seconds": round(wall, 2),
            "observations_committed_per_s": round((seq1 - seq0) / wall),
            "daemon_cpu_share": round((cpu1.user + cpu1.system - cpu0.user - cpu0.system)
                                      / wall, 3),
            "daemon_cpu_us_per_observation": round(
                (cpu1.user + cpu1.system - cpu0.user - cpu0.system) * 1e6
                / max(1, seq1 - seq0), 1),
            "daemon_peak_rss_mb": round(max(peak_rss, _hwm(daemon.pid)) / 2**20, 1),
            "agent_cpu_share": round((agent_cpu1.user + agent_cpu1.system - agent_cpu0.user
                                      - agent_cpu0.system) / wall, 3),
            "posts": store.count_posts("cnc"),
            "cpus": os.cpu_count(),
            "load_avg_1m": round(os.getloadavg()[0], 2),
        }
        # the agent stopped adding when it answered: how long until all it has is committed
        stopped = time.monotonic()
        deadline = stopped + 30
        while _sequence(store.checkpoints().get("cnc")) < end["next"] \
                and time.monotonic() < deadline:
            time.sleep(0.02)
        result["committed_all_after_agent_stopped_s"] = round(time.monotonic() - stopped, 2)
        result["lost_or_behind"] = end["next"] - _sequence(store.checkpoints().get("cnc"))
        return result
    finally:
        daemon.terminate()
        daemon.wait(30)
        agent.stdin.write("stop\n")
        agent.stdin.flush()
        agent.wait(10)
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--serve", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(int(args.serve[0]), float(args.serve[1]))
        return
    print(json.dumps(run(args.rate, args.seconds, args.warmup), indent=2))


if __name__ == "__main__":
    main()
