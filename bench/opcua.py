"""OPC UA: 10,000 monitored items changing once a second — what the ``opcua`` source costs.

A separate process runs asyncua's server (``plugins/floorstream-opcua/tests/opcua_server.py
--bench N``) and writes every one of its N Double variables once per period. This process is
floorstream; it subscribes to all N (publishing interval 1 s, sampling 500 ms) and, after a
warm-up, measures for ``--seconds``:

- ``adapter``: the source alone, each change handed to a counting emitter (the OPC UA client,
  decoding, conversion to changes, the hand-over between the two threads);
- ``daemon``: a whole daemon on SQLite, a threshold detector on every value (none crosses it,
  so nothing is posted: the steady state of a plant that is fine);
- ``micro``: no server and no socket: N notifications encoded as a server would send them
  (one PublishResponse per second), decoded by asyncua as the client does, converted and
  handed over by the source's own code to a counting emitter — the CPU that 10,000
  changes/s cost the source when the server does keep up (on a loaded 2-core machine the
  server process, Python too, may not: ``notifications_per_s`` says what came).

It prints one JSON object per mode: notifications/s received, CPU seconds per wall second of
this process (1.0 = one core busy), peak RSS (VmHWM) and the server's own CPU share (the
server is Python too, and on a 2-core machine the two compete). Numbers from a loaded
development machine; compare runs on the same machine only. Run:
``python bench/opcua.py [--items 10000] [--seconds 20] [--modes adapter daemon]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
SERVER = HERE.parents[1] / "plugins" / "floorstream-opcua" / "tests" / "opcua_server.py"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(items: int, period: float) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, str(SERVER), "--port", str(port), "--bench",
                                str(items), "--period", str(period)],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("READY"):
            break
    else:
        raise SystemExit("the OPC UA server did not start")
    return process, f"opc.tcp://127.0.0.1:{port}/floorstream/"


def source(url: str, items: int) -> dict[str, Any]:
    return {"name": "bench", "adapter": "opcua", "url": url, "publishing_interval": 1.0,
            "sampling_interval": 0.5, "batch": 2000,
            "items": [{"node": f"ns=2;i={1000 + k}", "subject": f"m{k // 10:04d}",
                       "field": f"v{k % 10}", "queue_size": 1} for k in range(items)]}


def cpu_seconds(pid: int | None = None) -> float:
    if pid is None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def vm_hwm_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def measure(count: Any, server_pid: int, warmup: float, seconds: float) -> dict[str, Any]:
    time.sleep(warmup)
    n0, c0, s0, t0 = count(), cpu_seconds(), cpu_seconds(server_pid), time.monotonic()
    time.sleep(seconds)
    n1, c1, s1, t1 = count(), cpu_seconds(), cpu_seconds(server_pid), time.monotonic()
    wall, notifications, cpu = t1 - t0, n1 - n0, c1 - c0
    per = cpu / notifications if notifications else None  # (JSON has no NaN)
    return {"notifications_per_s": round(notifications / wall), "cpu_share": round(cpu / wall, 3),
            # what one notification costs this process, and so what 10,000/s would (the
            # server may not keep up on a loaded 2-core machine: notifications_per_s says)
            "cpu_us_per_notification": None if per is None else round(per * 1e6, 1),
            "cpu_share_at_10000_per_s": None if per is None else round(per * 10_000, 3),
            "server_cpu_share": round((s1 - s0) / wall, 3), "peak_rss_mb": round(vm_hwm_mb(), 1),
            "seconds": round(wall, 1)}


def run_adapter(url: str, items: int, pid: int, warmup: float, seconds: float) -> dict[str, Any]:
    from floorstream_opcua import OpcuaAdapter

    from floorstream.plugin import AdapterContext
    from floorstream.plugins import build_plugins

    class Counting:
        """An emitter that only counts: the source's own cost, without the pipeline."""

        def __init__(self) -> None:
            self.changes = 0
            self.problems: list[str] = []

        def emit(self, change: Any, **_: Any) -> None:
            self.changes += 1

        def problem(self, subject: str, message: str, **_: Any) -> None:
            self.problems.append(message)

        def __getattr__(self, name: str) -> Any:
            return lambda *a, **k: None

    config = OpcuaAdapter.config_model.model_validate(source(url, items))
    emitter, stop = Counting(), threading.Event()
    adapter = OpcuaAdapter(config, AdapterContext("bench", None,
                                                  build_plugins(load_entry_points=False).decoders))
    thread = threading.Thread(target=adapter.run, args=(emitter, stop), daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while (adapter.session is None or adapter.session.notifications < items) and \
            time.monotonic() < deadline:
        time.sleep(0.1)
    session = adapter.session
    assert session is not None
    result = measure(lambda: session.notifications, pid, warmup, seconds)
    result["changes_per_notification"] = round(emitter.changes / max(session.notifications, 1),
                                               3)
    stop.set()
    thread.join(10)
    result["problems"] = len(emitter.problems)
    return result


def run_daemon(url: str, items: int, pid: int, warmup: float, seconds: float) -> dict[str, Any]:
    import yaml

    from floorstream.config import parse_config
    from floorstream.daemon import Daemon
    from floorstream.plugins import build_plugins

    workdir = Path(tempfile.mkdtemp(prefix="fs-opcua-bench-"))
    src = source(url, items)
    src["detect"] = [{"threshold": {"field": f"v{k}", "above": 1e9, "clear_below": 1e8}}
                     for k in range(10)]
    text = yaml.safe_dump({"store": f"sqlite:///{workdir}/fs.db", "teams": {"ops": {}},
                           "sources": [src], "routes": [{"match": {"source": "bench"},
                                                         "teams": ["ops"]}]})
    plugins = build_plugins()
    daemon = Daemon(parse_config(text, plugins), plugins)
    daemon.start()
    adapter = None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        adapter = daemon._adapters.get("bench")  # the running source, to count its input
        if adapter is not None and adapter.session is not None and \
                adapter.session.notifications >= items:
            break
        time.sleep(0.1)
    assert adapter is not None and adapter.session is not None
    session = adapter.session
    result = measure(lambda: session.notifications, pid, warmup, seconds)
    daemon.stop()
    return result


def run_micro(items: int, seconds: float) -> dict[str, Any]:
    """Decode + convert + hand over, one second's worth of notifications at a time."""
    import asyncio
    import queue
    from datetime import UTC, datetime, timedelta

    from asyncua import ua
    from asyncua.ua.ua_binary import struct_from_binary, struct_to_binary
    from floorstream_opcua import OpcuaAdapter
    from floorstream_opcua.session import OpcuaSession

    from floorstream.plugin import AdapterContext
    from floorstream.plugins import build_plugins

    config = OpcuaAdapter.config_model.model_validate(source("opc.tcp://unused:4840", items))
    out: queue.Queue[Any] = queue.Queue()
    session = OpcuaSession(config, AdapterContext(
        "bench", None, build_plugins(load_entry_points=False).decoders), out)
    start = datetime.now(UTC)

    def response(tick: int) -> bytes:
        when = start + timedelta(seconds=tick)
        change = ua.DataChangeNotification()
        change.MonitoredItems = [ua.MonitoredItemNotification(
            ClientHandle=k + 1, Value=ua.DataValue(
                ua.Variant(float(tick + k % 7), ua.VariantType.Double),
                SourceTimestamp=when, ServerTimestamp=when)) for k in range(items)]
        message = ua.NotificationMessage(SequenceNumber=tick, PublishTime=when,
                                         NotificationData=[change])
        return struct_to_binary(ua.PublishResponse(Parameters=ua.PublishResult(
            SubscriptionId=1, NotificationMessage=message)))

    encoded = [response(tick) for tick in range(1, 6)]  # the server's work: not measured
    handed = 0  # changes: one per machine and instant (10 items each here)

    async def one(data: bytes) -> int:
        decoded = struct_from_binary(ua.PublishResponse, ua.utils.Buffer(data))
        await session._on_notifications(decoded.Parameters.NotificationMessage.NotificationData)
        count = 0
        while not out.empty():
            count += sum(1 for kind, _ in out.get_nowait() if kind == "change")
        return count

    c0, t0, rounds, n0 = cpu_seconds(), time.monotonic(), 0, session.notifications
    while time.monotonic() - t0 < seconds:
        handed += asyncio.run(one(encoded[rounds % len(encoded)]))
        rounds += 1
    cpu = cpu_seconds() - c0
    notifications = session.notifications - n0
    per = cpu / notifications
    return {"notifications": notifications, "changes": handed,
            "cpu_us_per_notification": round(per * 1e6, 2),
            "cpu_share_at_10000_per_s": round(per * 10_000, 3),
            "peak_rss_mb": round(vm_hwm_mb(), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--period", type=float, default=1.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--modes", nargs="+", default=["micro", "adapter", "daemon"],
                        choices=["micro", "adapter", "daemon"])
    parser.add_argument("--one", help=argparse.SUPPRESS)  # a mode in a fresh process
    args = parser.parse_args()
    if args.one:
        url, pid = os.environ["FS_BENCH_URL"], int(os.environ["FS_BENCH_SERVER"])
        run = run_adapter if args.one == "adapter" else run_daemon
        result = run(url, args.items, pid, args.warmup, args.seconds)
        print(json.dumps({"mode": args.one, "items": args.items, "period_s": args.period,
                          **result}), flush=True)
        return
    if "micro" in args.modes:
        print(json.dumps({"mode": "micro", "items": args.items,
                          **run_micro(args.items, args.seconds)}), flush=True)
    modes = [m for m in args.modes if m != "micro"]
    if not modes:
        return
    server, url = start_server(args.items, args.period)
    try:
        for mode in modes:  # each in its own process: its own peak RSS
            subprocess.run([sys.executable, str(HERE), "--one", mode, "--items",
                            str(args.items), "--period", str(args.period), "--seconds",
                            str(args.seconds), "--warmup", str(args.warmup)], check=True,
                           env={**os.environ, "FS_BENCH_URL": url,
                                "FS_BENCH_SERVER": str(server.pid)})
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
