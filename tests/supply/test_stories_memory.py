"""The source's memory behind the stories: bounded, expiring, all or nothing per file.

It travels in the checkpoint, so it must stay small however long the source runs (a cap per
table and an expiry per story), survive a restart (dump/load, also of the older checkpoint
format), and never keep half a file: when the ERP fails on a file's second document, the
memory goes back to what the file found, so the retry decides as the first attempt would have.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from floorstream.adapters.supply.formats.detect import parse_any
from floorstream.adapters.supply.memory import Memory
from support.erp import create_purchasing

from .stories import ASN_856, DESADV, STATUS_214, Clock, interpreter, told
from .stories import x12 as interchange


def _asn(n: int) -> bytes:
    return interchange(ASN_856, 100 + n, BSN=f"BSN*00*A{n:05d}*20111206*142428*0002").replace(
        b"REF*BM*999999-001", f"REF*BM*BOL{n}".encode()).replace(
        b"REF*CN*5787970539", f"REF*CN*PRO{n}".encode())


def test_the_memory_is_bounded() -> None:
    memory = Memory(limit=10)
    interp = interpreter(memory=memory)
    for n in range(60):
        assert len(told(interp, _asn(n))) == 1
    assert memory.size("stories") == 10
    assert memory.size("aliases") <= 60
    compacted = Memory.load(memory.dump(), 10).dump()  # the change log folded in
    assert len(compacted) < 6_000  # ten stories of about 500 bytes
    # the oldest stories are the ones forgotten: a copy of the first ASN is news again, a copy
    # of the last one is not
    assert told(interp, interchange(_asn(0), 500)) != []
    assert told(interp, interchange(_asn(59), 501)) == []


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
    assert [p.relation for p in told(interp, interchange(STATUS_214, 4))] == ["new", "update"]
    assert memory.size("stories") == 1


def test_dump_and_load_keep_everything() -> None:
    memory = Memory()
    interp = interpreter(memory=memory)
    told(interp, STATUS_214)
    told(interp, ASN_856)
    checkpoint = memory.dump()  # a base and the log of changes since
    assert '"log":[[' in checkpoint
    restored = Memory.load(checkpoint)  # compacted: everything in the base
    assert '"log":[]' in restored.dump()
    for again in (restored, Memory.load(restored.dump())):
        assert dict(again.stories()) == dict(memory.stories())
        assert again.thread_of("ref:999999-001") == memory.thread_of("ref:999999-001")
        assert again.size("aliases") == memory.size("aliases")


def test_the_change_log_is_folded_into_the_base() -> None:
    memory = Memory()
    interp = interpreter(memory=memory)
    sizes = []
    for n in range(400):
        told(interp, _asn(n))
        sizes.append(memory.dump().count('],['))  # entries of the change log
    entries = sum(memory.size(t) for t in ("stories", "pending"))
    assert max(sizes) <= max(256, entries // 2) + 6  # folded once half as long as the base
    assert any(later < earlier for earlier, later in itertools.pairwise(sizes))


def test_the_older_checkpoint_format_is_read() -> None:
    old = json.dumps({"eta": {"PRO1": [["x12:a:1:1:1:0", "2026-12-03T12:00:00+00:00"]]},
                      "events": {"e-1": ["shipment B77", "ab" * 16]},
                      "extra": {"cursor": "c-9"}})
    memory = Memory.load(old)
    # the post of a carrier event is remembered with its story, here the post's subject
    assert memory.carrier_event("e-1") == ["shipment B77", "ab" * 16, "shipment B77", ""]
    assert memory.extra == {"cursor": "c-9"}
    assert Memory.load("not json").dump() == Memory().dump()


def test_a_file_that_fails_half_way_leaves_the_memory_as_it_found_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/erp.db"
    create_purchasing(url)
    memory = Memory()
    interp = interpreter(url, memory=memory)
    told(interp, STATUS_214)
    before = memory.dump()
    first, second = parse_any(DESADV).documents  # two ASNs in one interchange
    assert interp.events(first)
    engine = create_engine(url)
    with engine.begin() as conn:  # the ERP goes away before the file's second document
        conn.execute(text("ALTER TABLE purchase_order RENAME TO purchase_order_gone"))
    with pytest.raises(OperationalError):
        interp.events(second)
    assert memory.dump() == before
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE purchase_order_gone RENAME TO purchase_order"))
    engine.dispose()
    retry = [e.id for doc in (first, second) for e in interp.events(doc)]
    fresh = interpreter(url, memory=Memory.load(before))
    assert retry == [e.id for doc in (first, second) for e in fresh.events(doc)]
    assert len(retry) == 3


def test_a_long_story_keeps_its_newest_names_only() -> None:
    """A booking with hundreds of carrier events and containers: its story keeps the newest
    16 carrier event ids and aliases, and the index forgets the older ones with them."""
    import json as _json

    memory = Memory()
    interp = interpreter(memory=memory)
    for n in range(200):
        event = {"metadata": {"eventID": f"e-{n}", "eventType": "EQUIPMENT"},
                 "payload": {"eventClassifierCode": "ACT", "equipmentEventTypeCode": "LOAD",
                             "eventDateTime": f"2026-11-{1 + n % 28:02d}T{n % 24:02d}:00:00Z",
                             "equipmentReference": f"CONT{n}",
                             "relatedDocumentReferences": [{"type": "BKG", "value": "B1"}]}}
        told(interp, _json.dumps(event).encode())
        memory.dump()
    assert memory.size("stories") == 1
    assert memory.size("aliases") <= 16 + 24
    assert memory.carrier_event("e-199") is not None
    assert memory.carrier_event("e-0") is None
    restored = Memory.load(memory.dump())
    assert restored.size("aliases") == memory.size("aliases")
