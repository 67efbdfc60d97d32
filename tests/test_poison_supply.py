"""Poison files never stop a ``supply.folder``: each is quarantined with its bytes and a reason,
logged as one warning, moved to ``failed/``, and the files behind it keep flowing.

Real daemon, real PostgreSQL (the store where a NUL or an over-long subject used to fail every
commit after it), real files renamed into the inbox.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import structlog
from sqlalchemy import select

from floorstream.adapters.supply.feed import FeedHandler
from floorstream.adapters.supply.folder import FolderConfig
from floorstream.config import parse_config
from floorstream.daemon import Daemon
from floorstream.plugins import build_plugins
from floorstream.store import schema
from support.waiting import wait_for

pytestmark = pytest.mark.postgres

SAMPLES = Path(__file__).parent / "samples"
X12 = (SAMPLES / "x12" / "004060_856_apimeister.edi").read_bytes()
IFTSTA = (SAMPLES / "edifact" / "d00b_iftsta_apimeister.edi").read_bytes()
MAX_BYTES = 1_500_000


def _event(ref: str, **payload: Any) -> dict[str, Any]:
    return {"metadata": {"eventID": f"ev-{ref}", "eventType": "TRANSPORT",
                         "publisher": {"partyName": "Maersk"}},
            "payload": {"eventClassifierCode": "ACT", "transportEventTypeCode": "DEPA",
                        "eventDateTime": "2026-11-10T08:00:00Z",
                        "relatedDocumentReferences": [{"type": "BKG", "value": ref}],
                        **payload}}


def _dcsa(ref: str, **payload: Any) -> bytes:
    return json.dumps({"events": [_event(ref, **payload)]}).encode()


#: name → (bytes, a phrase its quarantine reason must contain)
POISON: dict[str, tuple[bytes, str]] = {
    "a-deep.json": (b"[" * 200_000 + b"]" * 200_000, "nested deeper than 100 levels"),
    "b-deep-object.json": (b'{"a":' * 200_000 + b"1" + b"}" * 200_000, "nested deeper"),
    "c-huge-int.json": (_dcsa("BKG-HUGE").replace(b'"2026-11-10T08:00:00Z"', b"9" * 5_000),
                        "4300 digits"),
    "d-surrogate.json": (_dcsa("BKG-\ud800"), "lone surrogate"),  # written as \ud800
    "e-bad-utf8.json": (_dcsa("BKG-\xff").replace(b"\\u00ff", b"\xff"), "not UTF-8"),
    "f-nul.json": (_dcsa("BKG-\x00"), "NUL"),
    "g-truncated.edi": (X12[:X12.index(b"SN1*2")], "truncated"),
    "h-truncated-edifact.edi": (IFTSTA[:IFTSTA.index(b"DTM+334")], "truncated"),
    "i-garbage.bin": (bytes(range(256)) * 8, "binary data"),
    "j-empty.csv": (b"", "empty file"),
    "k-oversized.edi": ((X12 * (MAX_BYTES // len(X12) + 2))[:MAX_BYTES + 1], "exceeds max_bytes"),
    "l-long-id.json": (_dcsa("B" * 300), "more than 255"),
    "m-nul-in-x12.edi": (X12.replace(b"BSN*14*829716", b"BSN*14*82\x009716"), "NUL"),
}


def _config(store: str, inbox: Path) -> str:
    return f"""
store: {store}
default_team: everyone
flood: null
sources:
  - name: inbox
    adapter: supply.folder
    path: {inbox}
    settle: 0
    poll: 0.05
    max_bytes: {MAX_BYTES}
