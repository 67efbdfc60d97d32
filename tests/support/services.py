"""Where the test services are, and what a test owes before using one.

URLs come from the environment with the local defaults. :func:`require_service` skips a test
whose service is not reachable, or fails it with ``CI=true`` (in CI a missing service is a
broken build, never a silent pass); :func:`require_marker` fails a test that uses a service
without its marker, so ``pytest -m "not mysql"`` really leaves out everything needing MariaDB.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlparse

import pytest

__all__ = ["IN_CI", "MQTT_URL", "MYSQL_URL", "PG_URL", "missing", "mysql_database",
           "require_marker", "require_service"]

PG_URL = os.environ.get("FLOORSTREAM_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
MYSQL_URL = os.environ.get("FLOORSTREAM_TEST_MYSQL", "mysql+pymysql://root@127.0.0.1:3306/test")
MQTT_URL = os.environ.get("FLOORSTREAM_TEST_MQTT", "mqtt://127.0.0.1:1883")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def missing(message: str) -> None:
    """A service (or a tool) the test needs is not there: skip, or fail in CI."""
    if IN_CI:
        pytest.fail(message + " (CI=true: a missing service is a failure)", pytrace=False)
    pytest.skip(message)


def require_marker(request: pytest.FixtureRequest, marker: str, service: str) -> None:
    """Fail a test that uses ``service`` without carrying ``marker``."""
    if request.node.get_closest_marker(marker) is None:
        pytest.fail(f"{request.node.nodeid} uses {service} but is not marked "
                    f"@pytest.mark.{marker} (a module's pytestmark will do), so "
                    f"`pytest -m 'not {marker}'` would still run it", pytrace=False)


def require_service(url: str, default_port: int, name: str) -> None:
    parsed = urlparse(url.replace("+psycopg", "").replace("+pymysql", ""))
    host, port = parsed.hostname or "127.0.0.1", parsed.port or default_port
    if not _reachable(host, port):
        missing(f"{name} is not reachable at {host}:{port}")


@contextmanager
def mysql_database(charset: str = "utf8mb4", scheme: str | None = None) -> Iterator[str]:
    """A fresh MariaDB database created with ``charset`` as its default, dropped afterwards:
    its URL (``scheme``: another driver name than :data:`MYSQL_URL`'s, ``mariadb+pymysql``
    say), asking the driver for utf8mb4. The caller requires the service and its marker."""
    from sqlalchemy import create_engine, text

    name = f"fs_{uuid.uuid4().hex[:12]}"
    admin = create_engine(MYSQL_URL)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET {charset}"))
    try:
        url = urlparse(MYSQL_URL)._replace(path=f"/{name}")
        if scheme is not None:
            url = url._replace(scheme=scheme)
        yield url.geturl() + "?charset=utf8mb4"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        admin.dispose()
