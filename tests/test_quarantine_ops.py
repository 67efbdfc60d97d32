"""Quarantine operations on SQLite, PostgreSQL and MariaDB: input quarantined by a running
daemon (by the adapter and by a detector) is replayed through the fixed config; what passes
now is posted once and leaves quarantine, what still fails stays with its reason of now;
counts by reason; discard by id, by source, all; the command line's replay, stats and discard
(with its confirmation)."""

from __future__ import annotations

import json
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

import quarantine_ops_plugin
from floorstream.config import Config, parse_config
from floorstream.daemon import Daemon
from floorstream.model import Change
from floorstream.plugins import Plugins, build_plugins
from floorstream.processing import Envelope, Processor
from floorstream.replay import replay_quarantined
from floorstream.store.store import CommitBatch, QuarantineItem, Store
from support.daemon import FLOORSTREAM, all_posts
from support.waiting import wait_for

LINES = [
    {"subject": "press-1", "temp": "95"},  # temp as text: refused by types: {temp: number}
    "{oops",  # not JSON: refused, and still refused after the fix
    {"subject": "press-2", "temp": "hot"},  # refused by types; after the fix by the detector
    {"subject": "press-3", "temp": 20, "level": "n/a", "level_pct": 95},  # detector on level
    {"subject": "press-4", "temp": 99},  # fine from the start: posted live
]


def _config(store_url: str, path: Path, *, fixed: bool) -> str:
    types = "{temp: string}" if fixed else "{temp: number}"
    level = "level_pct" if fixed else "level"
    return textwrap.dedent(f"""\
        store: "{store_url}"
        default_team: maintenance
        sources:
          - name: line
            adapter: test.readings
            path: "{path}"
            types: {types}
            detect:
              - threshold: {{field: temp, above: 90}}
              - threshold: {{field: {level}, above: 90}}
        """)


@pytest.fixture
def plugins() -> Plugins:
    return build_plugins(extra=[quarantine_ops_plugin])


@pytest.fixture
def quarantined(store_url: str, tmp_path: Path, plugins: Plugins) -> Iterator[tuple[Config, Store]]:
    """A daemon ran the v1 config over LINES: four items quarantined, one post; returns the
    fixed config and the store."""
    path = tmp_path / "readings.jsonl"
    path.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in LINES) + "\n")
    broken = parse_config(_config(store_url, path, fixed=False), plugins)
    daemon = Daemon(broken, plugins, delivery=False)
    daemon.start()
    try:
        wait_for(lambda: daemon.store.checkpoints().get("line") == str(len(LINES)), 30,
                 "the daemon to read every line")
    finally:
        daemon.stop()
    store = Store.open(store_url)
    try:
        yield parse_config(_config(store_url, path, fixed=True), plugins), store
    finally:
        store.close()


def _errors(store: Store) -> dict[str, str]:
    """Quarantined items by position: their reason."""
    return {row.position or "": row.error for row in store.quarantined(limit=100)}


def test_replay_after_the_fix(quarantined: tuple[Config, Store], plugins: Plugins) -> None:
    fixed, store = quarantined
    before = _errors(store)
    assert sorted(before) == ["line:0", "line:1", "line:2", "line:3"]
    assert before["line:0"] == "field 'temp' should be a number, got '95'"
    assert before["line:3"].startswith("detector 'threshold'")
    assert [p.subject for p in all_posts(store)] == ["press-4"]

    report = replay_quarantined(fixed, plugins, store)
    assert (report.tried, report.passed, report.failing, report.posts) == (4, 2, 2, 2)
    assert report.skipped == {}
    posts = all_posts(store)
    assert sorted(p.subject for p in posts) == ["press-1", "press-3", "press-4"]
    # the posts are what live input makes: routed, and with the outbox's rows
    assert all(p.teams == ("maintenance",) for p in posts)
    after = _errors(store)
    assert sorted(after) == ["line:1", "line:2"]
    assert after["line:1"].startswith("invalid JSON")  # still failing, same reason
    # still failing, a new reason: the adapter takes "hot" now, the detector does not
    assert after["line:2"].startswith("detector 'threshold'")
    assert "'hot'" in after["line:2"]

    # again: nothing new is posted, the two stay
    again = replay_quarantined(fixed, plugins, store)
    assert (again.tried, again.passed, again.failing, again.posts) == (2, 0, 2, 0)
    # the same input quarantined once more (a broker redelivering it): replayed, removed,
    # and posted once only, its id being what it was
    row0 = QuarantineItem("line", json.dumps(LINES[0]).encode(), "field 'temp' should be a "
                          "number, got '95'", position="line:0", context={"line": 0})
    store.commit(CommitBatch(quarantined=[row0]))
    third = replay_quarantined(fixed, plugins, store, source="line")
    assert (third.passed, third.posts) == (1, 0)
    assert len(all_posts(store)) == 3


