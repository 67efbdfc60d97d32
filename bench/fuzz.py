"""Fuzz run: the full corpus of ``tests/fuzz`` through a running daemon.

More than 10,000 inputs (seeded, deterministic; see ``tests/fuzz/corpus.py``) — JSON telemetry,
bare values and Sparkplug B over MQTT, X12, EDIFACT, CSV and DCSA/carrier JSON files into a
``supply.folder``, with oversized, deeply nested (200,000 levels), invalid UTF-8, lone
surrogates, NUL, huge integers, out-of-range times, truncations and random byte mutations of
the real samples — into one daemon (in this process) on PostgreSQL (a fresh database, dropped
afterwards) and a private Mosquitto without queue limits.

Prints: inputs, quarantined, posted, accepted (handled, neither: e.g. a mutation that became a
reading below the limit), crashes (error-level log lines, safety-net quarantines, source
restarts, a dead pipeline), stalls (a source whose marker, sent last, was not posted; messages
published but never received; a file left in the inbox), misses (an invalid input not
quarantined, a valid one not posted), elapsed seconds (daemon start → last marker posted) and
the process's RSS before the first input and after the last marker (it includes the captured
log lines, one or more per input).

    python bench/fuzz.py [--count 10500] [--seed 20261201] [--store postgresql+psycopg://…]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from fuzz.corpus import Limits, generate
from fuzz.harness import run_corpus
from support.mqtt import PrivateBroker

PG = os.environ.get("FLOORSTREAM_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_500)
    parser.add_argument("--seed", type=int, default=20261201)
    parser.add_argument("--store", default=PG,
                        help="a PostgreSQL URL (a fresh database is made beside it) or sqlite")
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="seconds to wait for each source's marker")
    args = parser.parse_args()

    started = time.monotonic()
    inputs = generate(args.seed, args.count, Limits())
    made = time.monotonic() - started
    kinds = len({i.kind for i in inputs})
    expect = {e: sum(1 for i in inputs if i.expect == e) for e in ("invalid", "valid", "either")}
    size = sum(len(i.payload) for i in inputs)
    print(f"corpus: {len(inputs)} inputs of {kinds} kinds, {size / 1e6:.1f} MB, seed "
          f"{args.seed}, made in {made:.1f}s ({expect['invalid']} invalid, {expect['valid']} "
          f"valid, {expect['either']} mutations)", flush=True)
    with tempfile.TemporaryDirectory(prefix="fs-fuzz-") as tmp:
        admin = None
        name = f"fs_fuzz_{uuid.uuid4().hex[:8]}"
        if args.store.startswith("sqlite"):
            store = f"sqlite:///{tmp}/fuzz.db"
        else:
            admin = create_engine(args.store, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            store = urlparse(args.store)._replace(path=f"/{name}").geturl()
        # a private Mosquitto without queue limits: the shared one drops QoS 1 messages beyond
        # max_queued_messages (1000) for a subscriber that falls behind (docs/mqtt.md)
        broker = PrivateBroker(Path(tmp) / "broker", persistence=False, lossless=True)
        broker.start()
        try:
            report = run_corpus(inputs, workdir=Path(tmp) / "run", store_url=store,
                                host="127.0.0.1", port=broker.port,
                                prefix=f"fsfuzz/{uuid.uuid4().hex[:8]}", timeout=args.timeout,
                                progress=lambda line: print("  " + line, flush=True))
        finally:
            broker.stop()
            if admin is not None:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                admin.dispose()
    mib = 1024 * 1024
    print(f"inputs       {report.inputs}")
    print(f"quarantined  {report.quarantined}")
    print(f"posted       {report.posted}")
    print(f"accepted     {report.accepted}")
    print(f"crashes      {len(report.crashes)}")
    print(f"stalls       {len(report.stalls)}")
    print(f"misses       {len(report.misses)}")
    print(f"elapsed      {report.elapsed:.1f} s ({report.inputs / max(report.elapsed, 1e-9):.0f} "
          "inputs/s)")
    print(f"rss          {report.rss_before / mib:.0f} MiB before, "
          f"{report.rss_after / mib:.0f} MiB after "
          f"(+{(report.rss_after - report.rss_before) / mib:.0f} MiB)")
    print("log lines at warning and above: " + ", ".join(
        f"{event} {count}" for event, count in report.log_events.most_common()))
    print("by kind (quarantined/posted/accepted):")
    for kind, counts in sorted(report.by_kind.items()):
        print(f"  {kind:24} {counts['quarantined']:6} {counts['posted']:6} "
              f"{counts['accepted']:6}")
    for line in (report.crashes + report.stalls + report.misses)[:50]:
        print("  !", line[:300])
    return 0 if not (report.crashes or report.stalls or report.misses) else 1


if __name__ == "__main__":
    sys.exit(main())
