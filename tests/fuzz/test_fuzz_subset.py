"""The fuzz corpus, fast subset, through a running daemon (MQTT sources + ``supply.folder``).

A few hundred malformed and well-formed inputs (see :mod:`fuzz.corpus`; the full run of more
than 10,000 is ``bench/fuzz.py``): 0 crashes, 0 stalled sources (each source's marker, sent
last, is posted), every invalid input quarantined, every valid one posted, every file out of
the inbox.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fuzz.corpus import Limits, generate
from fuzz.harness import run_corpus
from support.mqtt import PrivateBroker

pytestmark = [pytest.mark.mqtt, pytest.mark.postgres]

SEED = 20261201
COUNT = 400


def test_the_corpus_is_deterministic_and_big_enough_for_the_full_run() -> None:
    first, again = generate(SEED, 200), generate(SEED, 200)
    assert [(i.id, i.kind, i.payload) for i in first] == [(i.id, i.kind, i.payload)
                                                          for i in again]
    assert generate(SEED + 1, 200) != first
    kinds = {i.kind for i in first}
    assert len(kinds) >= 35  # every kind, already in a small corpus
    assert {i.channel for i in first} == {"json", "value", "sparkplug", "folder"}
    assert len(generate(1, 10_000)) >= 10_000


def test_fuzz_subset_through_a_running_daemon(tmp_path: Path, pg_url: str,
                                              mqtt_broker: tuple[str, int],
                                              topic_prefix: str) -> None:
    """On a private Mosquitto without queue limits: the shared one drops QoS 1 messages
    beyond ``max_queued_messages`` (1000) for a subscriber that falls behind, and this is
    about what the daemon does with what it gets (the harness counts what it got)."""
    inputs = generate(SEED, COUNT, Limits())
    broker = PrivateBroker(tmp_path / "broker", persistence=False, lossless=True)
    broker.start()
    try:
        report = run_corpus(inputs, workdir=tmp_path / "run", store_url=pg_url,
                            host="127.0.0.1", port=broker.port, prefix=topic_prefix,
                            timeout=60)
    finally:
        broker.stop()
    assert report.crashes == []
    assert report.stalls == []
    assert report.misses == []
    invalid = sum(1 for i in inputs if i.expect == "invalid")
    valid = sum(1 for i in inputs if i.expect == "valid")
    assert report.quarantined >= invalid and report.posted >= valid
    assert report.quarantined + report.posted + report.accepted == len(inputs)
    # every quarantined input logged a warning with its reason (more: documents' warnings)
    assert report.warnings >= report.quarantined

