"""The "sensor storm": floorstream's mqtt source against a bare paho + json.loads subscriber.

200 machines, 200,000 JSON messages (about 1 % interesting: state changes and 85 °C limit
crossings with 3 °C hysteresis) on ``plant/<area>/<machine>/telemetry``, published by a separate
process on a private Mosquitto (unbounded queues, so the broker never drops). For QoS 0 and 1:

- storm: the subscriber is live, the publisher goes flat out; msgs/s = messages / (publisher
  start → last message handled; for floorstream: the last post committed);
- drain: the subscriber is SIGSTOPped while everything is published, then resumed; msgs/s =
  messages / (SIGCONT → last handled): the subscriber's own capacity, publisher out of the way;
- paced: the first 50,000 messages at 5,000 msgs/s; latency = post committed − published, per
  interesting message (CLOCK_MONOTONIC in both processes).

Peak RSS is each subscriber's own VmHWM. Run:
``python bench/mqtt.py [--messages N] [--modes storm drain paced] [--qos 0 1]``.

``--sparkplug`` runs the Sparkplug B storm instead: ``--nodes`` edge nodes (200) with
``--devices`` devices each (10), an NBIRTH and DBIRTHs (10 metrics with aliases) then
``--messages`` DDATA messages of 10 alias-only metrics (seq in order), against a bare paho +
protobuf-decode subscriber (``Payload.ParseFromString``; and ``ceiling_read``, which also reads
each metric's alias and value, as any subscriber that uses them must) on the same broker; the
last lines give each one's CPU per message and the CPU ratios.
floorstream subscribes with MQTT 3.1.1 at QoS 0 (paho builds no v5 property objects per
message) and MQTT 5 at QoS 1 (Receive Maximum widens the unacked window); FS_BENCH_PROTOCOL
overrides. FS_BENCH_SCRIPT runs the floorstream role through another script (a profiler);
FS_SWITCH sets its ``sys.setswitchinterval``; FS_SETTLE=1 settles the daemon's process once
started as ``floorstream run`` does (``settle_process``: ``gc.freeze``); FS_GC_TYPES=PATH
writes what the collector tracks, by type, when the run starts (PATH.<pid>). Each run reports
the cyclic collector's collections and their CPU by generation (``gc``) and the threads'
context switches.

``--web-clients N`` (issue 14) runs only the storm, floorstream with its web feed on, rounds
interleaved: no event-stream client, then N clients (``bench/web_clients.py``, in processes
of their own, each following everything), ``--web-rounds`` times; it prints msgs/s and the
daemon's CPU seconds of each round and the medians' ratio.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
T0 = 1_764_057_600_000
AREAS = ["press", "weld", "paint", "pack"]


# -- the stream ----------------------------------------------------------------------------

def _step(m: dict[str, Any], rnd: random.Random, *, last: bool) -> tuple[bool, float]:
    """One reading of machine ``m``: its state and spindle temperature walk on (the last
    message of a stream always flips the state, so it is an interesting one to wait for).
    Returns whether its state or alarm changed, and the reading's temperature."""
    before_state, before_alarm = m["state"], m["alarm"]
    r = rnd.random()
    if last:
        m["state"] = "STOPPED" if m["state"] == "RUNNING" else "RUNNING"
    elif m["state"] == "RUNNING" and r < 0.0026:
        m["state"] = "STOPPED"
    elif m["state"] != "RUNNING" and r < 0.05:
        m["state"] = "RUNNING"
    heat = 1.6 if rnd.random() < 0.004 else 0.0
    m["temp"] = min(99.0, max(55.0, m["temp"] + rnd.uniform(-0.7, 0.7) + heat * 8))
    if m["temp"] > 80 and not heat:
        m["temp"] -= 0.4
    temp = round(m["temp"], 1)
    if not m["alarm"] and temp > 85.0:
        m["alarm"] = True
    elif m["alarm"] and temp < 82.0:
        m["alarm"] = False
    return m["state"] != before_state or m["alarm"] != before_alarm, temp


def generate(path: Path, machines: int, messages: int, seed: int = 20261125) -> int:
    """Write ``topic\\tpayload\\tinteresting`` lines; returns the number of interesting ones.
    The last message is always a state change, so its post marks the end of the stream."""
    rnd = random.Random(seed)
    fleet = [{"name": f"{AREAS[i % 4]}-{i // 4:02d}", "area": AREAS[i % 4],
              "state": "RUNNING", "temp": rnd.uniform(60, 75), "alarm": False, "seen": False}
             for i in range(machines)]
    interesting = 0
    with path.open("w") as out:
        for k in range(messages):
            m = fleet[rnd.randrange(machines)] if k < messages - 1 else fleet[0]
            changed, temp = _step(m, rnd, last=k == messages - 1)
            flag = m["seen"] and changed
            m["seen"] = True
            interesting += flag
            payload = json.dumps({"machine": m["name"], "ts": T0 + k, "state": m["state"],
                                  "spindle_temp": temp, "count": k})
            out.write(f"plant/{m['area']}/{m['name']}/telemetry\t{payload}\t{int(flag)}\n")
    return interesting


