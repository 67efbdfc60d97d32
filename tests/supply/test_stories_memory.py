"""The source's memory behind the stories: keyed rows, lazily read, all or nothing per file.

Each story and each of its names is a row of the source's state, written only by the file that
changed it and read back by key; the checkpoint text keeps only the waiting ASNs and the
transport's state, so a file commits a few hundred bytes however many stories the source
tells. Without a store the memory is bounded (an LRU of ``remember`` stories); with one, the
cache is, and a story beyond it is read back when a document names it. Stories expire; a
restart remembers exactly what was committed (also from the older checkpoint formats that
carried every story); and when the ERP fails on a file's second document, the memory goes back
to what the file found, so the retry decides as the first attempt would have.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from floorstream.adapters.supply.formats.detect import parse_any
from floorstream.adapters.supply.memory import Memory, StateUnavailable
from floorstream.store.store import Store
from support import DaemonRunner, wait_for
from support.erp import create_purchasing

from .make_214 import x12_214
from .stories import ASN_856, DESADV, STATUS_214, Clock, Rows, interpreter, told
from .stories import x12 as interchange


def _asn(n: int) -> bytes:
    return interchange(ASN_856, 100 + n, BSN=f"BSN*00*A{n:05d}*20111206*142428*0002").replace(
        b"REF*BM*999999-001", f"REF*BM*BOL{n}".encode()).replace(
        b"REF*CN*5787970539", f"REF*CN*PRO{n}".encode())


def test_the_memory_is_bounded() -> None:
    """Without a store (a test double, the library) the cache is the memory."""
    memory = Memory(limit=10)
    interp = interpreter(memory=memory)
    for n in range(60):
        assert len(told(interp, _asn(n))) == 1
        memory.dump()
    assert memory.size("stories") == 10
    assert memory.size("aliases") <= 60
    assert len(memory.checkpoint()) < 100  # nothing waits: the text holds no story
    # the oldest stories are the ones forgotten: a copy of the first ASN is news again, a copy
    # of the last one is not
    assert told(interp, interchange(_asn(0), 500)) != []
    assert told(interp, interchange(_asn(59), 501)) == []


def test_with_a_store_the_cache_is_bounded_not_the_memory() -> None:
    rows = Rows()
    memory = Memory(limit=10, loader=rows.load)
    interp = interpreter(memory=memory)
    reads: list[int] = []
    memory.loader = lambda keys: (reads.append(len(keys)), rows.load(keys))[1]
    for n in range(60):
        docs = parse_any(_asn(n)).documents
        interp.prefetch(docs)
        assert len([e for d in docs for e in interp.events(d)]) == 1
        rows.commit(memory)
    assert memory.size("stories") == 10  # the cache
    assert len(reads) == 60 and max(reads) <= 6  # one query per file, its names only
    # the first story left the cache long ago, its rows did not: a copy is no news
    assert told(interp, interchange(_asn(0), 500)) == []
    changed = interchange(_asn(0), 501).replace(b"SN1*1*24*EA", b"SN1*1*20*EA")
    assert [p.relation for p in told(interp, changed)] == ["update"]


class _CountingCache(OrderedDict[str, Any]):
    """The memory's story cache, counting the entries turned over to its end."""

    turned = 0

    def move_to_end(self, key: str, last: bool = True) -> None:
        self.turned += 1
        super().move_to_end(key, last)


