"""``supply.folder`` on a real daemon: samples in, posts out, files moved only after commit."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from floorstream.store.store import Store
from support import DaemonRunner, wait_for
from support.erp import create_purchasing

from .make_214 import x12_214
from .support import HERE, SAMPLES, all_posts, inbox_empty

SAMPLE_FILES = [SAMPLES / "x12" / "004060_856_apimeister.edi",
                SAMPLES / "x12" / "004010_214_staedi_ellipsis_terminator.edi",
                SAMPLES / "x12" / "004010_315_apimeister.edi",
                SAMPLES / "edifact" / "d00b_iftsta_apimeister.edi",
                SAMPLES / "carrier" / "dcsa_tnt_v3_event_examples.json",
                HERE / "data" / "desadv_d96a_two_messages.edi",
                HERE / "data" / "asn_acme_20261106.csv"]


def config(tmp: Path, inbox: Path, *, settle: str = "0.1", erp: bool = True) -> str:
    text = f"""
store: sqlite:///{tmp}/fs.db
default_team: everyone
sources:
  - name: supply
    adapter: supply.folder
    path: {inbox}
    settle: {settle}
    poll: 0.05
    carriers: {{XXXX: ABF, ABFS: ABF}}
    csv: {{po: PO Number, line: Line, vendor_part: Item, qty: Qty, uom: UoM,
          ship_date: Ship Date, tracking: Tracking}}
"""
    if erp:
        text += f"""    erp: {{url: "sqlite:///{tmp}/erp.db", supplier_names: {{V100: Acme}}}}