# -- roles run in their own processes ------------------------------------------------------

def generate_sparkplug(path: Path, nodes: int, devices: int, messages: int,
                       seed: int = 20261201) -> tuple[int, int, int]:
    """The Sparkplug storm as ``topic\thex payload\tts-if-interesting`` lines; returns
    (interesting, total messages, last payload timestamp). Births first, then DDATA; the last
    message is a state change."""
    sys.path.insert(0, str(HERE.parent.parent / "src"))
    from floorstream.adapters.mqtt.sparkplug_b import encode_payload

    rnd = random.Random(seed)
    names = ["State", "Temperature", "Speed", "Pressure", "Count", "Power", "Vibration",
             "Humidity", "Running", "Torque"]
    types = ["String", "Double", "Double", "Float", "Int64", "Double", "Float", "Double",
             "Boolean", "Int32"]
    fleet: list[dict[str, Any]] = [
             {"node": f"Gw{n:03d}", "device": f"M{n:03d}-{d:02d}", "state": "RUNNING",
              "temp": rnd.uniform(60, 75), "alarm": False}
             for n in range(nodes) for d in range(devices)]
    seq = [0] * nodes
    stamp = T0
    interesting = total = 0

    def values(m: dict[str, Any]) -> list[Any]:
        return [m["state"], round(m["temp"], 1), rnd.uniform(900, 1100), rnd.uniform(1, 5),
                rnd.randrange(1_000_000), rnd.uniform(5, 50), rnd.uniform(0, 2),
                rnd.uniform(30, 60), m["state"] == "RUNNING", rnd.randrange(-500, 500)]

    with path.open("w") as out:
        def write(topic: str, payload: bytes, flag: int) -> None:
            nonlocal total
            total += 1
            out.write(f"{topic}\t{payload.hex()}\t{flag}\n")

        for n in range(nodes):
            stamp += 1
            write(f"spBv1.0/bench/NBIRTH/Gw{n:03d}", encode_payload(
                [{"name": "bdSeq", "datatype": "Int64", "value": 0}], timestamp=stamp, seq=0), 0)
            for d in range(devices):
                m = fleet[n * devices + d]
                seq[n] = (seq[n] + 1) % 256
                stamp += 1
                write(f"spBv1.0/bench/DBIRTH/Gw{n:03d}/{m['device']}", encode_payload(
                    [{"name": k, "alias": i + 1, "datatype": t, "value": v}
                     for i, (k, t, v) in enumerate(zip(names, types, values(m), strict=True))],
                    timestamp=stamp, seq=seq[n]), 0)
        for k in range(messages):
            index = rnd.randrange(len(fleet)) if k < messages - 1 else 0
            m = fleet[index]
            flag, _ = _step(m, rnd, last=k == messages - 1)
            interesting += flag
            n = index // devices
            seq[n] = (seq[n] + 1) % 256
            stamp += 1
            write(f"spBv1.0/bench/DDATA/{m['node']}/{m['device']}", encode_payload(
                [{"alias": i + 1, "datatype": t, "value": v}
                 for i, (t, v) in enumerate(zip(types, values(m), strict=True))],
                timestamp=stamp, seq=seq[n]), stamp if flag else 0)
    return interesting, total, stamp


def _cpu_s() -> float:
    """This process's CPU seconds (user + system, every thread)."""
    times = os.times()
    return times.user + times.system


def _threads_cpu(system: bool = False) -> dict[str, float]:
    """CPU seconds of this process's threads by name (numbers and the target in brackets
    left off: 'floorstream-web', 'paho-mqtt-client-…'), from /proc (Linux; {} elsewhere);
    ``system``: the kernel's part only (a socket write's, say)."""
    found: dict[str, float] = {}
    names = {t.native_id: t.name for t in threading.enumerate()}
    tasks = Path("/proc/self/task")
    for task in tasks.iterdir() if tasks.exists() else []:
        try:
            stat = (task / "stat").read_text()
            name = names.get(int(task.name)) or (task / "comm").read_text().strip()
        except OSError:
            continue
        name = name.split("(")[0].rstrip("-0123456789_ ")
        fields = stat.rsplit(")", 1)[1].split()
        ticks = int(fields[12]) + (0 if system else int(fields[11]))  # stime (+ utime)
        found[name] = found.get(name, 0) + ticks / os.sysconf("SC_CLK_TCK")
    return found


