"""Supply-chain benchmark: ASN files and carrier JSON events through a real daemon.

1. ``asn files``: 10,000 X12 856 files (2 items each, POs known to an ERP on SQLite, so every
   file costs a correlation lookup, mostly served by the lookup cache) dropped into a
   ``supply.folder`` inbox; measured from daemon start until the inbox is empty (parse,
   correlate, render, commit, move to done/): files/s and posts/s.
2. ``carrier events``: 100,000 DCSA events in 100 JSON files of 1,000 through the same path:
   events/s.
3. ``parse only``: the 856 parser + interpreter without daemon or database: files/s.
4. ``story lookups``: ``Store.thread`` and ``Store.replies`` on the store the phases ran on.

Both daemon phases run against a store that already holds ``--preload`` posts (1,000,000 by
default, written once into a template SQLite file that each phase copies), spread over
100,000 threads with updates referring to earlier posts: the story columns are indexed, so
inserting and looking up stories must not slow down with the table's size. Every file of
both phases is a story the interpreter keeps in the source's memory (thread, ETA, milestones),
checkpointed with its posts.

Flood control is off (``flood: null``): 10,000 ASNs over 200 POs would otherwise fold most of
them into digests, and the point here is the cost of a post. Peak RSS is the process's
high-water mark (ru_maxrss) after all phases.

    python bench/supply.py [--asn 10000] [--events 100000] [--preload 1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import create_engine, text

from floorstream.adapters.supply.code_tables import CodeTables
from floorstream.adapters.supply.events import Interpreter
from floorstream.adapters.supply.formats.detect import parse_any
from floorstream.adapters.supply.memory import Memory
from floorstream.config import parse_config
from floorstream.daemon import Daemon
from floorstream.plugins import build_plugins
from floorstream.store.store import Store

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


def preload(path: Path, posts: int) -> float:
    """A store holding ``posts`` posts in 100,000 threads (every tenth post an update of the
    one before it in its thread); returns the seconds it took."""
    started = time.perf_counter()
    Store.open(f"sqlite:///{path}").close()  # the schema, at the current version
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    created = "2026-11-01 00:00:00.000000"
    empty = "{}"

    def rows(start: int, stop: int) -> Iterator[tuple[object, ...]]:
        for n in range(start, stop):
            thread = f"old/shipment {n % 100_000}"
            update = n >= 100_000 and n % 10 == 0
            yield (f"{n:032x}", "shipment.status_changed", "old", f"shipment {n % 100_000}", 10,
                   f"old post {n}", "[]", empty, empty, "[]", created, created, thread,
                   "update" if update else "new", f"{n - 100_000:032x}" if update else None)

    for start in range(0, posts, 100_000):
        conn.executemany(
            "INSERT INTO fs_posts (id, type, source, subject, severity, summary, tags, links,"
            " fields, routing, occurred_at, created_at, thread, relation, refers_to) VALUES"
            " (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows(start, min(posts, start + 100_000)))
        conn.commit()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return time.perf_counter() - started


def lookups(url: str, posts: int, rounds: int = 1_000) -> tuple[float, float, list[str]]:
    """Mean ms of ``Store.thread`` and ``Store.replies`` on random old stories, and SQLite's
    plan for both (they must use the indexes, not scan 1,000,000 rows)."""
    store = Store.open(url)
    picks = [random.randrange(min(posts, 100_000)) for _ in range(rounds)]
    try:
        started = time.perf_counter()
        for n in picks:
            store.thread(f"old/shipment {n}")
        thread_ms = (time.perf_counter() - started) * 1000 / rounds
        started = time.perf_counter()
        for n in picks:
            store.replies(f"{n:032x}")
        replies_ms = (time.perf_counter() - started) * 1000 / rounds
    finally:
        store.close()
    conn = sqlite3.connect(url.removeprefix("sqlite:///"))
    plans = [" ".join(row[-1] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}"))
             for sql in ("SELECT seq FROM fs_posts WHERE thread = 'x' ORDER BY seq DESC LIMIT 200",
                         "SELECT seq FROM fs_posts WHERE refers_to = 'x' ORDER BY seq")]
    conn.close()
    return thread_ms, replies_ms, plans


def run(tmp: Path, inbox: Path, files: int, posts_expected: int,
        template: Path | None = None, remember: int | None = None) -> tuple[float, float, int]:
    """Seconds of wall time and of CPU time (the whole process, every thread: on a machine
    shared with other work the CPU seconds are the steadier measure) until ``files`` files
    are in done/, and the posts committed.

    done/ is listed only once ``posts_expected`` posts are committed: listing a folder that
    fills up to 10,000 names every 50 ms cost this (measuring) thread ~50 us of CPU per file,
    ~10 % of what it measured, and held the GIL the daemon's threads wait for."""
    if template is not None:
        shutil.copyfile(template, tmp / "fs.db")
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
{f"    remember: {remember}" if remember else ""}
    erp: {{url: "sqlite:///{tmp}/erp.db", supplier_names: {{V1: Acme}}}}
