"""Supply-chain benchmark: ASN files and carrier JSON events through a real daemon.

1. ``asn files``: 10,000 X12 856 files (2 items each, POs known to an ERP on SQLite, so every
   file costs a correlation lookup, mostly served by the lookup cache) dropped into a
   ``supply.folder`` inbox; measured from daemon start until the inbox is empty (parse,
   correlate, render, commit, move to done/): files/s and posts/s.
2. ``carrier events``: 100,000 DCSA events in 100 JSON files of 1,000 through the same path:
   events/s.
3. ``parse only``: the 856 parser + interpreter without daemon or database: files/s.

Flood control is off (``flood: null``): 10,000 ASNs over 200 POs would otherwise fold most of
them into digests, and the point here is the cost of a post. Peak RSS is the process's
high-water mark (ru_maxrss) after all phases.

    python bench/supply.py [--asn 10000] [--events 100000]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from sqlalchemy import create_engine, text

from floorstream.adapters.supply.code_tables import CodeTables
from floorstream.adapters.supply.events import Interpreter
from floorstream.adapters.supply.formats.detect import parse_any
from floorstream.adapters.supply.memory import Memory
from floorstream.config import parse_config
from floorstream.daemon import Daemon
from floorstream.plugins import build_plugins

POS = 200


def asn(n: int) -> bytes:
    po = f"45{n % POS:05d}"
    segs = ["ST*856*0001", f"BSN*00*ASN{n:06d}*20261120*0800*0001", "HL*1**S",
            "TD5**2*ABFS**ABF FREIGHT", f"REF*BM*BOL{n}", "DTM*011*20261120",
            "DTM*017*20261202", "N1*SU*ACME GMBH", "HL*2*1*O", f"PRF*{po}",
            "HL*3*2*I", "LIN*10*VP*A-10", "SN1*10*120*EA", "HL*4*2*I", "LIN*20*VP*A-20",
            "SN1*20*40*EA", "CTT*4*160"]
    segs.append(f"SE*{len(segs) + 1}*0001")
    isa = (f"ISA*00*          *00*          *ZZ*ACME           *ZZ*BUYER          *261120*0800"
           f"*U*00401*{n:09d}*0*P*>")
    return "~\n".join([isa, f"GS*SH*ACME*BUYER*20261120*0800*{n}*X*004010", *segs,
                       f"GE*1*{n}", f"IEA*1*{n:09d}", ""]).encode()


def dcsa_file(start: int, count: int) -> bytes:
    events = []
    for n in range(start, start + count):
        code, classifier = [("DEPA", "ACT"), ("ARRI", "EST"), ("DISC", "ACT"),
                            ("GTOT", "ACT")][n % 4]
        events.append({"metadata": {"eventID": f"ev-{n}", "eventType": "TRANSPORT",
                                    "publisher": {"partyName": "Maersk"}},
                       "payload": {"eventClassifierCode": classifier,
                                   "transportEventTypeCode": code,
                                   "eventDateTime": f"2026-12-{1 + n % 20:02d}T08:00:00Z",
                                   "relatedDocumentReferences": [
                                       {"type": "BKG", "value": f"BKG{n // 4}"}]}})
    return json.dumps({"events": events}).encode()


def erp(url: str) -> None:
    engine = create_engine(url)
    now = datetime(2026, 11, 1)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE purchase_order (id INTEGER PRIMARY KEY, name TEXT, "
                          "vendor_code TEXT, date_planned TIMESTAMP)"))
        conn.execute(text("CREATE TABLE purchase_order_line (id INTEGER PRIMARY KEY, "
                          "order_id INTEGER, line_no INTEGER, product_qty NUMERIC, "
                          "qty_received NUMERIC, uom TEXT, date_planned TIMESTAMP, "
                          "vendor_product_code TEXT, deletion_flag TEXT)"))
        for i in range(POS):
            conn.execute(text("INSERT INTO purchase_order VALUES (:i, :n, 'V1', :d)"),
                         {"i": i, "n": f"45{i:05d}", "d": now})
            for line in (10, 20):
                conn.execute(text("INSERT INTO purchase_order_line VALUES (:id, :o, :l, 200,"
                                  " 0, 'EA', :d, :vp, '')"),
                             {"id": i * 10 + line // 10, "o": i, "l": line,
                              "d": datetime(2026, 11, 29), "vp": f"A-{line}"})
    engine.dispose()


def run(tmp: Path, inbox: Path, files: int) -> tuple[float, int]:
    config = f"""
store: sqlite:///{tmp}/fs.db
default_team: purchasing
flood: null
logging: {{level: warning}}
sources:
  - name: supply
    adapter: supply.folder
    path: {inbox}
    settle: 0
    poll: 0.05
    max_in_flight: 2000
    erp: {{url: "sqlite:///{tmp}/erp.db", supplier_names: {{V1: Acme}}}}
"""
    plugins = build_plugins()
    daemon = Daemon(parse_config(config, plugins), plugins)
    started = time.perf_counter()
    daemon.start()
    done = inbox / "done"
    while not done.exists() or sum(1 for _ in done.iterdir()) < files:
        time.sleep(0.05)
    elapsed = time.perf_counter() - started
    posts = daemon.pipeline.committed_posts
    daemon.stop()
    return elapsed, posts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--asn", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=100_000)
    args = parser.parse_args()
    from floorstream.logs import configure_logging
    configure_logging("warning", "console", frozenset())

    with tempfile.TemporaryDirectory() as directory:
        tmp = Path(directory)
        erp(f"sqlite:///{tmp}/erp.db")
        inbox = tmp / "inbox"
        inbox.mkdir()
        for n in range(args.asn):
            (inbox / f"asn_{n:06d}.edi").write_bytes(asn(n + 1))
        elapsed, posts = run(tmp, inbox, args.asn)
        print(f"asn files       {args.asn:>9,} files in {elapsed:6.2f} s = "
              f"{args.asn / elapsed:9,.0f} files/s, {posts:,} posts ({posts / elapsed:,.0f}/s)")

    with tempfile.TemporaryDirectory() as directory:
        tmp = Path(directory)
        erp(f"sqlite:///{tmp}/erp.db")
        inbox = tmp / "inbox"
        inbox.mkdir()
        per_file = 1_000
        files = max(1, args.events // per_file)
        for f in range(files):
            (inbox / f"dcsa_{f:04d}.json").write_bytes(dcsa_file(f * per_file, per_file))
        elapsed, posts = run(tmp, inbox, files)
        events = files * per_file
        print(f"carrier events  {events:>9,} events in {elapsed:6.2f} s = "
              f"{events / elapsed:9,.0f} events/s, {posts:,} posts ({posts / elapsed:,.0f}/s)")

    raws = [asn(n) for n in range(1, 2_001)]
    interpreter = Interpreter("bench", memory=Memory(), codes=CodeTables())
    started = time.perf_counter()
    for raw in raws:
        for doc in parse_any(raw).documents:
            interpreter.changes(doc)
    elapsed = time.perf_counter() - started
    print(f"parse only      {len(raws):>9,} files in {elapsed:6.2f} s = "
          f"{len(raws) / elapsed:9,.0f} files/s (856 parse + interpret, no ERP, no DB)")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"peak RSS        {rss / 1024:9,.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