def _threads_switches() -> dict[str, int]:
    """Context switches (voluntary + involuntary) of this process's threads by name: how often
    each thread went to sleep or was preempted (a GIL hand-off is one each way)."""
    found: dict[str, int] = {}
    names = {t.native_id: t.name for t in threading.enumerate()}
    tasks = Path("/proc/self/task")
    for task in tasks.iterdir() if tasks.exists() else []:
        try:
            status = (task / "status").read_text()
            name = names.get(int(task.name)) or (task / "comm").read_text().strip()
        except OSError:
            continue
        name = name.split("(")[0].rstrip("-0123456789_ ")
        found[name] = found.get(name, 0) + sum(
            int(line.split()[1]) for line in status.splitlines() if "ctxt_switches:" in line)
    return found


class _GcTime:
    """The cyclic collector's work during the run, by generation: collections, CPU seconds of
    the thread that ran them (whichever thread's allocation set it off: mostly the MQTT
    network thread's), objects examined (``collected`` + survivors are not given by the
    callback, so the CPU is the measure)."""

    def __init__(self) -> None:
        import gc

        self._gc = gc
        self.count = [0, 0, 0]
        self.cpu_s = [0.0, 0.0, 0.0]
        self._started: dict[int, float] = {}
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        ident = threading.get_ident()
        if phase == "start":
            self._started[ident] = time.thread_time()
            return
        began = self._started.pop(ident, None)
        if began is not None:
            generation = info["generation"]
            self.count[generation] += 1
            self.cpu_s[generation] += time.thread_time() - began

    def stop(self) -> None:
        with contextlib.suppress(ValueError):
            self._gc.callbacks.remove(self._callback)

    def report(self) -> dict[str, Any]:
        return {"collections": self.count, "cpu_s": [round(c, 3) for c in self.cpu_s],
                "tracked_objects": len(self._gc.get_objects())}


def _web_threads_cpu_s() -> float:
    """CPU seconds of this process's web feed threads (server, watcher, listener): the web's
    own share of the daemon's CPU."""
    return sum(cpu for name, cpu in _threads_cpu().items()
               if name.startswith("floorstream-web"))


def _vmhwm_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def role_publish(a: argparse.Namespace) -> None:
    """Publish the stream (paho without network thread, TCP_NODELAY), write publish times."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    msgs = []
    with open(a.stream, "rb") as f:
        for line in f:
            topic, payload, flag = line.rstrip(b"\n").split(b"\t")
            if a.sparkplug:  # hex protobuf; the flag is the timestamp of an interesting one
                msgs.append((topic.decode(), bytes.fromhex(payload.decode()),
                             int(flag) if flag != b"0" else None))
                continue
            msgs.append((topic.decode(), payload, json.loads(payload)["ts"] if flag == b"1"
                         else None))
            if a.limit and len(msgs) >= a.limit:
                break
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{os.getpid()}")
    c.max_inflight_messages_set(100)
    c.max_queued_messages_set(0)
    c.connect("127.0.0.1", a.port)
    c.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def pump(timeout: float) -> None:
        sock = c.socket()
        r, w, _ = select.select([sock], [sock] if c.want_write() else [], [], timeout)
        if r:
            c.loop_read()
        if w:
            c.loop_write()
        c.loop_misc()

    times = []
    start = time.monotonic_ns()
    for n, (topic, payload, ts) in enumerate(msgs):
        if a.rate:
            while time.monotonic_ns() < start + n * 1e9 / a.rate:
                pump(0.0002)
        while a.qos and len(c._out_messages) >= 100:
            pump(0.01)
        now = time.monotonic_ns()
        c.publish(topic, payload, qos=a.qos)
        if ts is not None:
            times.append((ts, now))
        if not a.rate and n % 64 == 0:
            pump(0)
    while c.want_write() or (a.qos and c._out_messages):
        pump(0.01)
    end = time.monotonic_ns()
    c.disconnect()
    Path(a.result).write_text(json.dumps({"t_start_ns": start, "t_end_ns": end,
                                          "times": times}))


def role_ceiling(a: argparse.Namespace) -> None:
    """The ceiling: paho + json.loads, nothing else (auto-ack at QoS 1)."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    st = {"n": 0, "t_last": 0}
    loads: Any = json.loads
    topic_filter = "plant/+/+/telemetry"
    if a.sparkplug:  # the bare protobuf decode of a Sparkplug payload
        from floorstream.adapters.mqtt.sparkplug_b import sparkplug_b_pb2 as pb

        def loads(payload: bytes) -> None:
            pb.Payload().ParseFromString(payload)

        def loads_read(payload: bytes) -> None:  # --sparkplug 2: and each alias and value
            message = pb.Payload()
            message.ParseFromString(payload)
            for metric in message.metrics:
                which = metric.WhichOneof("value")
                if which:
                    getattr(metric, which)
                metric.alias  # noqa: B018 (the read is what is measured)
        if a.sparkplug == 2:
            loads = loads_read
        topic_filter = "spBv1.0/bench/#"

    def on_message(c: Any, u: Any, msg: Any) -> None:
        loads(msg.payload)
        st["n"] += 1
        st["t_last"] = time.monotonic_ns()
        if st["n"] >= a.expect:
            c.disconnect()

    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-ceiling", clean_session=True)
    c.on_message = on_message
    c.on_connect = lambda c, u, f, rc, p: c.subscribe(topic_filter, qos=a.qos)
    c.connect("127.0.0.1", a.port)
    threading.Timer(a.max_seconds, c.disconnect).start()
    cpu = _cpu_s()
    Path(a.ready).touch()
    c.loop_forever()
    Path(a.result).write_text(json.dumps({"received": st["n"], "t_last_ns": st["t_last"],
                                          "rss_mb": _vmhwm_mb(),
                                          "cpu_s": round(_cpu_s() - cpu, 3)}))
    os._exit(0)