def test_replay_one_by_id_and_a_source(quarantined: tuple[Config, Store],
                                       plugins: Plugins) -> None:
    fixed, store = quarantined
    ids = {row.position: row.id for row in store.quarantined(limit=100)}
    one = replay_quarantined(fixed, plugins, store, ids=[ids["line:3"]])
    assert (one.tried, one.passed, one.posts) == (1, 1, 1)
    assert sorted(_errors(store)) == ["line:0", "line:1", "line:2"]
    none = replay_quarantined(fixed, plugins, store, source="elsewhere")
    assert none.tried == 0
    rest = replay_quarantined(fixed, plugins, store, source="line")
    assert (rest.tried, rest.passed) == (3, 1)


def test_an_adapter_that_cannot_replay_leaves_its_items(sqlite_url: str,
                                                        plugins: Plugins) -> None:
    config = parse_config(textwrap.dedent(f"""\
        store: "{sqlite_url}"
        sources:
          - {{name: sim, adapter: simulator, enabled: false}}
        """), plugins)
    store = Store.open(sqlite_url)
    try:
        store.commit(CommitBatch(quarantined=[
            QuarantineItem("sim", b"\xff", "invalid", position="p1"),
            QuarantineItem("gone", b"x", "invalid", position="p2")]))
        report = replay_quarantined(config, plugins, store)
        assert report.skipped == {"the simulator adapter cannot replay": 1,
                                  "source not in the config": 1}
        assert {r.error for r in store.quarantined()} == {"invalid"}
    finally:
        store.close()


def test_discard(quarantined: tuple[Config, Store]) -> None:
    _fixed, store = quarantined
    ids = {row.position: row.id for row in store.quarantined(limit=100)}
    assert store.discard_quarantined(ids=[ids["line:0"]]) == 1
    assert store.discard_quarantined(source="elsewhere") == 0
    assert store.count_quarantined() == 3
    assert store.discard_quarantined(source="line", batch=2) == 3
    assert store.count_quarantined() == 0


# -- the command line (builtin plugins only: items a detector refused) ---------------------

TANK = """\
store: "{url}"
default_team: utilities
sources:
  - name: tank
    adapter: simulator
    enabled: false
    detect:
      - threshold: {{field: {field}, above: 90}}
"""


def _cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([FLOORSTREAM, *args], capture_output=True, text=True, timeout=120,
                          input=stdin)


def test_the_command_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/fs.db"
    plugins = build_plugins()
    broken = parse_config(TANK.format(url=url, field="level"), plugins)
    store = Store.open(url)
    processor = Processor(broken, plugins, states=store)
    changes = [Change(source="tank", subject=f"tank-{n}", kind="telemetry", position=str(n),
                      data={"level": "n/a", "level_pct": 91 + n}) for n in range(3)]
    batch = processor.process([Envelope("tank", change=c) for c in changes])
    store.commit(batch)
    store.commit(type(batch)(quarantined=[QuarantineItem("tank", b"{", "invalid JSON",
                                                         position="x")]))
    store.close()
    config = tmp_path / "fs.yaml"
    config.write_text(TANK.format(url=url, field="level"))

    stats = _cli("quarantine", "stats", "-c", str(config))
    assert stats.returncode == 0, stats.stderr
    assert "4 quarantined items" in stats.stdout
    header, row = stats.stdout.splitlines()[1:3]
    assert header.split()[:6] == ["source", "invalid", "too_large", "detector", "internal",
                                  "total"]
    assert row.split()[:6] == ["tank", "1", "0", "3", "0", "4"]
    assert "commonest reasons:" in stats.stdout

    usage = _cli("quarantine", "replay", "-c", str(config))
    assert usage.returncode == 2 and "an ID, --source NAME, --all" in usage.stderr

    config.write_text(TANK.format(url=url, field="level_pct"))  # the fix
    replayed = _cli("quarantine", "replay", "--all", "-c", str(config))
    assert replayed.returncode == 0, replayed.stderr
    assert "4 replayed: 3 passed now (3 new posts), 0 still failing" in replayed.stdout
    assert "1 left alone: the simulator adapter cannot replay" in replayed.stdout
    assert "replaying" in replayed.stderr and "\r" not in replayed.stderr  # lines, no bar
    feed = _cli("feed", "-c", str(config), "-t", "utilities")
    assert feed.stdout.count("tank-") == 3, feed.stdout

    refused = _cli("quarantine", "discard", "--all", "-c", str(config), stdin="y\n")
    assert refused.returncode == 2 and "pass --yes" in refused.stderr  # no terminal to ask
    assert "1 quarantined items" in _cli("quarantine", "stats", "-c", str(config)).stdout
    gone = _cli("quarantine", "discard", "--all", "--yes", "-c", str(config))
    assert gone.returncode == 0 and "1 items discarded" in gone.stdout
    assert _cli("quarantine", "stats", "-c", str(config)).stdout.strip() == "quarantine is empty"
    missing = _cli("quarantine", "replay", "12345", "-c", str(config))
    assert missing.returncode == 1 and "not in quarantine" in missing.stdout