"""
    return text


def _drop(inbox: Path, source: Path, name: str | None = None) -> None:
    """Write beside the inbox and rename in, as a careful uploader does."""
    target = inbox / (name or source.name)
    temp = inbox.parent / (target.name + ".tmp")
    shutil.copyfile(source, temp)
    temp.replace(target)


def test_every_sample_posts_and_is_moved_to_done(tmp_path: Path) -> None:
    create_purchasing(f"sqlite:///{tmp_path}/erp.db")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for path in SAMPLE_FILES:
        _drop(inbox, path)
    routes = "routes:\n  - match: {type: shipment.delayed}\n    teams: [purchasing]\n"
    with DaemonRunner(config(tmp_path, inbox) + routes).start():
        wait_for(inbox_empty(inbox))
    url = f"sqlite:///{tmp_path}/fs.db"
    store = Store.open(url)
    try:
        late = list(reversed(store.feed("purchasing")))
    finally:
        store.close()
    posts = all_posts(url) + late
    summaries = [p.summary for p in posts]
    assert sorted(p.name for p in (inbox / "done").iterdir()) == sorted(
        p.name for p in SAMPLE_FILES)
    assert not list((inbox / "failed").iterdir())
    assert "PO 4500012 from Acme: shipped 120 of 200 pcs, arriving 2 Dec — 3 days after the " \
           "promised date" in summaries
    assert "ASN 0001235 refers to PO 4500012 line 40, which does not exist" in summaries
    assert ("Carrier ABF: shipment 0542550913 (PO 900169) departed, trailer XXXX902577 "
            "(pick-up location, 10 Sep), expected 11 Sep") in summaries
    assert any(s.startswith("Carrier Hapag-Lloyd withdrew event 957e4966") for s in summaries)
    # an EST load is a plan, not a fact, and is worded so
    assert ("Carrier CMA CGM: shipment ABC123059 expected to be loaded at Port of Amsterdam "
            "12 Nov") in summaries
    by_type: dict[str, int] = {}
    for post in posts:
        by_type[post.type] = by_type.get(post.type, 0) + 1
    # the two late ASNs (DESADV 0001234, the 856 sample) are delays, routed as such
    assert by_type == {"shipment.dispatched": 2, "shipment.delayed": 2, "asn.mismatch": 3,
                       "shipment.status_changed": 9, "shipment.retracted": 1}
    # (the 214's and the IFTSTA's estimates ride on their departures' posts: 2 fewer posts)
    assert [p.type for p in late] == ["shipment.delayed"] * 2
    assert [p.teams for p in late] == [("purchasing",), ("purchasing",)]
    assert {p.severity.label for p in late} == {"warning"}
    assert {p.fields["late_days"] for p in late} == {3, 1}
    assert all(p.teams == ("everyone",) for p in posts if p.type != "shipment.delayed")


def test_same_file_or_same_interchange_twice_posts_once(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    url = f"sqlite:///{tmp_path}/fs.db"
    with DaemonRunner(config(tmp_path, inbox, erp=False)).start():
        _drop(inbox, SAMPLE_FILES[0])
        wait_for(inbox_empty(inbox))
        first = len(all_posts(url))
        _drop(inbox, SAMPLE_FILES[0])  # the same name again
        _drop(inbox, SAMPLE_FILES[0], "resent-copy.edi")
        # the same interchange (sender + control numbers) with CRLF line ends
        crlf = tmp_path / "crlf.edi"
        crlf.write_bytes(SAMPLE_FILES[0].read_bytes().replace(b"\n", b"\r\n"))
        _drop(inbox, crlf)
        wait_for(inbox_empty(inbox))
    assert first == 1
    assert len(all_posts(url)) == 1
    done = sorted(p.name for p in (inbox / "done").iterdir())
    assert done == ["004060_856_apimeister.edi", "004060_856_apimeister.edi.1", "crlf.edi",
                    "resent-copy.edi"]


def test_bad_files_are_quarantined_whole_and_the_folder_keeps_flowing(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    truncated = SAMPLE_FILES[0].read_bytes()[:400]
    (tmp_path / "cut.edi").write_bytes(truncated)
    (tmp_path / "noise.bin").write_bytes(bytes(range(256)) * 4)
    _drop(inbox, tmp_path / "cut.edi")
    _drop(inbox, tmp_path / "noise.bin")
    time.sleep(0.05)
    _drop(inbox, SAMPLE_FILES[2])
    url = f"sqlite:///{tmp_path}/fs.db"
    with DaemonRunner(config(tmp_path, inbox, erp=False)).start():
        wait_for(inbox_empty(inbox))
    assert sorted(p.name for p in (inbox / "failed").iterdir()) == ["cut.edi", "noise.bin"]
    assert [p.name for p in (inbox / "done").iterdir()] == ["004010_315_apimeister.edi"]
    store = Store.open(url)
    try:
        rows = {r.context["file"]: r for r in store.quarantined(source="supply")}
    finally:
        store.close()
    assert rows["cut.edi"].raw == truncated
    assert "file ends inside transaction set 0008 (no SE): truncated?" in rows["cut.edi"].error
    assert rows["cut.edi"].context["segment"] == 16  # SE expected after the cut line 15
    assert rows["noise.bin"].raw == bytes(range(256)) * 4
    assert len(all_posts(url)) == 1


def test_half_written_files_and_temporaries_are_not_read(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    raw = SAMPLE_FILES[1].read_bytes()
    url = f"sqlite:///{tmp_path}/fs.db"
    for name in (".hidden.edi", "upload.edi.part", "upload.tmp"):
        (inbox / name).write_bytes(raw)
    with DaemonRunner(config(tmp_path, inbox, settle="0.6", erp=False)).start():
        target = inbox / "slow-upload.edi"
        with target.open("wb") as handle:  # a slow uploader writing straight into the inbox
            for start in range(0, len(raw), 80):
                handle.write(raw[start:start + 80])
                handle.flush()
                time.sleep(0.15)
        wait_for(lambda: not target.exists())
    store = Store.open(url)
    try:
        assert store.quarantined(source="supply") == []
    finally:
        store.close()
    # both AT7 loops of the complete file: the departure, with the estimate it carried
    (post,) = all_posts(url)
    assert post.summary.endswith("departed, trailer XXXX902577 (pick-up location, 10 Sep), "
                                 "expected 11 Sep"), post.summary
    assert sorted(p.name for p in inbox.iterdir() if p.is_file()) == [
        ".hidden.edi", "upload.edi.part", "upload.tmp"]


def test_a_thousand_files_dropped_at_once(tmp_path: Path) -> None:
    staging = tmp_path / "staging"
    staging.mkdir()
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for n in range(1000):
        (staging / f"214_{n:04d}.edi").write_bytes(
            x12_214(n + 1, [("AF", "NS", "20261120", "0800"), ("D1", "NS", "20261121", "0900")],
                    pro=f"PRO{n:04d}"))
    for path in staging.iterdir():
        path.replace(inbox / path.name)
    url = f"sqlite:///{tmp_path}/fs.db"
    with DaemonRunner(config(tmp_path, inbox, erp=False)).start():
        wait_for(inbox_empty(inbox), timeout=60)
    posts = all_posts(url)
    assert len(posts) == 2000 and len({p.id for p in posts}) == 2000
    assert sum(p.type == "shipment.delivered" for p in posts) == 1000
    assert len(list((inbox / "done").iterdir())) == 1000


def test_check_warns_of_an_inbox_that_does_not_exist(tmp_path: Path) -> None:
    """A typo in ``path`` must not pass in silence: run would create and watch a new empty
    folder. check names it; an existing inbox gives no warning."""
    from floorstream.config import parse_config
    from floorstream.plugins import build_plugins

    plugins = build_plugins()
    text = "sources: [{name: edi, adapter: supply.folder, path: '%s'}]\n"
    (missing,) = parse_config(text % (tmp_path / "inbx"), plugins).sources
    assert missing.check_warnings() == [  # type: ignore[attr-defined]
        f"path: the inbox {str(tmp_path / 'inbx')!r} does not exist (yet); run creates it empty"]
    (present,) = parse_config(text % tmp_path, plugins).sources
    assert present.check_warnings() == []  # type: ignore[attr-defined]
