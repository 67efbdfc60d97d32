"""A drain without a broker, for load-robust counts: a scripted "broker" on a local socket
that answers CONNECT and SUBSCRIBE and then writes a backlog of PUBLISH packets as fast as the
subscriber reads them, for any subscriber command of the shared peers harness (lines mode:
``BENCH_PORT``, ``BENCH_QOS``, ``BENCH_OUT``).

Why: on a busy 2-core machine msgs/s and even CPU seconds per message vary by 2-5x between
runs; instruction counts under callgrind do not. With ``--callgrind OUT`` the subscriber runs
under ``valgrind --tool=callgrind --instr-atstart=no``; instrumentation is switched on
(``callgrind_control -i on``) once the subscription is made, just before the first PUBLISH,
and the profile is dumped once every expected line is written: the count covers the drain
only (no imports, no start-up). It prints the instructions per message (``Ir/msg``) and,
for the daemon, the split by thread is in the profile (``--separate-threads=yes``).

At QoS 1 the "broker" keeps at most ``--inflight`` messages unacknowledged (Mosquitto's
``max_inflight_messages``, 20 by default), as Mosquitto does for an MQTT 3.1.1 client.

Run, e.g. (the stream from the peers harness's ``gen_stream.py``)::

    python bench/mqtt_replay.py --stream /tmp/fsbench/data/stream.tsv --limit 20000 \\
        --callgrind /tmp/fs.cg -- /work/main/.venv/bin/python bench/peers_sut.py
"""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import socket
import struct
import subprocess
import tempfile
import time
from pathlib import Path


def _remaining(sock: socket.socket) -> tuple[int, bytes]:
    """One MQTT packet off ``sock``: (first byte, body)."""
    head = _exact(sock, 1)[0]
    length, shift = 0, 0
    while True:
        byte = _exact(sock, 1)[0]
        length |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
    return head, _exact(sock, length)


def _exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("the subscriber closed the connection")
        data += chunk
    return data


