"""The shared test helpers (``tests/support``) and the service rules of ``tests/conftest.py``:
in CI a missing service fails the tests that need it (never a silent skip), outside CI it skips
them, and a test that uses a service without its marker fails."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from support import http_receiver, sentinel, wait_for

ROOT = Path(__file__).resolve().parent.parent
PROBE = os.environ.get("FS_SUPPORT_PROBE") == "1"


# -- waiting ----------------------------------------------------------------------------------

def test_wait_for_returns_the_first_truthy_value_and_fails_with_what_it_waited_for() -> None:
    calls = iter([None, [], [3]])
    assert wait_for(lambda: next(calls), interval=0.001) == [3]
    started = time.monotonic()
    with pytest.raises(AssertionError, match=r"timed out after 0.2s waiting for the moon"):
        wait_for(lambda: 0, 0.2, "the moon", interval=0.01)
    assert time.monotonic() - started < 2


def test_sentinel_sends_once_then_waits_for_it() -> None:
    sent: list[str] = []
    arrived = iter([False, False, True])
    assert sentinel(lambda: sent.append("marker"), lambda: next(arrived)) is True
    assert sent == ["marker"]


# -- the HTTP receiver ------------------------------------------------------------------------

def _call(url: str, body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, data=body, method="POST" if body else "GET",
                                     headers={"X-Test": "1"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def test_http_receiver_records_requests_and_answers_as_told() -> None:
    with http_receiver() as server:
        assert _call(f"{server.url}/hook", b'{"n": 1}')[0] == 200
        server.status, server.retry_after, server.body = 429, "7", b'{"slow": "down"}'
        status, headers, body = _call(f"{server.url}/hook", b'{"n": 2}')
        assert (status, headers["Retry-After"], json.loads(body)) == (429, "7", {"slow": "down"})
        server.reply = lambda r: (200, {"ETag": '"1"'}, r.query["cursor"].encode())
        status, headers, body = _call(f"{server.url}/events?cursor=42")
        assert (status, headers["ETag"], body) == (200, '"1"', b"42")
    assert [(r.method, r.path) for r in server.requests] == [
        ("POST", "/hook"), ("POST", "/hook"), ("GET", "/events?cursor=42")]
    assert server.requests[1].json == {"n": 2} and server.requests[0].headers["x-test"] == "1"
    assert [r.path for r in server.ok()] == ["/hook", "/events?cursor=42"]
    assert server.refused == 1


# -- service rules ----------------------------------------------------------------------------

@pytest.mark.postgres
@pytest.mark.mysql
@pytest.mark.mqtt
def test_service_fixtures(pg_url: str, mysql_url: str, mqtt_broker: tuple[str, int]) -> None:
    """Each service fixture gives this test its own database / the broker (also the probe
    the next test runs with the services pointed at a closed port)."""
    assert pg_url.rsplit("/", 1)[1].startswith("fs_")
    assert "/fs_" in mysql_url
    with socket.create_connection(mqtt_broker, timeout=5):
        pass


@pytest.fixture
def unmarked(request: pytest.FixtureRequest) -> None:
    if PROBE:
        request.getfixturevalue("pg_url")


def test_unmarked_fixture_use(unmarked: None) -> None:
    """Only meaningful in the probe run: the fixture asks for pg_url, the test has no marker."""
    if not PROBE:
        pytest.skip("a probe for test_missing_services_fail_in_ci_and_skip_outside_and_"
                    "markers_are_required")


def _pytest(tests: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    environ = {**os.environ, "FS_SUPPORT_PROBE": "1",
               "FLOORSTREAM_TEST_PG": f"postgresql+psycopg://postgres@127.0.0.1:{closed}/test",
               "FLOORSTREAM_TEST_MYSQL": f"mysql+pymysql://root@127.0.0.1:{closed}/test",
               "FLOORSTREAM_TEST_MQTT": f"mqtt://127.0.0.1:{closed}", **env}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rfs", "-p", "no:cacheprovider",
                           *(f"tests/test_support.py::{t}" for t in tests)],
                          capture_output=True, text=True, cwd=ROOT, env=environ, timeout=120)


def test_missing_services_fail_in_ci_and_skip_outside_and_markers_are_required() -> None:
    in_ci = _pytest(["test_service_fixtures"], CI="true")
    assert in_ci.returncode == 1, in_ci.stdout[-3000:]  # an error in the fixture: a failure
    assert "1 error" in in_ci.stdout and "skipped" not in in_ci.stdout, in_ci.stdout[-3000:]
    assert "a missing service is a failure" in in_ci.stdout
    outside = _pytest(["test_service_fixtures", "test_unmarked_fixture_use"], CI="")
    assert outside.returncode == 1, outside.stdout[-3000:]
    assert "1 skipped" in outside.stdout and "not reachable" in outside.stdout
    # the marker is checked before the service is looked for
    assert "uses PostgreSQL but is not marked @pytest.mark.postgres" in outside.stdout