def test_more_files_in_flight_than_the_cache_holds() -> None:
    """The pipeline behind the source: 40 files dumped, none committed, a cache of 10. No
    written story leaves the cache before its commit (a re-read would find the older row),
    and a file's dump does not turn the uncommitted stories over again and again: that cost
    every ASN of ``bench/supply.py`` ~1,400 us of CPU with 1,100 files in flight (~175 us
    with 10), the slow one of its two speeds."""
    rows = Rows()
    memory = Memory(limit=10, loader=rows.load)
    cache = _CountingCache()
    memory._stories = cache
    interp = interpreter(memory=memory)
    in_flight = []
    for n in range(40):
        told(interp, _asn(n))
        turned = cache.turned
        in_flight.append(memory.dump())
        assert cache.turned - turned <= 1  # its own story, written: none of the others
    assert memory.size("stories") == 40  # every one pinned until its commit
    for dump in in_flight[:35]:  # the pipeline caught up with all but five
        rows.update(dump.state)
        memory.committed(dump)
    told(interp, _asn(40))
    memory.dump()
    assert memory.size("stories") == 10  # the committed ones went, oldest first
    assert {key for key, _story in memory.stories()} >= {
        f"supply/ASN A{n:05d} from ZZ:ABCDEFGHIJKLMNO" for n in range(35, 41)}
    for dump in in_flight[35:]:
        rows.update(dump.state)
        memory.committed(dump)
    # what left the cache is read back from its committed rows: a copy is no news
    assert told(interp, interchange(_asn(3), 600)) == []
    assert told(interp, interchange(_asn(37), 601)) == []


def test_a_file_writes_the_rows_it_changed_and_nothing_else() -> None:
    rows = Rows()
    memory = Memory(loader=rows.load)
    interp = interpreter(memory=memory)
    for n in range(50):
        told(interp, _asn(n))
        dump = memory.dump()
        rows.update(dump.state)
        memory.committed(dump)
        assert dump.checkpoint is None  # nothing waits, no transport state: no new text
        # the story, its references and the PO (whose latest ASN it now is)
        assert set(dump.state) == {f"s:supply/ASN A{n:05d} from ZZ:ABCDEFGHIJKLMNO",
                                   f"a:ref:BOL{n}", f"a:ref:PRO{n}", f"a:ref:A{n:05d}",
                                   "a:po:99999817"}
        assert sum(len(orjson.dumps(row)) for row in dump.state.values()) < 1_500
    # the same ASN in another interchange: no post; its story row notes the new copy (so a
    # replay of that interchange is known), its names are written already
    assert told(interp, interchange(_asn(7), 900)) == []
    assert set(memory.dump().state) == {"s:supply/ASN A00007 from ZZ:ABCDEFGHIJKLMNO"}


def test_a_store_that_cannot_be_read_is_not_the_files_fault() -> None:
    def broken(keys: object) -> dict[str, dict[str, object]]:
        raise OperationalError("SELECT", {}, Exception("database is locked"))

    interp = interpreter(memory=Memory(loader=broken))
    with pytest.raises(StateUnavailable):
        told(interp, ASN_856)


def test_stories_expire() -> None:
    clock = Clock()
    memory = Memory(max_age=7 * 86_400.0, clock=clock)
    interp = interpreter(memory=memory)
    told(interp, STATUS_214)
    clock.now += 6 * 86_400
    assert told(interp, interchange(STATUS_214, 2)) == []  # touched: kept another 7 days
    clock.now += 6 * 86_400
    assert told(interp, interchange(STATUS_214, 3)) == []
    clock.now += 8 * 86_400
    assert [p.relation for p in told(interp, interchange(STATUS_214, 4))] == ["new"]
    assert memory.size("stories") == 1


def test_dump_and_load_keep_everything() -> None:
    rows = Rows()
    memory = Memory(loader=rows.load)
    interp = interpreter(memory=memory)
    told(interp, STATUS_214)
    told(interp, ASN_856)
    rows.commit(memory)
    restored = rows.restart()
    assert restored.size("stories") == 0  # nothing read until a document names it
    for thread, story in memory.stories():
        assert restored.story(thread) == story
    assert restored.thread_of("ref:999999-001") == memory.thread_of("ref:999999-001")
    assert told(interpreter(memory=restored), interchange(STATUS_214, 77)) == []