def _length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def publish_packet(topic: str, payload: bytes, qos: int, mid: int, v5: bool) -> bytes:
    raw = topic.encode()
    body = struct.pack("!H", len(raw)) + raw + (struct.pack("!H", mid) if qos else b"") + \
        (b"\x00" if v5 else b"") + payload
    return bytes([0x30 | qos << 1]) + _length(len(body)) + body


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stream", required=True, help="stream.tsv of the peers harness")
    ap.add_argument("--limit", type=int, default=20_000)
    ap.add_argument("--qos", type=int, default=0, choices=[0, 1])
    ap.add_argument("--inflight", type=int, default=20)
    ap.add_argument("--callgrind", default="", help="callgrind output file (no: plain run)")
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--sparkplug", action="store_true",
                    help="the stream is bench/mqtt.py --sparkplug's (hex payloads, the flag "
                         "the timestamp of an interesting message)")
    ap.add_argument("command", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    command = a.command[1:] if a.command[:1] == ["--"] else a.command
    rows = []
    with open(a.stream, encoding="utf-8") as f:
        for n, line in enumerate(f):
            if n >= a.limit:
                break
            topic, payload, flag = line.rstrip("\n").split("\t")
            if a.sparkplug:
                rows.append((topic, bytes.fromhex(payload), int(flag)))
            else:
                rows.append((topic, payload.encode(),
                             json.loads(payload)["ts"] if flag == "1" else 0))
    expect = sum(1 for r in rows if r[2])
    # the subscriber is done when the line of the last interesting message is written (in
    # order after everything before it); a ceiling writes it once it has every message
    last_ts = max(r[2] for r in rows)
    marker = f"ts={last_ts})"
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    with tempfile.TemporaryDirectory(prefix="fs-replay-") as tmp:
        out = Path(tmp) / "out.txt"
        out.touch()
        env = {**os.environ, "BENCH_PORT": str(port), "BENCH_QOS": str(a.qos),
               "BENCH_OUT": str(out), "BENCH_EXPECT": str(expect),
               "BENCH_MESSAGES": str(len(rows)), "BENCH_LAST_TS": str(last_ts)}
        if a.callgrind:
            command = ["valgrind", "--tool=callgrind", "--instr-atstart=no",
                       "--separate-threads=yes", f"--callgrind-out-file={a.callgrind}",
                       *command]
        proc = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL
                                if a.callgrind else None)
        server.settimeout(a.timeout)
        conn, _ = server.accept()
        head, body = _remaining(conn)
        assert head >> 4 == 1, "CONNECT expected"
        v5 = body[6] == 5  # protocol level after the "MQTT" name
        conn.sendall(b"\x20\x03\x00\x00\x00" if v5 else b"\x20\x02\x00\x00")
        head, body = _remaining(conn)
        assert head >> 4 == 8, "SUBSCRIBE expected"
        mid = body[:2]
        conn.sendall((b"\x90\x04" + mid + b"\x00" if v5 else b"\x90\x03" + mid) +
                     bytes([a.qos]))
        packets = [publish_packet(t, p, a.qos, i % 65535 + 1, v5)
                   for i, (t, p, _) in enumerate(rows)]
        time.sleep(0.5)  # the subscription settles (as a harness run does)
        if a.callgrind:
            subprocess.run(["callgrind_control", "-i", "on", str(proc.pid)], check=True,
                           stdout=subprocess.DEVNULL)
        started = time.monotonic()
        conn.setblocking(False)
        unacked = 0
        buffered = b""
        pending = b""
        index = 0
        deadline = started + a.timeout
        while True:
            if not pending and index < len(packets):
                take = len(packets) - index if not a.qos else max(0, a.inflight - unacked)
                chunk = packets[index:index + min(take, 500)]
                index += len(chunk)
                unacked += len(chunk) if a.qos else 0
                pending = b"".join(chunk)
            readable, writable, _ = select.select([conn], [conn] if pending else [], [], 0.2)
            if readable:
                try:
                    data = conn.recv(65536)
                except BlockingIOError:
                    data = b""
                buffered += data
                while len(buffered) >= 2 and len(buffered) >= 2 + buffered[1]:
                    kind = buffered[0] >> 4
                    if kind == 4:
                        unacked -= 1
                    elif kind == 12:  # PINGREQ
                        conn.sendall(b"\xd0\x00")
                    buffered = buffered[2 + buffered[1]:]
            if writable and pending:
                try:
                    sent = conn.send(pending)
                    pending = pending[sent:]
                except BlockingIOError:
                    pass
            if index >= len(packets) and not pending and marker in out.read_text():
                break
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit(f"timed out or ended early: {out.read_text().count(chr(10))} "
                                 f"of {expect} lines")
        took = time.monotonic() - started
        peak_mb = _vmhwm_mb(proc.pid)
        if a.callgrind:
            subprocess.run(["callgrind_control", "-d", str(proc.pid)], check=True,
                           stdout=subprocess.DEVNULL)
            subprocess.run(["callgrind_control", "-i", "off", str(proc.pid)], check=True,
                           stdout=subprocess.DEVNULL)
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        result = {"messages": len(rows), "lines": expect, "qos": a.qos, "seconds": round(took, 2),
                  "peak_rss_mb": peak_mb}
        if a.callgrind:
            result["Ir"] = _total_ir(a.callgrind)
            result["Ir_per_msg"] = round(result["Ir"] / len(rows))
        print(json.dumps(result), flush=True)


def _vmhwm_mb(pid: int) -> float | None:
    """The subscriber's peak RSS so far (VmHWM), in MiB; None under valgrind's own numbers
    or when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def _total_ir(base: str) -> int:
    """The instructions of the first dump (``callgrind_control -d``: ``OUT.1-<thread>``) of
    every thread; what is dumped at exit is after instrumentation was switched off."""
    total = 0
    folder = Path(base).parent
    for path in folder.glob(Path(base).name + ".1-*"):
        with path.open(encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("summary:") or line.startswith("totals:"):
                    total += int(line.split()[1])
                    break
    return total


if __name__ == "__main__":
    main()
