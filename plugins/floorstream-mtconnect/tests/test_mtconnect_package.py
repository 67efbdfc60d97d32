"""The package as a user meets it: installed next to floorstream, found through the entry
point, listed by ``floorstream plugins``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_floorstream_plugins_lists_what_the_package_registers() -> None:
    command = Path(sys.executable).parent / "floorstream"
    out = subprocess.run([str(command), "plugins"], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    block = out[out.index("mtconnect  (floorstream-mtconnect"):].splitlines()[:4]
    assert block[1:] == [
        "    adapters: mtconnect.agent, mtconnect.shdr",
        "    detectors: mtconnect.condition, mtconnect.cycle",
        "    phrases: mtconnect.condition, mtconnect.condition_cleared, "
        "mtconnect.cycle_complete"]
