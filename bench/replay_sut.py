"""Subscribers for ``bench/mqtt_replay.py`` on the Sparkplug storm (lines mode: ``BENCH_PORT``,
``BENCH_QOS``, ``BENCH_OUT``): ``floorstream`` (the daemon with ``bench/mqtt.py``'s Sparkplug
config, one line ``<subject> (ts=<ms>)`` per post) or ``ceiling`` (bare paho +
``Payload.ParseFromString``; ``ceiling_read`` also reads each metric's alias and value), which
writes ``(ts=$BENCH_LAST_TS)`` once it has ``$BENCH_MESSAGES`` messages.

Run: ``python bench/mqtt_replay.py --sparkplug --stream S --
    python bench/replay_sut.py floorstream``
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

sys.path.insert(0, str(Path(__file__).resolve().parent))


def floorstream_sut(out: TextIO, port: int, qos: int) -> None:
    import mqtt as storm

    import floorstream
    from floorstream.config import parse_config
    from floorstream.daemon import Daemon
    from floorstream.logs import configure_logging
    from floorstream.model import Post
    from floorstream.plugins import build_plugins

    class Lines:
        @floorstream.hookimpl
        def post_committed(self, posts: Sequence[Post]) -> None:
            out.write("".join(f"{p.subject} (ts={round(p.occurred_at.timestamp() * 1000)})\n"
                              for p in posts))
            out.flush()

    if os.environ.get("FS_PROFILE_DIR"):
        _profile_threads(Path(os.environ["FS_PROFILE_DIR"]))
    with tempfile.TemporaryDirectory() as tmp:
        plugins = build_plugins(extra=[Lines()], load_entry_points=False)
        protocol = os.environ.get("FS_BENCH_PROTOCOL") or ("3.1.1" if qos == 0 else "5")
        text = storm.CONFIG_SPARKPLUG.format(dir=tmp, port=port, qos=qos, run=os.getpid(),
                                             wait=1.0, protocol=protocol)
        config = parse_config(text, plugins)
        configure_logging("warning", "json")
        Daemon(config, plugins).run_forever()


def _profile_threads(folder: Path) -> None:
    """cProfile the pipeline thread and paho's network thread, each into its own file in
    ``folder`` (``pipeline.prof``, ``network.prof``) when it ends (the daemon's stop)."""
    import cProfile

    from floorstream.adapters.mqtt import connection
    from floorstream.pipeline import Pipeline

    def profiled(method: Any, name: str) -> Any:
        def run(self: Any, *args: Any, **kwargs: Any) -> Any:
            profile = cProfile.Profile()
            try:
                return profile.runcall(method, self, *args, **kwargs)
            finally:
                profile.dump_stats(str(folder / f"{name}.prof"))
        return run

    Pipeline._run = profiled(Pipeline._run, "pipeline")  # type: ignore[method-assign]
    connection.FastClient._thread_main = profiled(  # type: ignore[method-assign]
        connection.FastClient._thread_main, "network")


def ceiling_sut(out: TextIO, port: int, qos: int, read: bool) -> None:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from floorstream.adapters.mqtt.sparkplug_b import sparkplug_b_pb2 as pb

    total = int(os.environ["BENCH_MESSAGES"])
    marker = f"(ts={os.environ['BENCH_LAST_TS']})\n"
    seen = [0]

    def on_message(c: Any, u: Any, msg: Any) -> None:
        message = pb.Payload()
        message.ParseFromString(msg.payload)
        if read:
            for metric in message.metrics:
                which = metric.WhichOneof("value")
                if which:
                    getattr(metric, which)
                metric.alias  # noqa: B018 (the read is what is measured)
        seen[0] += 1
        if seen[0] == total:
            out.write(marker)
            out.flush()

    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"ceiling-{os.getpid()}")
    c.on_message = on_message
    c.on_connect = lambda c, u, f, rc, p: c.subscribe("spBv1.0/bench/#", qos=qos)
    c.connect("127.0.0.1", port)
    import signal
    signal.signal(signal.SIGTERM, lambda *_: c.disconnect())
    c.loop_forever()


def main() -> None:
    port, qos = int(os.environ["BENCH_PORT"]), int(os.environ.get("BENCH_QOS", "0"))
    with open(os.environ["BENCH_OUT"], "a", encoding="utf-8") as out:
        if sys.argv[1] == "floorstream":
            floorstream_sut(out, port, qos)
        else:
            ceiling_sut(out, port, qos, read=sys.argv[1] == "ceiling_read")


if __name__ == "__main__":
    main()