def role_floorstream(a: argparse.Namespace) -> None:
    """floorstream's daemon with the mqtt source; records when each post was committed."""
    from floorstream.config import parse_config
    from floorstream.daemon import Daemon
    from floorstream.plugin.markers import hookimpl
    from floorstream.plugins import build_plugins

    if os.environ.get("FS_SWITCH"):
        sys.setswitchinterval(float(os.environ["FS_SWITCH"]))
    committed: dict[int, int] = {}
    done = threading.Event()

    class Recorder:
        @hookimpl
        def post_committed(self, posts: Any) -> None:
            now = time.monotonic_ns()
            for post in posts:
                ts = round(post.occurred_at.timestamp() * 1000)
                committed.setdefault(ts, now)
                if ts == a.last_ts:
                    done.set()

    plugins = build_plugins(extra=[Recorder()], load_entry_points=False)
    config = parse_config(Path(a.config).read_text(), plugins)
    daemon = Daemon(config, plugins)
    daemon.start()
    adapter = None
    while adapter is None or not adapter.connected.is_set():  # type: ignore[attr-defined]
        time.sleep(0.01)
        adapter = daemon._adapters.get("sensors")
    if os.environ.get("FS_SETTLE"):  # as ``floorstream run`` does once started: gc.freeze
        from floorstream.daemon import settle_process
        settle_process()
    cpu = _cpu_s()  # from here: the run, not the start (imports, schema)
    Path(a.ready).touch()
    if a.go:  # the web feed's clients connect first: their requests are not the run's
        while not Path(a.go).exists():
            time.sleep(0.01)
        cpu = _cpu_s()
    if os.environ.get("FS_GC_TYPES"):  # experiment: what the collector tracks, by type
        import gc
        from collections import Counter
        gc.collect()
        kinds = Counter(f"{type(o).__module__}.{type(o).__qualname__}" for o in gc.get_objects())
        Path(os.environ["FS_GC_TYPES"] + f".{os.getpid()}").write_text(
            json.dumps(kinds.most_common(60), indent=0))
    gc_time = _GcTime()
    web_cpu = _web_threads_cpu_s()
    by_thread0 = _threads_cpu()
    sys_by_thread0 = _threads_cpu(system=True)
    switches0 = _threads_switches()
    done.wait(a.max_seconds)
    gc_time.stop()
    end = committed.get(a.last_ts, 0)
    received = adapter.received  # type: ignore[attr-defined]
    Path(a.result).write_text(json.dumps({
        "received": received, "t_last_ns": end, "rss_mb": _vmhwm_mb(),
        "batches": daemon.pipeline.committed_batches, "cpu_s": round(_cpu_s() - cpu, 3),
        "uncommitted": getattr(daemon.pipeline, "uncommitted_batches", 0),
        "posts": len(committed), "committed": list(committed.items()),
        "web_threads_cpu_s": round(_web_threads_cpu_s() - web_cpu, 3),
        "by_thread": {name: round(cpu - by_thread0.get(name, 0), 2)
                      for name, cpu in _threads_cpu().items()},
        "sys_by_thread": {name: round(cpu - sys_by_thread0.get(name, 0), 2)
                          for name, cpu in _threads_cpu(system=True).items()},
        "switches_by_thread": {name: n - switches0.get(name, 0)
                               for name, n in _threads_switches().items()},
        "gc": gc_time.report()}))
    os._exit(0)  # the store is disposable; skip the orderly drain


