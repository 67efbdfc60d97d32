"""SIGKILL the daemon twice while it works through 500 files: every file posts exactly once.

Files are moved to done/ only after their posts are committed, and event ids are derived from
the interchange's control numbers, so a file read again after the kill adds nothing.
"""

from __future__ import annotations

from pathlib import Path

from support import DaemonRunner, wait_for

from .make_214 import x12_214
from .support import all_posts

FILES = 500


def _done(inbox: Path) -> int:
    return sum(1 for _ in (inbox / "done").iterdir()) if (inbox / "done").exists() else 0


def test_sigkill_and_restart_during_500_files(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for n in range(FILES):
        (tmp_path / "f.tmp").write_bytes(x12_214(
            n + 1, [("AF", "NS", "20261120", "0800"), ("X1", "NS", "20261121", "0900")],
            pro=f"PRO{n:04d}"))
        (tmp_path / "f.tmp").replace(inbox / f"214_{n:04d}.edi")
    config = f"""
store: sqlite:///{tmp_path}/fs.db
default_team: everyone
pipeline: {{batch_max: 4, batch_wait_ms: 1}}
sources:
  - name: carrier
    adapter: supply.folder
    path: {inbox}
    settle: 0.05
    poll: 0.05
    max_in_flight: 20
"""
    daemon = DaemonRunner(config, process=True, workdir=tmp_path)
    kills = 0
    for threshold in (120, 320):
        daemon.start()
        try:
            wait_for(lambda t=threshold: _done(inbox) >= t, timeout=60)
        finally:
            daemon.kill()
        assert _done(inbox) < FILES, "finished before the kill: the test proved nothing"
        kills += 1
    with daemon:
        daemon.start()
        wait_for(lambda: _done(inbox) == FILES, timeout=90)
        daemon.stop()  # SIGTERM: drains and commits what is in flight
    posts = all_posts(f"sqlite:///{tmp_path}/fs.db")
    assert kills == 2
    assert len(posts) == 2 * FILES
    per_shipment: dict[str, list[str]] = {}
    for post in posts:
        per_shipment.setdefault(post.subject, []).append(post.type)
    assert len(per_shipment) == FILES
    assert all(sorted(types) == ["shipment.status_changed"] * 2
               for types in per_shipment.values())
    done = sorted(p.name for p in (inbox / "done").iterdir())
    assert done == [f"214_{n:04d}.edi" for n in range(FILES)]  # no twin: nothing moved twice
    assert not any(p.is_file() for p in inbox.iterdir())
