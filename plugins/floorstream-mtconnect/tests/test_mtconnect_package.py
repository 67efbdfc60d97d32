"""The package as a user meets it: installed next to floorstream, found through the entry
point, listed by ``floorstream plugins``."""

from __future__ import annotations

import pytest
import structlog

from floorstream.cli import main


def test_floorstream_plugins_lists_what_the_package_registers(
        capsys: pytest.CaptureFixture[str]) -> None:
    configured, saved = structlog.is_configured(), structlog.get_config()
    try:
        assert main(["plugins"]) == 0
    finally:  # the CLI may point the log at this test's captured stderr: not the next test's
        if configured:
            structlog.configure(**saved)
        else:
            structlog.reset_defaults()
    out = capsys.readouterr().out
    block = out[out.index("mtconnect  (floorstream-mtconnect"):].splitlines()[:4]
    assert block[1:] == [
        "    adapters: mtconnect.agent, mtconnect.shdr",
        "    detectors: mtconnect.condition, mtconnect.cycle",
        "    phrases: mtconnect.condition, mtconnect.condition_cleared, "
        "mtconnect.cycle_complete"]
