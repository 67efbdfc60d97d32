"""``floorstream demo``: the new user's first command, on nothing but SQLite."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

FLOORSTREAM = str(Path(sys.executable).parent / "floorstream")


def test_demo_runs_the_pipeline_and_prints_feeds_and_next_steps(tmp_path: Path) -> None:
    done = subprocess.run([FLOORSTREAM, "demo", "--dir", str(tmp_path / "demo"),
                           "--seconds", "2"], capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    for team in ("maintenance", "production", "planning"):
        assert f"── {team} (" in out
    maintenance = out.split("── maintenance (")[1].split("\n── ")[0]
    assert "°C" in maintenance or "stopped" in maintenance or "fault" in maintenance, out
    assert "Next steps:" in out and "floorstream check -c" in out and "floorstream run -c" in out
    config = tmp_path / "demo" / "floorstream.yaml"
    assert config.exists()
    checked = subprocess.run([FLOORSTREAM, "check", "--offline", "-c", str(config)],
                             capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stderr  # the config it leaves behind is valid