def test_the_older_checkpoint_formats_are_read() -> None:
    old = json.dumps({"eta": {"PRO1": [["x12:a:1:1:1:0", "2026-12-03T12:00:00+00:00"]]},
                      "events": {"e-1": ["shipment B77", "ab" * 16]},
                      "extra": {"cursor": "c-9"}})
    memory = Memory.load(old)
    # the post of a carrier event is remembered with its story, here the post's subject
    assert memory.carrier_event("e-1") == ["shipment B77", "ab" * 16, "shipment B77", ""]
    assert memory.extra == {"cursor": "c-9"}
    assert Memory.load("not json").checkpoint() == Memory().checkpoint()
    # version 3 carried every story in the checkpoint: they become rows with the next commit
    story = {"a": ["ref:PRO7"], "v": {"e-2": ["shipment PRO7", "cd" * 16, "k"]},
             "m": ["x"], "t": 1_800_000_000}
    v3 = json.dumps({"v": 3, "base": {"stories": {"supply/shipment PRO7": story},
                                      "pending": {"w": {"po": "1"}}},
                     "log": [[0, "supply/shipment PRO8", {"t": 1_800_000_000}]],
                     "extra": {"etag": "x"}})
    rows = Rows()
    migrated = Memory.load(v3, clock=Clock())
    rows.commit(migrated)
    assert set(rows) == {"s:supply/shipment PRO7", "s:supply/shipment PRO8", "a:ref:PRO7",
                         "a:ev:e-2"}
    assert json.loads(rows.checkpoint or "") == {"v": 4, "pending": {"w": {"po": "1"}},
                                                 "extra": {"etag": "x"}}
    again = rows.restart(clock=Clock())
    assert again.carrier_event("e-2") == ["shipment PRO7", "cd" * 16, "supply/shipment PRO7",
                                          "k"]
    assert again.thread_of("ref:PRO7") == "supply/shipment PRO7"
    assert again.pending_items() == [("w", {"po": "1"})]


def test_a_file_that_fails_half_way_leaves_the_memory_as_it_found_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/erp.db"
    create_purchasing(url)
    rows = Rows()
    memory = Memory(loader=rows.load)
    interp = interpreter(url, memory=memory)
    told(interp, STATUS_214)
    rows.commit(memory)
    before = Rows(rows)
    before.checkpoint = rows.checkpoint
    first, second = parse_any(DESADV).documents  # two ASNs in one interchange
    assert interp.events(first)
    engine = create_engine(url)
    with engine.begin() as conn:  # the ERP goes away before the file's second document
        conn.execute(text("ALTER TABLE purchase_order RENAME TO purchase_order_gone"))
    with pytest.raises(OperationalError):
        interp.events(second)
    dump = memory.dump()
    assert (dump.checkpoint, dump.state) == (None, {})  # nothing of the file is left
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE purchase_order_gone RENAME TO purchase_order"))
    engine.dispose()
    retry = [e.id for doc in (first, second) for e in interp.events(doc)]
    fresh = interpreter(url, memory=before.restart())
    assert retry == [e.id for doc in (first, second) for e in fresh.events(doc)]
    assert len(retry) == 3


def test_a_long_story_keeps_its_newest_names_only() -> None:
    """A booking with hundreds of carrier events and containers: its story keeps the newest
    16 carrier event ids and aliases, and the index forgets the older ones with them."""
    import json as _json

    rows = Rows()
    memory = Memory(loader=rows.load)
    interp = interpreter(memory=memory)
    for n in range(200):
        event = {"metadata": {"eventID": f"e-{n}", "eventType": "EQUIPMENT"},
                 "payload": {"eventClassifierCode": "ACT", "equipmentEventTypeCode": "LOAD",
                             "eventDateTime": f"2026-11-{1 + n % 28:02d}T{n % 24:02d}:00:00Z",
                             "equipmentReference": f"CONT{n}",
                             "relatedDocumentReferences": [{"type": "BKG", "value": "B1"}]}}
        told(interp, _json.dumps(event).encode())
        rows.commit(memory)
    assert memory.size("stories") == 1
    assert memory.size("aliases") <= 16 + 24
    assert memory.carrier_event("e-199") is not None
    assert memory.carrier_event("e-0") is None
    restored = rows.restart()  # the rows of the old names are still there, unheeded
    assert restored.carrier_event("e-199") is not None
    assert restored.carrier_event("e-0") is None
    assert restored.thread_of("ref:CONT0") is None
    assert restored.thread_of("ref:CONT199") is not None


