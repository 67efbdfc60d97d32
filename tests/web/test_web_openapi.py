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
    STATUSES.setdefault(case.operation.label, set()).add(response.status_code)


STATUSES: dict[str, set[int]] = {}


def test_the_fuzzing_got_past_authentication() -> None:
    """Runs after the fuzzing (file order): the token let requests in, or the run above
    fuzzed nothing but the 401 answer."""
    assert STATUSES, "run with the fuzzing test"
    answered = {code for codes in STATUSES.values() for code in codes}
    assert 200 in answered and 401 not in answered, STATUSES
