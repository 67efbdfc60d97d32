"""The JSON API's OpenAPI description, fuzzed with schemathesis: whatever comes in, no 5xx.

A short run (a few examples per operation) against the app in process on a SQLite store with
posts, authenticated by an API token, so the handlers behind the authentication are fuzzed
too; the longer runs are for a developer's machine (``SCHEMATHESIS_EXAMPLES``).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from floorstream.api import Stream
from floorstream.plugins import build_plugins
from floorstream.web import create_app

from .websupport import TOKEN, web_config

_DIR = Path(tempfile.mkdtemp(prefix="fs-web-openapi-"))
_CONFIG = web_config(_DIR)
_STREAM = Stream(_CONFIG, build_plugins())
for _n, (_subject, _severity) in enumerate((("press-07", "critical"), ("PO 4500012", "info"))):
    _STREAM.publish(source="presses", subject=_subject, type="machine.state_changed",
                    summary=f"{_subject} <b>changed</b>", severity=_severity, key=str(_n))
APP = create_app(_CONFIG, stream=_STREAM)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)
EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "12"))


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_no_server_errors(case: schemathesis.Case) -> None:
    if case.path == "/events":
        return  # an endless stream: its parameters are checked by test_web_live
    headers = {**(case.headers or {}), "Authorization": f"Bearer {TOKEN}"}
    response = case.call(headers=headers)
    case.validate_response(response, checks=[not_a_server_error])
    # the token lets every case in, or the run above would fuzz nothing but the 401 answer
    assert response.status_code != 401, (case.operation.label, response.text)


def test_the_token_reaches_the_handlers() -> None:
    """The counterpart of the per-case check, in one test so it holds whichever worker runs
    it (pytest-xdist spreads the fuzzing cases): with the token a plain read of every
    parameterless GET operation gets past the authentication (200 for most; 409 where the
    person has nothing of that kind), without it 401."""
    client = TestClient(APP)
    paths = [path for path, item in schema.raw_schema["paths"].items()
             if "get" in item and "{" not in path and path != "/events"]
    with_token = {path: client.get(path, headers={"Authorization": f"Bearer {TOKEN}"}).status_code
                  for path in paths}
    without = {path: client.get(path).status_code for path in paths}
    assert 200 in with_token.values() and not {401, 403} & set(with_token.values()), with_token
    assert all(code < 500 for code in with_token.values()), with_token
    assert set(without.values()) == {401}, without
