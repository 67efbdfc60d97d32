"""The plugin conformance suite (``floorstream.testing.AdapterConformance``) on the three supply
transports, each against its real transport: a folder, a local HTTP server, HTTP pushes.

All three replay an unfinished unit (a file, a page, a push) after a restart as identical
changes (``exact_resume = False``): the unit's event ids dedupe the replay.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from floorstream.adapters.supply.folder import SupplyFolder
from floorstream.adapters.supply.http_poll import SupplyHttp
from floorstream.adapters.supply.inbox import SupplyInbox, sign
from floorstream.testing import AdapterConformance
from support.http import http_receiver

from .make_214 import x12_214

#: four carrier files, two milestones each: 2 events + 1 file marker per file
DOCUMENTS = [x12_214(20 + n, [("AF", "NS", f"202611{10 + n}", "0800"),
                              ("D1", "NS", f"202611{11 + n}", "0900")], pro=f"PRO{n}")
             for n in range(4)]


class TestFolderConformance(AdapterConformance):
    adapter = SupplyFolder
    config: dict[str, Any] = {}
    min_changes = 8  # four files (pushes) of two events each
    exact_resume = False

    @pytest.fixture(autouse=True)
    def _inbox(self, tmp_path: Path) -> None:
        type(self).config = {"name": "supply", "adapter": "supply.folder",
                             "path": str(tmp_path / "inbox"), "settle": 0, "poll": 0.02}

    def prepare_source(self) -> None:
        inbox = Path(self.config["path"])
        shutil.rmtree(inbox, ignore_errors=True)
        inbox.mkdir()
        for n, raw in enumerate(DOCUMENTS):  # mtimes one second apart: a fixed read order
            path = inbox / f"status-{n}.edi"
            path.write_bytes(raw)
            os.utime(path, (1_790_000_000 + n, 1_790_000_000 + n))


def _page(events: list[bytes], cursor: int) -> bytes:
    chunk = [json.loads(raw) for raw in events[cursor:cursor + 2]]
    return json.dumps({"events": chunk, "next_cursor": str(cursor + len(chunk))}).encode()


def _dcsa(n: int) -> bytes:
    return json.dumps({
        "metadata": {"eventID": f"ev-{n}", "eventType": "TRANSPORT",
                     "publisher": {"partyName": "Maersk"}},
        "payload": {"eventClassifierCode": "ACT", "transportEventTypeCode": "DEPA",
                    "eventDateTime": f"2026-11-{10 + n:02d}T08:00:00Z",
                    "relatedDocumentReferences": [{"type": "BKG", "value": f"BKG{n}"}]}}).encode()


class TestHttpConformance(AdapterConformance):
    """Five carrier events, two per page: 3 pages + the empty page at the end, each page ended
    by a checkpoint (progress, not an emitted item), so 5 events."""

    adapter = SupplyHttp
    config: dict[str, Any] = {}
    min_changes = 5
    exact_resume = False

    @pytest.fixture(autouse=True)
    def _carrier(self) -> Iterator[None]:
        events = [_dcsa(n) for n in range(1, 6)]
        with http_receiver() as server:
            server.reply = lambda request: (
                200, {}, _page(events, int(request.query.get("cursor", "0"))))
            type(self).config = {"name": "maersk", "adapter": "supply.http", "interval": 0.05,
                                 "url": f"{server.url}/events"}
            yield


class _Partner:
    """A webhook sender: pushes each document until it gets a final answer (200 or 422),
    retrying on 503, refused connections and timeouts, as partners' EDI gateways do."""

    def __init__(self, url: str, key: str) -> None:
        self.url, self.key = url, key
        self.answers: list[int] = []
        self.quit = threading.Event()
        self.thread = threading.Thread(target=self._push_all, daemon=True)
        self.thread.start()

    def _push_all(self) -> None:
        for raw in DOCUMENTS:
            while not self.quit.is_set():
                request = urllib.request.Request(
                    self.url, data=raw, method="POST",
                    headers={"X-Signature-256": sign(self.key, raw)})
                try:
                    with urllib.request.urlopen(request, timeout=5) as response:
                        self.answers.append(response.status)
                        break
                except urllib.error.HTTPError as exc:
                    self.answers.append(exc.code)
                    if exc.code == 422:
                        break
                except OSError:
                    pass  # not listening (yet, or again): retry
                self.quit.wait(0.05)

    def close(self) -> None:
        self.quit.set()
        self.thread.join(10)


class TestInboxConformance(AdapterConformance):
    """The partner pushes while the adapter runs; when a run is cut mid-push the push is not
    committed, so the inbox answers 503 and the partner's retry reaches the next run."""

    adapter = SupplyInbox
    config: dict[str, Any] = {}
    min_changes = 8  # four files (pushes) of two events each
    exact_resume = False
    partners: list[_Partner] = []

    @pytest.fixture(autouse=True)
    def _port(self) -> Iterator[None]:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        type(self).config = {"name": "pushed", "adapter": "supply.inbox", "port": port,
                             "hmac_key": "k3y", "ack_timeout": 0.5}
        type(self).partners = []
        yield
        for partner in self.partners:
            partner.close()

    def prepare_source(self) -> None:
        for partner in self.partners:  # the previous run's partner has finished
            partner.thread.join(10)
            assert not partner.thread.is_alive()
        url = f"http://127.0.0.1:{self.config['port']}/inbox"
        self.partners.append(_Partner(url, self.config["hmac_key"]))

    def test_a_cut_push_is_answered_503_and_lands_on_retry(self) -> None:
        self.prepare_source()
        first = self._run(None, stop_after=3)  # cut inside the second document
        second = self._run(first.last_checkpoint, want=8 - 2)
        self.partners[-1].thread.join(10)
        assert 503 in self.partners[-1].answers
        assert self.partners[-1].answers.count(200) == 4
        positions = {c.position for c in first.emitted} | {c.position for c in second.emitted}
        assert len(positions) == 8