"""
    plugins = build_plugins(load_entry_points=False)  # the builtins are what is measured
    daemon = Daemon(parse_config(config, plugins), plugins)
    started, cpu = time.perf_counter(), time.process_time()
    daemon.start()
    done = inbox / "done"
    pipeline = daemon.pipeline
    waits = 0
    while True:
        time.sleep(0.01)
        waits += 1
        # an attribute read; listed once the posts are in (or once a second, should fewer
        # posts than expected come): then only the acks' moves are left to wait for
        if pipeline.committed_posts < posts_expected and waits % 100:
            continue
        if done.exists() and len(os.listdir(done)) >= files:
            break
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    posts = daemon.pipeline.committed_posts
    daemon.stop()
    return elapsed, cpu, posts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--asn", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--preload", type=int, default=1_000_000,
                        help="posts in the store before the daemon starts")
    parser.add_argument("--remember", type=int, default=None,
                        help="the source's remember: (stories kept; default: its default)")
    parser.add_argument("--label", default="", help="a name for this run in the JSON line")
    args = parser.parse_args()
    from floorstream.logs import configure_logging
    configure_logging("warning", "console", frozenset())
    result: dict[str, object] = {"label": args.label, "asn_files": args.asn,
                                 "dcsa_events": args.events, "preload": args.preload,
                                 "load_before": round(os.getloadavg()[0], 2)}

    with tempfile.TemporaryDirectory() as directory:
        template: Path | None = None
        if args.preload:
            template = Path(directory) / "template.db"
            took = preload(template, args.preload)
            print(f"store preloaded {args.preload:>9,} posts in {took:6.2f} s (100,000 threads)")

        with tempfile.TemporaryDirectory() as work:
            tmp = Path(work)
            erp(f"sqlite:///{tmp}/erp.db")
            inbox = tmp / "inbox"
            inbox.mkdir()
            for n in range(args.asn):
                (inbox / f"asn_{n:06d}.edi").write_bytes(asn(n + 1))
            elapsed, cpu, posts = run(tmp, inbox, args.asn, args.asn, template,
                                     args.remember)
            print(f"asn files       {args.asn:>9,} files in {elapsed:6.2f} s = "
                  f"{args.asn / elapsed:9,.0f} files/s ({args.asn / cpu:,.0f} per CPU second), "
                  f"{posts:,} posts")
            result.update(asn_files_per_s=round(args.asn / elapsed),
                          asn_files_per_cpu_s=round(args.asn / cpu), asn_posts=posts)

        with tempfile.TemporaryDirectory() as work:
            tmp = Path(work)
            erp(f"sqlite:///{tmp}/erp.db")
            inbox = tmp / "inbox"
            inbox.mkdir()
            per_file = 1_000
            files = max(1, args.events // per_file)
            for f in range(files):
                (inbox / f"dcsa_{f:04d}.json").write_bytes(dcsa_file(f * per_file, per_file))
            elapsed, cpu, posts = run(tmp, inbox, files, files * per_file, template,
                                     args.remember)
            events = files * per_file
            print(f"carrier events  {events:>9,} events in {elapsed:6.2f} s = "
                  f"{events / elapsed:9,.0f} events/s ({events / cpu:,.0f} per CPU second), "
                  f"{posts:,} posts")
            result.update(dcsa_events_per_s=round(events / elapsed),
                          dcsa_events_per_cpu_s=round(events / cpu), dcsa_posts=posts)
            if args.preload:
                thread_ms, replies_ms, plans = lookups(f"sqlite:///{tmp}/fs.db", args.preload)
                print(f"story lookups   Store.thread {thread_ms:.3f} ms, Store.replies "
                      f"{replies_ms:.3f} ms on {args.preload + posts:,} posts")
                for plan in plans:
                    print(f"                {plan}")
                result.update(thread_ms=round(thread_ms, 3), replies_ms=round(replies_ms, 3),
                              plans=plans)

    raws = [asn(n) for n in range(1, 2_001)]
    memory = Memory()
    interpreter = Interpreter("bench", memory=memory, codes=CodeTables())
    prefetch = getattr(interpreter, "prefetch", None)  # absent before the keyed memory
    written = 0
    started = time.process_time()
    for raw in raws:
        docs = parse_any(raw).documents
        if prefetch is not None:
            prefetch(docs)
        for doc in docs:
            interpreter.events(doc)
        dump: Any = memory.dump()  # what each file commits: its checkpoint and its state rows
        written += len(dump) if isinstance(dump, str) else len(dump.checkpoint or "") + sum(
            len(orjson.dumps(row)) for row in dump.state.values())
    elapsed = time.process_time() - started
    print(f"parse only      {len(raws):>9,} files in {elapsed:6.2f} CPU s = "
          f"{len(raws) / elapsed:9,.0f} files/s (856 parse + interpret + checkpoint, no ERP, "
          f"no DB; {written / len(raws):,.0f} bytes committed per file)")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"peak RSS        {rss / 1024:9,.0f} MiB")
    result.update(parse_only_files_per_cpu_s=round(len(raws) / elapsed),
                  bytes_committed_per_file=round(written / len(raws)),
                  peak_rss_mib=round(rss / 1024), load_after=round(os.getloadavg()[0], 2))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
