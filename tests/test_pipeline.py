"""The daemon's pipeline end to end, in process: duplicates, quarantine while the rest flows,
acks only after commit, failing plugins isolated."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import structlog

import lines_adapter
from floorstream import hookimpl
from floorstream.config import parse_config, parse_mapping
from floorstream.daemon import Daemon
from floorstream.model import Change, Event
from floorstream.plugins import build_plugins
from floorstream.store.store import Store
from support import DaemonRunner, wait_for


class BrokenRender:
    @hookimpl
    def render_post(self, event: Event, default: str) -> str | None:
        raise RuntimeError("render plugin bug")


def _run_daemon(tmp_path: Path, lines: list[Any], *, repeat: int = 1,
                extra: list[object] | None = None, detect: list[Any] | None = None,
                expect_acked: int | None = None) -> tuple[Store, Daemon]:
    data = tmp_path / "lines.jsonl"
    data.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n",
                    encoding="utf-8")
    acked = tmp_path / "acked"
    plugins = build_plugins(extra=[lines_adapter, *(extra or [])], load_entry_points=False)
    config = parse_mapping({
        "store": f"sqlite:///{tmp_path}/fs.db", "flood": None,
        "sources": [{"name": "line", "adapter": "test.lines", "path": str(data),
                     "acked": str(acked), "repeat": repeat, "detect": detect or []}],
    }, plugins)
    want = len(lines) if expect_acked is None else expect_acked
    runner = DaemonRunner(config, plugins=plugins).start()
    daemon = runner.daemon
    assert daemon is not None
    try:
        wait_for(lambda: acked.exists() and acked.read_text() and
                 int(acked.read_text()) >= want, what=f"{want} lines acked")
    finally:
        runner.close()
    return Store.open(config.settings.store), daemon


def test_the_same_change_twice_is_posted_once(tmp_path: Path) -> None:
    lines = [{"type": "note", "fields": {"summary": f"line {n}"}} for n in range(5)]
    store, _ = _run_daemon(tmp_path, lines, repeat=2)
    assert store.count_posts() == 5
    assert [p.summary for p in store.feed("general")] == [f"line {n}" for n in range(4, -1, -1)]


def test_bad_input_is_quarantined_while_the_rest_flows(tmp_path: Path) -> None:
    lines: list[Any] = [
        {"state": "RUNNING", "temp": 70},
        "{not json at all",
        {"state": "STOPPED", "temp": "sensor error"},  # garbled temperature, real stop
        {"state": "STOPPED", "temp": 95},
        {"state": "RUNNING", "temp": 60},
    ]
    detect = [{"state_change": {"field": "state", "normal": ["RUNNING"]}},
              {"threshold": {"field": "temp", "above": 90, "clear_below": 80}}]
    with structlog.testing.capture_logs() as logs:
        store, _ = _run_daemon(tmp_path, lines, detect=detect)
    types = [p.type for p in reversed(store.feed("general"))]
    assert types == ["machine.state_changed", "metric.limit_exceeded",
                     "machine.state_changed", "metric.limit_cleared"]
    quarantined = {q.position: q for q in store.quarantined()}
    assert set(quarantined) == {"1", "2"}
    assert quarantined["1"].raw == b"{not json at all"
    assert "invalid JSON" in quarantined["1"].error
    assert "threshold" in quarantined["2"].error and "sensor error" in quarantined["2"].error
    assert json.loads(quarantined["2"].raw)["data"]["temp"] == "sensor error"
    assert any(e["event"] == "change_quarantined" and e["detector"] == "threshold"
               for e in logs)
    assert store.checkpoints() == {"line": "5"}


def test_acks_run_only_after_the_commit(tmp_path: Path) -> None:
    seen: list[tuple[str, str | None]] = []
    store_holder: dict[str, Store] = {}

    original = lines_adapter._acker

    def acker(path: Path, value: int) -> Any:
        inner = original(path, value)

        def ack() -> None:
            store = store_holder.setdefault("s", Store.open(f"sqlite:///{tmp_path}/fs.db"))
            seen.append((str(value), store.checkpoints().get("line")))
            inner()
        return ack

    lines_adapter._acker = acker
    try:
        _run_daemon(tmp_path, [{"type": "note", "fields": {"n": n}} for n in range(30)])
    finally:
        lines_adapter._acker = original
    assert len(seen) == 30
    for acked, committed in seen:
        assert committed is not None and int(committed) >= int(acked)


def test_a_failing_render_plugin_does_not_stop_posts(tmp_path: Path) -> None:
    with structlog.testing.capture_logs() as logs:
        store, daemon = _run_daemon(tmp_path, [{"type": "note", "fields": {"summary": "hi"}}],
                                    extra=[BrokenRender()])
    assert [p.summary for p in store.feed("general")] == ["hi"]
    (failure,) = [e for e in logs if e["event"] == "plugin_failed"]
    assert failure["plugin"].endswith("BrokenRender") and "render plugin bug" in failure["error"]
    assert daemon.pipeline.error is None



def test_replay_guard_forgets_leftovers_that_never_come_back() -> None:
    """A restart's guard holds the last batch; a source that does not resend (a cursor) must
    not carry it into every later batch."""
    from floorstream.processing import REPLAY_GUARD, SourceRuntime

    early = SourceRuntime("s", [], None)
    early.state("", REPLAY_GUARD).replace({"positions": ["m\x1f1", "m\x1f2"]})
    assert early.replayed("m\x1f1") is True  # redelivered first: skipped
    assert early.replayed("m\x1f9") is False

    late = SourceRuntime("s", [], None)
    late.state("", REPLAY_GUARD).replace({"positions": ["m\x1f1"]})
    for n in range(1100):
        assert late.replayed(f"n\x1f{n}") is False
    late.remember(["n\x1f1100"])
    assert late.state("", REPLAY_GUARD).data == {"positions": ["n\x1f1100"]}
    assert late.replayed("m\x1f1") is False  # given up: too late to be a redelivery


def test_replay_guard_covers_every_batch_an_unacked_window_can_hold(tmp_path: Path) -> None:
    """The crash the 20-SIGKILL test once caught under CI load: four committed batches of 20
    whose acks had not left when the process died. The broker resends all 80; with a guard
    of the last 64 positions the oldest 16 ran through state_change again and each was posted
    as a state "reported late". A source with an unacked window (MQTT 5's Receive Maximum)
    keeps at least that many positions, committed with each batch."""
    from floorstream.pipeline import Pipeline
    from floorstream.processing import Envelope, Processor

    plugins = build_plugins(load_entry_points=False)
    config = parse_config(f"""
store: sqlite:///{tmp_path}/fs.db
flood: null
sources:
  - name: presses
    adapter: simulator
    detect: [{{state_change: {{field: state}}}}]
""", plugins)

    def change(n: int) -> Envelope:
        state = "RUNNING" if (n // 10) % 2 == 0 else "STOPPED"  # each reading a transition
        return Envelope("presses", change=Change(
            source="presses", subject=f"m{n % 10}", kind="reading", position=str(n),
            occurred_at=datetime(2026, 12, 1, 8, 0, tzinfo=UTC) + timedelta(seconds=n),
            data={"state": state}), ack=lambda: None)

    def pipeline() -> tuple[Pipeline, Store]:
        store = Store.open(config.settings.store)
        built = Pipeline(Processor(config, plugins, states=store), store,
                         config.settings.pipeline, plugins)
        built.limit_unacked("presses", 1000)
        return built, store

    first, store = pipeline()
    for start in range(0, 200, 20):  # ten committed batches; the last four never acked
        first.run_now([change(n) for n in range(start, start + 20)])
    posts = store.count_posts()
    assert posts == 10 * 19  # every reading but each machine's first
    store.close()
    again, store = pipeline()  # the restart: the broker resends the unacked 80, in order
    again.run_now([change(n) for n in range(120, 200)])
    assert store.count_posts() == posts, [p.type for p in store.feed("general", limit=5)]
    again.run_now([change(200)])  # and the stream goes on
    assert store.count_posts() == posts + 1
    store.close()