def test_stories_beyond_the_cache_are_read_back_from_the_store(tmp_path: Path,
                                                                store_url: str) -> None:
    """Through a daemon on each store: 30 ASN stories with a cache of 10, a restart, then a
    copy of the first ASN (no post) and a changed first ASN (an update of its thread). The
    checkpoint stays a few bytes; every story is its own row."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    config = f"""
store: {store_url}
default_team: everyone
flood: null
sources:
  - name: supply
    adapter: supply.folder
    path: {inbox}
    settle: 0
    poll: 0.05
    remember: 10
"""

    def drop(name: str, raw: bytes) -> None:
        (tmp_path / "upload.tmp").write_bytes(raw)
        (tmp_path / "upload.tmp").replace(inbox / name)

    runner = DaemonRunner(config)
    with runner.start():
        for n in range(30):
            drop(f"asn{n:02d}.edi", _asn(n))
        runner.wait_posts(30)
    checkpoint = runner.checkpoint("supply")
    assert checkpoint is None or len(checkpoint) < 100  # no story rides in it
    store = Store.open(store_url)
    try:
        rows = store.adapter_states("supply", [
            f"s:supply/ASN A{n:05d} from ZZ:ABCDEFGHIJKLMNO" for n in range(30)])
    finally:
        store.close()
    assert len(rows) == 30
    with runner.start():  # a new process memory: nothing cached
        drop("copy.edi", interchange(_asn(0), 700))
        drop("changed.edi", interchange(_asn(1), 701).replace(b"SN1*1*24*EA", b"SN1*1*20*EA"))
        posts = runner.wait_posts(31)
        drop("sentinel.edi", _asn(30))
        posts = runner.wait_posts(32)
        wait_for(lambda: not any(p.is_file() for p in inbox.iterdir()))
    later = posts[30:]
    assert [(p.thread, p.relation) for p in later] == [
        ("supply/ASN A00001 from ZZ:ABCDEFGHIJKLMNO", "update"),
        ("supply/ASN A00030 from ZZ:ABCDEFGHIJKLMNO", "new")]
    assert later[0].refers_to == posts[1].id


def test_a_carrier_feed_joins_the_story_an_asn_inbox_tells(tmp_path: Path) -> None:
    """Two sources (an ASN inbox, a carrier feed with ``join: [asns]``): the carrier's report
    of the ASN's PRO continues the ASN's thread, as an update of the ASN's post; without
    ``join`` it would start its own thread."""
    asns, carrier = tmp_path / "asns", tmp_path / "carrier"
    asns.mkdir()
    carrier.mkdir()
    config = f"""
store: sqlite:///{tmp_path}/fs.db
default_team: everyone
sources:
  - {{name: asns, adapter: supply.folder, path: {asns}, settle: 0, poll: 0.05}}
  - {{name: carrier, adapter: supply.folder, path: {carrier}, settle: 0, poll: 0.05,
      join: [asns], carriers: {{ABFS: ABF}}}}
  - {{name: other, adapter: supply.folder, path: {tmp_path / "other"}, settle: 0, poll: 0.05}}
