"""The other end of the paho pin: the fast path on the oldest paho-mqtt it claims to support.

The whole suite runs on the installed paho (the top of the range, ``fastpath.TESTED_PAHO``).
This test builds a throw-away venv holding only ``paho-mqtt==<floor>``, lets it see the
checkout's environment behind it (a ``.pth`` that adds this interpreter's site-packages after
its own, so the floor paho wins), and runs there the capability check, the parser tests against
paho's own reader, and the three client modes end to end on the local Mosquitto. ``make
test-paho-floor`` runs just this; ``make test`` runs it with everything else.

Installing needs PyPI (or a configured local index): offline it skips, with ``CI=true`` it fails.
"""

from __future__ import annotations

import os
import site
import subprocess
import sys
from pathlib import Path

import pytest

from floorstream.adapters.mqtt import fastpath

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
FLOOR_TESTS = ["tests/test_mqtt_paho_capability.py", "tests/test_mqtt_fastpath.py",
               "tests/test_mqtt_paho_fallback.py"]
_OFFLINE = ("NewConnectionError", "Temporary failure in name resolution",
            "Name or service not known", "Network is unreachable", "ProxyError",
            "ConnectTimeout", "Read timed out", "(from versions: none)")


def _install_floor(venv: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=60)
    python = venv / "bin" / "python"
    requirement = f"paho-mqtt=={fastpath.PAHO_FLOOR}"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
         "--disable-pip-version-check", "--retries", "1", "--timeout", "15", requirement],
        capture_output=True, text=True, timeout=120)
    if install.returncode != 0:
        message = f"pip could not install {requirement}:\n{install.stderr[-2000:]}"
        if IN_CI or not any(marker in install.stderr for marker in _OFFLINE):
            pytest.fail(message)
        pytest.skip(f"offline? {message}")
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True).stdout.strip()
    # after the venv's own site-packages: floorstream, pytest and the rest from here, paho not
    outer = [p for p in site.getsitepackages() if Path(p).is_dir()]
    Path(purelib, "zz_floorstream_checkout.pth").write_text(
        "".join(f"import site; site.addsitedir({p!r})\n" for p in outer))
    return python


def test_fast_path_on_the_oldest_paho_of_the_pin(tmp_path: Path) -> None:
    python = _install_floor(tmp_path / "venv")
    seen = subprocess.run(
        [str(python), "-c", "import paho.mqtt, floorstream; print(paho.mqtt.__version__)"],
        capture_output=True, text=True, cwd=ROOT)
    assert seen.stdout.strip() == fastpath.PAHO_FLOOR, seen.stderr
    env = {**os.environ, "FLOORSTREAM_EXPECT_PAHO": fastpath.PAHO_FLOOR}
    run = subprocess.run(
        [str(python), "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", *FLOOR_TESTS],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=240)
    report = run.stdout[-6000:] + run.stderr[-2000:]
    assert run.returncode == 0, report
    assert " passed" in run.stdout, report
    # nothing skipped for want of a fast path; a missing broker skips as everywhere (not in CI)
    skips = [line for line in run.stdout.splitlines() if line.startswith("SKIPPED")]
    assert all("not reachable" in line for line in skips), report