CONFIG = """
store: sqlite:///{dir}/bench.db
flood: null
logging: {{level: warning}}
pipeline: {{batch_wait_ms: {wait}, batch_max: 2000}}
teams: {{maintenance: {{}}, robotics: {{}}, process-eng: {{}}, logistics: {{}}}}
routes:
  - {{match: {{attrs: {{area: press}}}}, teams: [maintenance]}}
  - {{match: {{attrs: {{area: weld}}}}, teams: [robotics]}}
  - {{match: {{attrs: {{area: paint}}}}, teams: [process-eng]}}
  - {{match: {{attrs: {{area: pack}}}}, teams: [logistics]}}
sources:
  - name: sensors
    adapter: mqtt
    url: mqtt://127.0.0.1:{port}
    protocol: "{protocol}"
    client_id: bench-floorstream-{run}
    clean_start: true
    qos: {qos}
    topics: ["plant/+/+/telemetry"]
    subject: "{{topic[2]}}"
    attrs: {{area: "{{topic[1]}}"}}
    position_field: ts
    time_field: ts
    detect:
      - state_change: {{field: state}}
      - threshold: {{field: spindle_temp, above: 85, clear_below: 82, unit: "°C"}}
"""

CONFIG_SPARKPLUG = """
store: sqlite:///{dir}/bench.db
flood: null
logging: {{level: warning}}
pipeline: {{batch_wait_ms: {wait}, batch_max: 2000}}
teams: {{maintenance: {{}}}}
default_team: maintenance
sources:
  - name: sensors
    adapter: mqtt
    url: mqtt://127.0.0.1:{port}
    protocol: "{protocol}"
    client_id: bench-floorstream-{run}
    clean_start: true
    qos: {qos}
    decode: sparkplug
    topics: ["spBv1.0/bench/#"]
    detect:
      - state_change: {{field: State}}
      - threshold: {{field: Temperature, above: 85, clear_below: 82, unit: "°C"}}
"""


# -- the driver ----------------------------------------------------------------------------

def _spawn(role: str, *args: str) -> subprocess.Popen[bytes]:
    script = os.environ.get("FS_BENCH_SCRIPT", str(HERE)) if role == "_floorstream" else str(HERE)
    return subprocess.Popen([sys.executable, script, role, *args])