"""
    runner = DaemonRunner(config)
    with runner.start():
        (asns / "asn.edi").write_bytes(_asn(5))  # REF*CN*PRO5
        (asn,) = runner.wait_posts(1)
        (carrier / "214.edi").write_bytes(x12_214(1, [("AF", "NS", "20261121", "0800")],
                                                  pro="PRO5"))
        runner.wait_posts(2)
        # the same report through a source that joins nothing: its own thread (the sentinel)
        (tmp_path / "other" / "214.edi").write_bytes(
            x12_214(1, [("AF", "NS", "20261121", "0800")], pro="PRO5"))
        posts = runner.wait_posts(3)
    by_source = {p.source: p for p in posts}
    assert (by_source["carrier"].thread, by_source["carrier"].relation,
            by_source["carrier"].refers_to) == (asn.thread, "update", asn.id)
    assert (by_source["other"].thread, by_source["other"].relation) == (
        "other/shipment PRO5", "new")


def _dcsa_page(*events: tuple[str, str, str]) -> bytes:
    """DCSA events (event id, booking, event code): one page."""
    return json.dumps({"events": [
        {"metadata": {"eventID": ident, "eventType": "TRANSPORT",
                      "publisher": {"partyName": "Maersk"}},
         "payload": {"eventClassifierCode": "ACT", "transportEventTypeCode": code,
                     "eventDateTime": "2026-11-20T10:00:00Z",
                     "relatedDocumentReferences": [{"type": "BKG", "value": booking}]}}
        for ident, booking, code in events]}).encode()


def _retraction(ident: str, retracted: str) -> bytes:
    return json.dumps([{"metadata": {"eventID": ident, "eventType": "TRANSPORT",
                                     "publisher": {"partyName": "Maersk"},
                                     "retractedEventID": retracted}}]).encode()


def test_carrier_event_ids_are_written_not_cached_and_found_before_their_commit() -> None:
    """A DCSA page names ~1,000 carrier events; only a retraction ever looks one up. Their
    rows are written with the page, but kept out of the names cache, so a page does not
    evict 1,000 names that documents do use. A retraction still finds the event in each
    state its row can be in: written by the same file, dumped but not committed yet (the
    store would say "no such event"), committed (read back from the store)."""
    rows = Rows()
    memory = Memory(loader=rows.load)
    interp = interpreter(memory=memory)
    (first,) = told(interp, _dcsa_page(("e-1", "B1", "DEPA")))
    assert memory.size("aliases") == 0  # not cached: e-1 is only a row to write
    # the same file: not dumped yet
    (undo,) = told(interp, _retraction("r-1", "e-1"))
    assert (undo.relation, undo.refers_to, undo.thread) == ("retraction", first.id,
                                                             first.thread)
    dump = memory.dump()
    assert {"a:ev:e-1", "s:supply/shipment B1"} <= set(dump.state)
    rows.update(dump.state)
    memory.committed(dump)

    # dumped, not committed: the pipeline has not written the page yet
    (second,) = told(interp, _dcsa_page(("e-2", "B2", "DEPA")))
    pending = memory.dump()
    assert "a:ev:e-2" not in rows
    (undo,) = told(interp, _retraction("r-2", "e-2"))
    assert (undo.refers_to, undo.thread) == (second.id, second.thread)
    rows.update(pending.state)
    memory.committed(pending)
    rows.commit(memory)

    # committed: a restarted source reads the row back; a page of other events (in another
    # file) and a retraction of an event nobody sent behave as before
    again = rows.restart()
    interp = interpreter(memory=again)
    told(interp, _dcsa_page(*((f"x-{n}", f"X{n}", "ARRI") for n in range(50))))
    (undo,) = told(interp, _retraction("r-3", "x-7"))
    assert undo.thread == "supply/shipment X7"
    (unknown,) = told(interp, _retraction("r-4", "nobody"))
    assert (unknown.refers_to, unknown.thread) == (None, "carrier event nobody")
    # a retraction already told posts nothing again, before and after a restart
    assert told(interp, _retraction("r-2", "e-2")) == []
    rows.commit(again)
    assert told(interpreter(memory=rows.restart()), _retraction("r-1", "e-1")) == []


def test_a_failed_file_writes_none_of_its_carrier_event_ids() -> None:
    rows = Rows()
    memory = Memory(loader=rows.load)
    interp = interpreter(memory=memory)
    told(interp, _dcsa_page(("e-1", "B1", "DEPA")))
    memory.rollback()  # the file failed after its interpretation
    assert memory.dump().state == {}
    (unknown,) = told(interp, _retraction("r-1", "e-1"))
    assert (unknown.refers_to, unknown.thread) == (None, "carrier event e-1")
