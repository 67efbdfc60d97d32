"""An autouse fixture for every test suite of the checkout (floorstream's and its plugins').

Each test leaves structlog as it found it: a test that ran the CLI (which sends the log to the
``sys.stderr`` of the moment, pytest's capture) must not leave the next test's daemon writing
to a closed file. A ``conftest.py`` takes it with ``from support.logging_fixture import
logging_as_before``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import structlog

__all__ = ["logging_as_before"]


@pytest.fixture(autouse=True)
def logging_as_before() -> Iterator[None]:
    configured, saved = structlog.is_configured(), structlog.get_config()
    yield
    if configured:
        structlog.configure(**saved)
    else:
        structlog.reset_defaults()