"""


def _drop(inbox: Path, name: str, raw: bytes, *, after: float | None = None) -> None:
    temp = inbox.parent / (name + ".tmp")
    temp.write_bytes(raw)
    if after is not None:  # read after everything already there (the folder sorts by mtime)
        os.utime(temp, (after + 5, after + 5))
    temp.replace(inbox / name)


def test_every_poison_file_is_quarantined_and_the_folder_keeps_flowing(
        tmp_path: Path, pg_url: str) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for name, (raw, _reason) in POISON.items():
        _drop(inbox, name, raw)
    # odd but well-formed: posted, not quarantined (a date no calendar holds costs the post
    # its date, a field of the wrong type its value)
    _drop(inbox, "n-odd.json", _dcsa("BKG-ODD", transportCall=5,
                                     eventDateTime="0001-01-01T00:00:00+14:00"))
    plugins = build_plugins(load_entry_points=False)
    daemon = Daemon(parse_config(_config(pg_url, inbox), plugins), plugins)
    with structlog.testing.capture_logs() as logs:
        daemon.start()
        try:
            # the sentinel: a good file dropped after the poison, read after it
            _drop(inbox, "z-good.json", _dcsa("BKG-AFTER"),
                  after=max(p.stat().st_mtime for p in inbox.iterdir()))
            wait_for(lambda: not any(p.is_file() for p in inbox.iterdir()), 60,
                     "every file moved out of the inbox")
            store = daemon.store
            p, q = schema.posts, schema.quarantine
            with store.engine.connect() as conn:
                subjects = set(conn.execute(select(p.c.subject)).scalars())
                rows = {r.context["file"]: r for r in conn.execute(
                    select(q.c.error, q.c.raw, q.c.context)).all()}
            assert daemon.status["inbox"].restarts == 0
            assert daemon.pipeline.alive and daemon.pipeline.error is None
        finally:
            daemon.stop()
    assert {"shipment BKG-AFTER", "shipment BKG-ODD"} <= subjects
    assert sorted(rows) == sorted(POISON)
    for name, (raw, reason) in POISON.items():
        row = rows[name]
        assert reason in row.error, (name, row.error)
        assert row.error.startswith(f"{name}: ")
        if name.startswith("k-"):  # the first max_bytes, the whole file is in failed/
            assert bytes(row.raw) == raw[:MAX_BYTES] and row.context["truncated"] is True
        else:
            assert bytes(row.raw) == raw
    assert sorted(p.name for p in (inbox / "failed").iterdir()) == sorted(POISON)
    assert sorted(p.name for p in (inbox / "done").iterdir()) == ["n-odd.json", "z-good.json"]
    assert (inbox / "failed" / "k-oversized.edi").read_bytes() == POISON["k-oversized.edi"][0]
    # one warning per poison file, with the reason; nothing at error level, no traceback
    warned = [e for e in logs if e["event"] == "input_quarantined"]
    assert len(warned) == len(POISON)
    assert all(e["log_level"] == "warning" for e in warned)
    assert {e["error"].split(":")[0] for e in warned} == set(POISON)
    assert [e for e in logs if e["log_level"] in ("error", "critical")] == []
    assert not [e for e in logs if "exc_info" in e]


class _Recorder:
    """An Emitter that keeps what it is given (the FeedHandler's contract, no pipeline)."""

    def __init__(self) -> None:
        self.quarantined: list[str] = []
        self.events: list[Any] = []

    def quarantine(self, raw: bytes, error: str, **_kw: Any) -> None:
        self.quarantined.append(error)

    def event(self, event: Any, **_kw: Any) -> None:
        self.events.append(event)

    def checkpoint(self, checkpoint: str | None, **_kw: Any) -> None:
        pass


@pytest.mark.parametrize("payload", [
    {"transportCall": 5}, {"transportCall": {"location": "Hamburg"}},
    {"relatedDocumentReferences": {"type": "BKG"}}, {"references": "EQ"},
    {"eventDateTime": "9999-12-31T23:59:59-14:00"}, {"delayReasonCode": {"code": 1}},
    {"transportEventTypeCode": ["DEPA"]},
])
def test_carrier_json_of_the_wrong_shape_costs_a_field_not_the_file(
        payload: dict[str, Any]) -> None:
    """Each of these raised AttributeError/TypeError/OverflowError in the parser."""
    handler = FeedHandler(FolderConfig(name="s", adapter="supply.folder", path="."), None,
                          structlog.get_logger())
    recorder = _Recorder()
    event = _event("BKG-1", **payload)
    event["metadata"]["publisher"] = "Maersk"  # a string where an object belongs
    handler.handle(recorder, json.dumps([event]).encode(), "odd.json")  # type: ignore[arg-type]
    assert recorder.quarantined == []
    assert len(recorder.events) == 1 and recorder.events[0].subject.startswith("shipment ")


def test_a_file_moved_away_during_a_scan_does_not_stop_the_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A commit's ack moves a file to done/ while the reading thread lists the inbox: the
    listing still names it, its stat raises FileNotFoundError. That restarted the adapter (a
    1-60 s backoff for the whole folder, and files re-read). Here the race is made certain:
    the listing is taken, then the file goes."""
    from floorstream.adapters.supply import folder as folder_module
    from floorstream.plugin import AdapterContext
    from floorstream.plugins import build_plugins as plugins_of
    from floorstream.testing.doubles import RecordingEmitter

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "gone.json").write_bytes(_dcsa("BKG-GONE"))
    (inbox / "kept.json").write_bytes(_dcsa("BKG-KEPT"))

    class RacingOs:
        """``os`` as the folder module sees it, with a scandir whose first listing outlives
        one of its files."""

        def __init__(self) -> None:
            self.raced = False

        def __getattr__(self, name: str) -> Any:
            return getattr(os, name)

        def scandir(self, path: Any) -> Any:
            listing = os.scandir(path)
            if self.raced:
                return listing
            self.raced = True
            entries = list(listing)
            listing.close()
            (inbox / "gone.json").unlink()

            class Listing:
                def __enter__(self) -> list[os.DirEntry[str]]:
                    return entries

                def __exit__(self, *exc: object) -> None:
                    return None
            return Listing()

    racing = RacingOs()
    monkeypatch.setattr(folder_module, "os", racing)
    config = FolderConfig(name="inbox", adapter="supply.folder", path=str(inbox), settle=0,
                          poll=0.02)
    adapter = folder_module.SupplyFolder(
        config, AdapterContext("inbox", None, plugins_of(load_entry_points=False).decoders))
    emitter = RecordingEmitter()
    failure: list[BaseException] = []

    def run() -> None:
        try:
            adapter.run(emitter, emitter.stop)
        except BaseException as exc:  # what the daemon would log and restart
            failure.append(exc)

    import threading
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: failure or [e for e in emitter.events
                                     if e.subject == "shipment BKG-KEPT"], 10)
    finally:
        emitter.stop.set()
        thread.join(5)
    assert racing.raced and failure == []
    assert (inbox / "done" / "kept.json").exists()


def test_the_cheap_json_check_refuses_what_the_full_walk_refused() -> None:
    """``validate`` walks only the containers and reads the strings only when the text holds
    a suspect escape; it must refuse and accept exactly what ``check_tree`` does."""
    from floorstream.adapters.supply.formats.carrier_json import check_tree, validate
    from floorstream.adapters.supply.formats.errors import ParseError

    deep_inside = '{"events": [{"eventID": "e", "eventType": "T", "x": ' + "[" * 150 + \
        "]" * 150 + "}]}"
    cases = {
        '{"a": "\\ud83d\\ude00"}': True,  # an emoji as a surrogate pair
        '{"a": "C:\\\\u0000dir"}': True,  # an escaped backslash, then text
        '{"a": "caf\\u00e9"}': True,
        '{"a": "x\\ud800"}': False,
        '{"\\u0000": 1}': False,
        '["ok", {"b": ["\\udfff"]}]': False,
        deep_inside: False,
        "[" * 100 + "]" * 100: True,
    }
    for text, fine in cases.items():
        value = json.loads(text)
        outcomes = []
        for check in (lambda v, t=text: validate(v, t), lambda v, t=text: validate(v, t.encode()),
                      lambda v, t=text: check_tree(v)):
            try:
                check(value)
                outcomes.append(True)
            except ParseError:
                outcomes.append(False)
        assert outcomes == [fine] * 3, text
