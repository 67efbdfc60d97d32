"""What health, metrics and self-alerts cost: the MQTT sensor storm of ``bench/mqtt.py``
through floorstream at two revisions, alternating, several rounds.

- ``before``: a revision without them (``--before-rev``, exported with ``git archive``);
- ``after``: a revision with them (``--after-rev``; default: the working tree's ``src``),
  run with ``health: {port: 0}`` added to the config and ``/metrics`` and ``/healthz``
  scraped every ``--scrape-every`` seconds by another process (far more often than
  Prometheus' usual 15 s), so the HTTP server, the collector, the monitor thread and the
  pipeline's counters all take their share.

On a machine shared with other jobs, runs of the very same code differ by tens of percent, so
the two revisions' msgs/s and CPU per message bound the overhead rather than measure it. The
``after`` runs therefore also time the added work itself, in the same process and run: the
thread CPU of the pipeline's per-batch accounting, of the monitor's ticks and of serving each
request, as a share of the daemon's CPU (a ratio within one run, which other load barely moves).

Everything else is ``bench/mqtt.py``'s: the same stream, private Mosquitto, modes and msgs/s.
Run: ``python bench/mqtt_metrics.py --before-rev <rev> [--after-rev <rev>] [--rounds 3]
[--messages 200000] [--modes storm drain] [--qos 0 1]``. Prints one JSON line per run and
tables of medians and of the best run (``--summarize FILE`` tabulates a saved run again).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
ROOT = HERE.parent.parent


def _bench() -> Any:
    spec = importlib.util.spec_from_file_location("bench_mqtt", HERE.parent / "mqtt.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


#: what the scraper process runs: GET /metrics and /healthz every N seconds (Prometheus and a
#: probe scrape from outside the daemon's process, so the client's CPU is not the daemon's)
SCRAPER = """
import sys, time, urllib.request
base, every = sys.argv[1], float(sys.argv[2])
while True:
    for path in ("/metrics", "/healthz"):
        try:
            urllib.request.urlopen(base + path, timeout=5).read()
        except Exception:
            pass
    time.sleep(every)
"""

#: CPU seconds of the added work by part, in the measured process (see _time_parts)
PARTS: dict[str, float] = {}


def role_measured() -> None:
    """``bench/mqtt.py``'s floorstream role, its CPU seconds from ready to the end written to
    ``FS_BENCH_CPU_FILE``; with ``FS_BENCH_SCRAPE_EVERY``, the health port on, a scraper
    process, and the CPU of the added work measured part by part."""
    args = sys.argv[2:]
    ready_cpu: list[float] = []
    touch = Path.touch

    def touched(self: Path, *a: Any, **k: Any) -> None:
        ready_cpu.append(time.process_time())  # the role touches its ready file once
        PARTS.clear()  # what the added work cost before ready (connecting) does not count
        touch(self, *a, **k)

    Path.touch = touched  # type: ignore[method-assign]
    real_exit = os._exit
    scraper: list[subprocess.Popen[bytes]] = []

    def leave(code: int) -> None:  # the role ends with os._exit once the result is written
        used = time.process_time() - (ready_cpu[0] if ready_cpu else 0.0)
        for process in scraper:
            process.kill()
        Path(os.environ["FS_BENCH_CPU_FILE"]).write_text(json.dumps({"cpu_s": used,
                                                                     **PARTS}))
        real_exit(code)

    os._exit = leave
    if os.environ.get("FS_BENCH_SCRAPE_EVERY"):
        _with_scraper(args, float(os.environ["FS_BENCH_SCRAPE_EVERY"]), scraper)
    sys.argv = [str(HERE.parent / "mqtt.py"), "_floorstream", *args]
    _bench().main()


def _time_parts() -> None:
    """Accumulate the thread CPU of the added work: the pipeline's per-batch accounting, the
    monitor's ticks, and serving each HTTP request (its whole thread)."""
    import socketserver

    from floorstream.monitor import Monitor
    from floorstream.pipeline import Pipeline

    def timed(owner: Any, name: str, part: str) -> None:
        original = getattr(owner, name)

        def wrapper(*a: Any, **k: Any) -> Any:
            started = time.thread_time()
            try:
                return original(*a, **k)
            finally:
                PARTS[part] = PARTS.get(part, 0.0) + time.thread_time() - started

        setattr(owner, name, wrapper)

    timed(Pipeline, "_spans", "accounting_s")
    timed(Pipeline, "_received", "accounting_s")
    timed(Monitor, "check", "monitor_s")
    timed(socketserver.ThreadingMixIn, "process_request_thread", "serving_s")


def _with_scraper(args: list[str], every: float,
                  scraper: list[subprocess.Popen[bytes]]) -> None:
    config = Path(args[args.index("--config") + 1])
    config.write_text(config.read_text() + "health: {port: 0}\n")
    from floorstream import daemon as daemon_module

    _time_parts()
    start = daemon_module.Daemon.start

    def started(self: Any) -> None:
        start(self)
        base = f"http://127.0.0.1:{self.health_server.port}"
        scraper.append(subprocess.Popen([sys.executable, "-c", SCRAPER, base, str(every)]))

    daemon_module.Daemon.start = started  # type: ignore[method-assign]


