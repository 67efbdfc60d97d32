"""Crash consistency with real processes: killed after commit and before ack → the replay adds
no duplicate; killed before commit → nothing is lost; SIGTERM drains and commits; detector
state survives a restart."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from floorstream.store.store import Store
from support import DaemonRunner, wait_for

WORKER = Path(__file__).parent / "crash_worker.py"
TOTAL = 60


def _lines(workdir: Path) -> list[dict[str, object]]:
    """Every line an event of its own, plus a temperature story for the threshold."""
    lines: list[dict[str, object]] = []
    for n in range(TOTAL):
        if n % 3 == 0:
            lines.append({"type": "note", "fields": {"summary": f"line {n}"}})
        else:
            lines.append({"subject": "press-07", "temp": 95 if (n // 10) % 2 else 70})
    (workdir / "lines.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n",
                                         encoding="utf-8")
    return lines


def _worker(workdir: Path, crash: str | None, resume: str = "checkpoint") -> int:
    env = {**os.environ, "FS_CRASH": crash or "", "FS_RESUME": resume}
    done = subprocess.run([sys.executable, str(WORKER), str(workdir), str(TOTAL)], env=env,
                          timeout=60, capture_output=True, text=True)
    if done.returncode not in (0, 9):
        raise AssertionError(done.stderr[-3000:])
    return done.returncode


def _posts(workdir: Path) -> list[tuple[str, str]]:
    store = Store.open(f"sqlite:///{workdir}/fs.db")
    try:
        return sorted((p.id, p.summary) for p in store.feed("general", limit=10_000))
    finally:
        store.close()


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, str]]:
    """The posts of one uninterrupted run."""
    workdir = tmp_path_factory.mktemp("reference")
    _lines(workdir)
    assert _worker(workdir, None) == 0
    posts = _posts(workdir)
    notes = TOTAL // 3
    assert len(posts) == notes + 5  # 3 raises and 2 clears in the temperature story
    return posts


@pytest.mark.parametrize(("resume", "crash"), [
    ("checkpoint", "after-commit:1"), ("checkpoint", "after-commit:3"),
    ("checkpoint", "before-commit:2"), ("checkpoint", "before-commit:4"),
    ("acked", "before-commit:2"), ("acked", "before-commit:4"),
    ("acked", "after-commit:1"), ("acked", "after-commit:3"), ("acked", "after-commit:5"),
])
def test_a_killed_pipeline_restarts_with_no_duplicate_and_no_loss(
        tmp_path: Path, reference: list[tuple[str, str]], resume: str, crash: str) -> None:
    """``checkpoint``: the source resumes from the committed checkpoint (files, ERP cursors);
    ``acked``: it redelivers whatever was not acked, as an MQTT broker does."""
    _lines(tmp_path)
    assert _worker(tmp_path, crash, resume) == 9  # really killed
    committed = _posts(tmp_path)
    acked = int((tmp_path / "acked").read_text() or 0) if (tmp_path / "acked").exists() else 0
    assert acked < TOTAL
    if crash.startswith("after-commit"):
        assert committed, "the commit before the kill must be durable"
    assert _worker(tmp_path, None, resume) == 0  # restart: replays what was not committed/acked
    after = _posts(tmp_path)
    assert len(after) == len({pid for pid, _ in after})  # no duplicate
    assert after == reference  # nothing lost, nothing extra, same ids


def test_sigterm_drains_and_commits(tmp_path: Path) -> None:
    config = f"""\
store: sqlite:///{tmp_path}/fs.db
flood: null
sources:
  - name: shopfloor
    adapter: simulator
    interval: 5ms
    detect:
      - state_change: {{field: state, normal: [RUNNING]}}
"""
    with DaemonRunner(config, process=True, workdir=tmp_path) as daemon:
        daemon.start()
        # it runs for a while: ticks committed, and posts among them
        wait_for(lambda: int(daemon.checkpoint("shopfloor") or 0) > 50 and
                 daemon.store.count_posts() > 0, 30, "a few hundred ticks")
        daemon.stop()  # SIGTERM; exit status 0
        log = daemon.log()
        store = daemon.store
        events = [json.loads(line)["event"] for line in log.splitlines()
                  if line.startswith("{")]
        assert "signal_received" in events and events[-1] == "daemon_stopped"
        stopped = next(json.loads(line) for line in log.splitlines()
                       if line.startswith("{") and "daemon_stopped" in line)
        checkpoint = int(store.checkpoints()["shopfloor"])
        assert checkpoint > 50
        # every committed tick's posts are there: a restart from the checkpoint adds only
        # later ticks (positions are tick:machine)
        ticks = {int(p.fields.get("tick", -1)) for p in store.feed("general", limit=10_000)}
        assert stopped["posts"] == store.count_posts()
        assert ticks  # the simulator's story has state changes within a few hundred ticks


def test_a_restart_does_not_re_alert_a_raised_threshold(tmp_path: Path) -> None:
    lines = [{"subject": "press-07", "temp": t} for t in (70, 95, 96)]
    (tmp_path / "lines.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    subprocess.run([sys.executable, str(WORKER), str(tmp_path), "3"], timeout=60, check=True)
    more = [*lines, *({"subject": "press-07", "temp": t} for t in (97, 99, 75))]
    (tmp_path / "lines.jsonl").write_text("\n".join(json.dumps(x) for x in more) + "\n")
    subprocess.run([sys.executable, str(WORKER), str(tmp_path), "6"], timeout=60, check=True)
    store = Store.open(f"sqlite:///{tmp_path}/fs.db")
    posts = list(reversed(store.feed("general")))
    store.close()
    assert [p.type for p in posts] == ["metric.limit_exceeded", "metric.limit_cleared"]
    assert posts[1].fields["peak"] == 99  # the peak carried across the restart
