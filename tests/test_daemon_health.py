"""The daemon's health endpoint and its logs, on a real daemon with the simulator source."""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.request
from pathlib import Path

from floorstream.logs import configure_logging
from support import DaemonRunner

CONFIG = """
store: sqlite:///{db}
health: {{port: 0}}
sources:
  - name: sim
    adapter: simulator
    interval: 1ms
    readings: 50
    detect:
      - state_change: {{field: state}}
"""


def _get(url: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _get_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_healthz_reports_pipeline_and_sources(tmp_path: Path) -> None:
    with DaemonRunner(CONFIG.format(db=tmp_path / "fs.db")) as runner:
        runner.start()
        daemon = runner.daemon
        assert daemon is not None
        url = f"http://127.0.0.1:{daemon.health_server.port}/healthz"
        runner.wait_status("sim", "finished")
        status, body = _get(url)
        assert status == 200
        assert body["status"] == "ok"
        assert body["sources"]["sim"]["state"] == "finished"  # type: ignore[index]
        assert body["committed"]["batches"] >= 1  # type: ignore[index]
        assert _get_status(url.replace("healthz", "nope")) == 404


def test_healthz_says_503_when_the_pipeline_is_down(tmp_path: Path) -> None:
    with DaemonRunner(CONFIG.format(db=tmp_path / "fs.db")) as runner:
        runner.start()
        daemon = runner.daemon
        assert daemon is not None
        port = daemon.health_server.port
        daemon.pipeline.stop()  # the pipeline thread ends; the endpoint must not say "ok" any more
        status, body = _get(f"http://127.0.0.1:{port}/healthz")
        assert status == 503
        assert body["status"] == "failing"


def test_json_logs_redact_values_from_the_environment() -> None:
    out = io.StringIO()
    configure_logging("info", "json", secrets={"s3cr3t-token-value"}, stream=out)
    import structlog

    structlog.get_logger("t").info("delivering", url="https://hooks.example/s3cr3t-token-value")
    line = json.loads(out.getvalue().strip().splitlines()[-1])
    assert line["event"] == "delivering"
    assert "s3cr3t" not in out.getvalue()
    assert line["url"] == "https://hooks.example/***"
    assert line["level"] == "info" and "timestamp" in line