def _export(rev: str, into: Path) -> Path:
    data = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "src"], check=True,
                          capture_output=True).stdout
    with tarfile.open(fileobj=BytesIO(data)) as archive:
        archive.extractall(into, filter="data")
    return into / "src"


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_floorstream":
        role_measured()
        return
    if len(sys.argv) > 2 and sys.argv[1] == "--summarize":  # the JSON lines of a past run
        rows = [json.loads(line) for line in Path(sys.argv[2]).read_text().splitlines()
                if line.startswith('{"variant"')]
        variants = list(dict.fromkeys(r["variant"] for r in rows))
        _summary(rows, variants,
                 list(dict.fromkeys(r["mode"] for r in rows)),
                 sorted({r["qos"] for r in rows}))
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before-rev", required=True)
    ap.add_argument("--after-rev", default=None, help="default: the working tree's src")
    ap.add_argument("--after-src", default=None, help="or a src folder prepared by hand")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--machines", type=int, default=200)
    ap.add_argument("--messages", type=int, default=200_000)
    ap.add_argument("--modes", nargs="*", default=["storm", "drain"])
    ap.add_argument("--qos", type=int, nargs="*", default=[0, 1])
    ap.add_argument("--batch-wait-ms", type=float, default=1.0)
    ap.add_argument("--scrape-every", type=float, default=1.0)
    ap.add_argument("--variants", nargs="*", default=["before", "after"],
                    help="before, after, after-quiet (after without the port and scraper)")
    a = ap.parse_args()
    bench = _bench()
    with tempfile.TemporaryDirectory(prefix="fs-bench-metrics-") as tmp:
        work = Path(tmp)
        after = (Path(a.after_src) if a.after_src else _export(a.after_rev, work / "after")
                 if a.after_rev else ROOT / "src")
        srcs = {"before": _export(a.before_rev, work / "before"), "after": after,
                "after-quiet": after}
        stream = work / "stream.tsv"
        bench.generate(stream, a.machines, a.messages)
        last_ts = bench.T0 + a.messages - 1
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        conf = work / "mosquitto.conf"
        conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                        "max_queued_messages 0\nmax_queued_bytes 0\nlog_dest none\n")
        broker = subprocess.Popen(["mosquitto", "-c", str(conf)])
        time.sleep(0.5)
        rows: list[dict[str, Any]] = []
        saved = {k: os.environ.get(k) for k in ("PYTHONPATH", "FS_BENCH_SCRIPT",
                                                "FS_BENCH_SCRAPE_EVERY", "FS_BENCH_CPU_FILE")}
        try:
            for round_ in range(a.rounds):
                for qos in a.qos:
                    for mode in a.modes:
                        order = a.variants if round_ % 2 == 0 else a.variants[::-1]
                        for variant in order:
                            cpu_file = work / "cpu.json"
                            cpu_file.unlink(missing_ok=True)
                            os.environ["PYTHONPATH"] = str(srcs[variant])
                            os.environ["FS_BENCH_SCRIPT"] = str(HERE)
                            os.environ["FS_BENCH_CPU_FILE"] = str(cpu_file)
                            if variant == "after":
                                os.environ["FS_BENCH_SCRAPE_EVERY"] = str(a.scrape_every)
                            else:
                                os.environ.pop("FS_BENCH_SCRAPE_EVERY", None)
                            row = bench.run_one(work, port, "floorstream", qos, mode, stream,
                                                a.messages, last_ts, a.batch_wait_ms)
                            measured = json.loads(cpu_file.read_text())
                            cpu = measured.pop("cpu_s")
                            row = {"variant": variant, "round": round_,
                                   "cpu_us_per_msg": round(cpu * 1e6 / a.messages, 2), **{
                                       k: v for k, v in row.items() if k != "sut"}}
                            if measured:  # the added work's share of the process's CPU
                                row["added"] = {k: round(v / cpu, 5)
                                                for k, v in measured.items()}
                                row["added_total"] = round(sum(measured.values()) / cpu, 5)
                            rows.append(row)
                            print(json.dumps(row), flush=True)
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            broker.terminate()
            broker.wait()
    _summary(rows, a.variants, a.modes, a.qos)


def _summary(rows: list[dict[str, Any]], variants: list[str], modes: list[str],
             qoses: list[int]) -> None:
    """Medians, and the best of the rounds (most msgs/s, least CPU per message: on a shared
    machine other load only ever makes a run slower, so the best is the least disturbed)."""
    shares = [r for r in rows if "added_total" in r]
    if shares:
        print("\n| mode | QoS | added work's share of the daemon's CPU (median) | "
              "accounting | monitor | serving |\n|---|---|---|---|---|---|")
        for mode in modes:
            for qos in qoses:
                found = [r for r in shares if r["mode"] == mode and r["qos"] == qos]
                if not found:
                    continue
                cells = [statistics.median(r["added"].get(part, 0.0) for r in found)
                         for part in ("accounting_s", "monitor_s", "serving_s")]
                total = statistics.median(r["added_total"] for r in found)
                print(f"| {mode} | {qos} | {total:.2%} | "
                      + " | ".join(f"{c:.2%}" for c in cells) + " |")
    if "before" not in variants:
        return
    others = [v for v in variants if v != "before"]
    for key, label, best in (("msgs_s", "msgs/s", max), ("cpu_us_per_msg", "CPU µs/msg", min)):
        for how, pick in (("median", statistics.median), ("best", best)):
            print(f"\n| mode | QoS | before {label} ({how}) | "
                  + " | ".join(f"{v} {label} ({how}) | change" for v in others) + " |")
            print("|---|---|---|" + "---|---|" * len(others))
            for mode in modes:
                for qos in qoses:
                    found = {v: float(pick([r[key] for r in rows if r["variant"] == v
                                            and r["mode"] == mode and r["qos"] == qos]))
                             for v in variants}
                    base = found["before"]
                    cells = [f"{found[v]:,.1f} | {(found[v] - base) / base:+.1%}"
                             for v in others]
                    print(f"| {mode} | {qos} | {base:,.1f} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