def _wait_file(path: Path, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{proc.args} did not get ready")
        time.sleep(0.01)


def run_one(work: Path, port: int, sut: str, qos: int, mode: str, stream: Path,
            expect: int, last_ts: int, wait_ms: float, limit: int = 0,
            rate: float = 0, sparkplug: bool = False, web_clients: int = -1
            ) -> dict[str, Any]:
    """One run; ``web_clients`` ≥ 0: floorstream serves its web feed, to that many
    event-stream clients."""
    web_port = _free_port() if web_clients >= 0 else 0
    flags = ["--sparkplug", "1"] if sparkplug else []
    run = f"{sut}-{qos}-{mode}-{time.monotonic_ns()}"
    ready, result, pub_result = work / f"{run}.ready", work / f"{run}.json", work / f"{run}.pub"
    if sut in ("ceiling", "ceiling_read"):  # ceiling_read: Sparkplug, values read too
        proc = _spawn("_ceiling", "--port", str(port), "--qos", str(qos), "--expect",
                      str(expect), "--ready", str(ready), "--result", str(result),
                      *(["--sparkplug", "2"] if sut == "ceiling_read" else flags))
    else:
        sut_dir = work / run
        sut_dir.mkdir()
        config = sut_dir / "fs.yaml"
        protocol = os.environ.get("FS_BENCH_PROTOCOL") or ("3.1.1" if qos == 0 else "5")
        config.write_text((CONFIG_SPARKPLUG if sparkplug else CONFIG).format(
            dir=sut_dir, port=port, qos=qos, run=run, wait=wait_ms, protocol=protocol)
            + (WEB_CONFIG.format(port=web_port, token=WEB_TOKEN) if web_port else ""))
        proc = _spawn("_floorstream", "--config", str(config), "--last-ts", str(last_ts),
                      "--ready", str(ready), "--result", str(result),
                      *(["--go", str(work / f"{run}.go")] if web_port else []))
    _wait_file(ready, proc)
    clients = _web_clients(web_port, web_clients) if web_clients > 0 else []
    if web_port:
        (work / f"{run}.go").touch()
    time.sleep(0.3)  # let the subscription settle
    if mode == "drain":
        proc.send_signal(signal.SIGSTOP)
    pub = _spawn("_publish", "--port", str(port), "--qos", str(qos), "--stream", str(stream),
                 "--result", str(pub_result), "--limit", str(limit), "--rate", str(rate), *flags)
    pub.wait()
    resumed = time.monotonic_ns()
    if mode == "drain":
        proc.send_signal(signal.SIGCONT)
    proc.wait(600)
    web_seen = _web_clients_stop(clients)
    res = json.loads(result.read_text())
    published = json.loads(pub_result.read_text())
    start = resumed if mode == "drain" else published["t_start_ns"]
    n = limit or expect
    out = {"sut": sut, "qos": qos, "mode": mode, "rss_mb": round(res["rss_mb"], 1),
           "received": res["received"], "cpu_s": res.get("cpu_s"),
           "msgs_s": round(n / ((res["t_last_ns"] - start) / 1e9)) if res["t_last_ns"] else 0,
           "publisher_msgs_s": round(n / ((published["t_end_ns"] - published["t_start_ns"])
                                          / 1e9))}
    if web_clients >= 0:
        out["web_clients"] = web_clients
        out["web_threads_cpu_s"] = res.get("web_threads_cpu_s")
        out["by_thread"] = res.get("by_thread")
        out["sys_by_thread"] = res.get("sys_by_thread")
        out["switches_by_thread"] = res.get("switches_by_thread")
        out["gc"] = res.get("gc")
        out.update(web_seen)
    if sut == "floorstream":
        committed = dict(res["committed"])
        out["posts"] = res["posts"]
        out["batches"] = res["batches"]
        out["uncommitted"] = res.get("uncommitted", 0)  # batches acked without a transaction
        lat = sorted((committed[ts] - t) / 1e6 for ts, t in published["times"]
                     if ts in committed)
        if lat:
            out["p50_ms"] = round(lat[len(lat) // 2], 2)
            out["p99_ms"] = round(lat[min(len(lat) - 1, int(len(lat) * 0.99))], 2)
            out["events_timed"] = len(lat)
    return out


WEB_TOKEN = "bench-mqtt-web-token-0123456789"
WEB_CONFIG = """
web:
  port: {port}
  people: {{bench: {{name: Bench}}}}
  tokens: [{{person: bench, token: {token}}}]
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _web_clients(port: int, count: int, processes: int = 2) -> list[subprocess.Popen[str]]:
    """``count`` event streams following everything on the daemon's web feed, in
    ``processes`` processes of bench/web_clients.py; returns once they are all open."""
    script = HERE.with_name("web_clients.py")
    started = [subprocess.Popen([sys.executable, str(script), str(port), str(share),
                                 WEB_TOKEN, os.environ.get("FS_WEB_PATH", "/events?scope=all")],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
               for share in (count // processes + (n < count % processes)
                             for n in range(processes)) if share]
    for client in started:
        assert client.stdout is not None
        if client.stdout.readline().strip() != "ready":
            raise RuntimeError("the event-stream clients did not connect")
    return started


def _web_clients_stop(started: list[subprocess.Popen[str]]) -> dict[str, Any]:
    """Stop the clients (SIGTERM, by pid) and sum what they saw."""
    reports = []
    for client in started:
        client.terminate()
        assert client.stdout is not None
        line = client.stdout.readline()
        reports.append(json.loads(line) if line.strip() else {})
        client.wait(20)
    return {f"web_{key}": sum(r.get(key, 0) for r in reports)
            for key in ("post_events", "more", "cpu_s")} if started else {}


def _start_broker(work: Path, inflight: int) -> tuple[int, subprocess.Popen[bytes]]:
    """A private Mosquitto on a free port (no persistence, no queue limits, Mosquitto's
    ``max_inflight_messages`` as given); returns once it accepts connections."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conf = work / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                    "max_queued_messages 0\nmax_queued_bytes 0\nlog_dest none\n"
                    f"max_inflight_messages {inflight}\n")
    broker = subprocess.Popen(["mosquitto", "-c", str(conf)])
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return port, broker
        except OSError:
            if broker.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("mosquitto did not start") from None
            time.sleep(0.05)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1].startswith("_"):
        role = sys.argv.pop(1)
        ap = argparse.ArgumentParser()
        for flag in ("--port", "--qos", "--expect", "--last-ts", "--limit", "--sparkplug"):
            ap.add_argument(flag, type=int, default=0)
        for flag in ("--stream", "--result", "--ready", "--config", "--go"):
            ap.add_argument(flag, default="")
        ap.add_argument("--rate", type=float, default=0)
        ap.add_argument("--max-seconds", type=float, default=300)
        args = ap.parse_args()
        {"_publish": role_publish, "_ceiling": role_ceiling,
         "_floorstream": role_floorstream}[role](args)
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--machines", type=int, default=200)
    ap.add_argument("--messages", type=int, default=200_000)
    ap.add_argument("--qos", type=int, nargs="*", default=[0, 1])
    ap.add_argument("--modes", nargs="*", default=["storm", "drain", "paced"])
    ap.add_argument("--batch-wait-ms", type=float, default=1.0)
    ap.add_argument("--broker-inflight", type=int, default=20,
                    help="Mosquitto's max_inflight_messages (its default: 20): the unacked "
                         "QoS 1 window, which bounds an ack-after-commit subscriber")
    ap.add_argument("--paced-rate", type=float, default=5000)
    ap.add_argument("--paced-messages", type=int, default=50_000)
    ap.add_argument("--sparkplug", action="store_true",
                    help="the Sparkplug B storm (nodes x devices, DDATA of 10 alias metrics)")
    ap.add_argument("--nodes", type=int, default=200)
    ap.add_argument("--devices", type=int, default=10)
    ap.add_argument("--web-clients", type=int, default=0,
                    help="only the storm with the web feed on: no client, then N, interleaved")
    ap.add_argument("--web-rounds", type=int, default=3)
    a = ap.parse_args()
    if a.sparkplug:
        _sparkplug_main(a)
        return
    if a.web_clients:
        _web_main(a)
        return
    with tempfile.TemporaryDirectory(prefix="fs-bench-mqtt-") as tmp:
        work = Path(tmp)
        stream = work / "stream.tsv"
        interesting = generate(stream, a.machines, a.messages)
        last_ts = T0 + a.messages - 1
        print(f"stream: {a.messages:,} messages, {a.machines} machines, "
              f"{interesting:,} interesting ({interesting / a.messages:.2%})", flush=True)
        port, broker = _start_broker(work, a.broker_inflight)
        rows = []
        try:
            for qos in a.qos:
                for mode in [m for m in a.modes if m != "paced"]:
                    for sut in ("ceiling", "floorstream"):
                        row = run_one(work, port, sut, qos, mode, stream, a.messages, last_ts,
                                      a.batch_wait_ms)
                        rows.append(row)
                        print(json.dumps(row), flush=True)
            paced_last = _last_interesting_ts(stream, a.paced_messages)
            for qos in a.qos if "paced" in a.modes else []:
                row = run_one(work, port, "floorstream", qos, "paced", stream, a.paced_messages,
                              paced_last, a.batch_wait_ms, limit=a.paced_messages,
                              rate=a.paced_rate)
                rows.append(row)
                print(json.dumps(row), flush=True)
        finally:
            broker.terminate()
            broker.wait()
        _summary(rows)


def _web_main(a: argparse.Namespace) -> None:
    """The JSON storm into floorstream with its web feed on: no event-stream client, then
    ``--web-clients``, interleaved (A/B/A/B…) so the machine's load falls on both alike."""
    import statistics

    with tempfile.TemporaryDirectory(prefix="fs-bench-mqtt-web-") as tmp:
        work = Path(tmp)
        stream = work / "stream.tsv"
        interesting = generate(stream, a.machines, a.messages)
        last_ts = T0 + a.messages - 1
        print(f"stream: {a.messages:,} messages, {interesting:,} interesting; web feed on, "
              f"0 and {a.web_clients} event-stream clients, {a.web_rounds} rounds", flush=True)
        port, broker = _start_broker(work, a.broker_inflight)
        rows = []
        try:
            for _ in range(a.web_rounds):
                for qos in a.qos:
                    for clients in (0, a.web_clients):
                        row = run_one(work, port, "floorstream", qos, "storm", stream,
                                      a.messages, last_ts, a.batch_wait_ms, web_clients=clients)
                        row["load_1m"] = round(os.getloadavg()[0], 2)
                        rows.append(row)
                        print(json.dumps(row), flush=True)
        finally:
            broker.terminate()
            broker.wait()
    for qos in a.qos:
        by = {n: [r for r in rows if r["qos"] == qos and r["web_clients"] == n]
              for n in (0, a.web_clients)}
        rate = {n: statistics.median(r["msgs_s"] for r in found) for n, found in by.items()}
        cpu = {n: statistics.median(r["cpu_s"] for r in found) for n, found in by.items()}
        threads: dict[int, dict[str, float]] = {}
        for n, found in by.items():  # the daemon's CPU by thread, medians over the rounds
            names = {name for r in found for name in r.get("by_thread") or {}}
            threads[n] = {name: statistics.median((r.get("by_thread") or {}).get(name, 0)
                                                  for r in found) for name in sorted(names)}
        print(json.dumps({"qos": qos, "median_msgs_s": rate, "median_cpu_s": cpu,
                          "median_cpu_s_by_thread": threads,
                          "msgs_s_ratio": round(rate[a.web_clients] / rate[0], 3),
                          "cpu_ratio": round(cpu[a.web_clients] / cpu[0], 3)}), flush=True)


def _sparkplug_main(a: argparse.Namespace) -> None:
    """The Sparkplug storm: storm and drain at each QoS, ceiling and floorstream."""
    with tempfile.TemporaryDirectory(prefix="fs-bench-sparkplug-") as tmp:
        work = Path(tmp)
        stream = work / "sparkplug.tsv"
        interesting, total, last_ts = generate_sparkplug(stream, a.nodes, a.devices,
                                                         a.messages)
        print(f"sparkplug stream: {total:,} messages ({a.nodes} nodes x {a.devices} devices, "
              f"births first, then {a.messages:,} DDATA of 10 alias metrics), "
              f"{interesting:,} interesting", flush=True)
        port, broker = _start_broker(work, a.broker_inflight)
        rows = []
        try:
            for qos in a.qos:
                for mode in [m for m in a.modes if m != "paced"]:
                    for sut in ("ceiling", "ceiling_read", "floorstream"):
                        row = run_one(work, port, sut, qos, mode, stream, total, last_ts,
                                      a.batch_wait_ms, sparkplug=True)
                        row["stream"] = "sparkplug"
                        rows.append(row)
                        print(json.dumps(row), flush=True)
        finally:
            broker.terminate()
            broker.wait()
        _summary(rows)
        _cpu_ratios(rows, total)


def _cpu_ratios(rows: list[dict[str, Any]], total: int) -> None:
    """The comparable figure on a loaded machine: CPU per message of each subscriber, and the
    ceilings' CPU over floorstream's (the msgs/s ratio the target is stated in, were the
    machine otherwise idle)."""
    for mode in ("storm", "drain"):
        for qos in (0, 1):
            by = {r["sut"]: r for r in rows if r["mode"] == mode and r["qos"] == qos}
            if "floorstream" not in by or not by["floorstream"].get("cpu_s"):
                continue
            fs = by["floorstream"]["cpu_s"]
            out: dict[str, Any] = {"mode": mode, "qos": qos, "cpu_us_per_msg": {
                sut: round(r["cpu_s"] / total * 1e6, 1) for sut, r in by.items()
                if r.get("cpu_s")}}
            for sut in ("ceiling", "ceiling_read"):
                if by.get(sut, {}).get("cpu_s"):
                    out[f"cpu_ratio_{sut}"] = round(by[sut]["cpu_s"] / fs, 2)
            print(json.dumps(out), flush=True)


def _last_interesting_ts(stream: Path, limit: int) -> int:
    last = 0
    with stream.open() as f:
        for n, line in enumerate(f):
            if n >= limit:
                break
            if line.endswith("\t1\n"):
                last = json.loads(line.split("\t")[1])["ts"]
    return last


def _summary(rows: list[dict[str, Any]]) -> None:
    print("\n| mode | QoS | ceiling msgs/s | floorstream msgs/s | ratio | fs p50 / p99 ms "
          "| RSS MB ceiling / fs | CPU s ceiling / fs |")
    print("|---|---|---|---|---|---|---|---|")
    for mode in ("storm", "drain"):
        for qos in (0, 1):
            pair = {r["sut"]: r for r in rows if r["mode"] == mode and r["qos"] == qos}
            if len(pair) < 2:
                continue
            c, f = pair["ceiling"], pair["floorstream"]
            ratio = f["msgs_s"] / c["msgs_s"] if c["msgs_s"] else 0
            print(f"| {mode} | {qos} | {c['msgs_s']:,} | {f['msgs_s']:,} | {ratio:.2f} | "
                  f"{f.get('p50_ms')} / {f.get('p99_ms')} | {c['rss_mb']} / {f['rss_mb']} | "
                  f"{c.get('cpu_s')} / {f.get('cpu_s')} |")
    for r in rows:
        if r["mode"] == "paced":
            print(f"| paced {r['msgs_s'] and 'ok'} | {r['qos']} | - | - | - | "
                  f"{r.get('p50_ms')} / {r.get('p99_ms')} | - / {r['rss_mb']} | "
                  f"- / {r.get('cpu_s')} |")


if __name__ == "__main__":
    main()
