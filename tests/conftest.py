"""Fixtures for tests that talk to real services.

URLs come from the environment with the local defaults. Outside CI a missing service skips the
tests that need it; with CI=true it fails them, so a broken service is never a silent pass
(``tests/test_support.py`` proves both). Every test gets its own database / topic prefix, so
tests never see each other's data.

A test that uses a service carries its marker (``postgres``, ``mysql``, ``mqtt``; a module's
``pytestmark`` will do), so ``pytest -m "not mysql"`` leaves out exactly the tests that need
MariaDB. The service fixtures refuse to serve an unmarked test, so a marker cannot be forgotten.
Shared helpers live in ``tests/support/``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from urllib.parse import urlparse

import pytest
from sqlalchemy import create_engine, text

from support.logging_fixture import logging_as_before
from support.services import (
    IN_CI,
    MQTT_URL,
    MYSQL_URL,
    PG_URL,
    mysql_database,
    require_marker,
    require_service,
)

__all__ = ["IN_CI", "MQTT_URL", "MYSQL_URL", "PG_URL", "logging_as_before", "require_marker",
           "require_service"]


def _with_database(url: str, name: str) -> str:
    parsed = urlparse(url)
    return parsed._replace(path=f"/{name}").geturl()


@pytest.fixture
def pg_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh PostgreSQL database for this test, dropped afterwards."""
    require_marker(request, "postgres", "PostgreSQL")
    require_service(PG_URL, 5432, "PostgreSQL")
    name = f"fs_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield _with_database(PG_URL, name)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def mysql_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh MariaDB database for this test, dropped afterwards."""
    require_marker(request, "mysql", "MariaDB")
    require_service(MYSQL_URL, 3306, "MariaDB")
    with mysql_database() as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: object) -> str:
    return f"sqlite:///{tmp_path}/floorstream.db"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres),
                        pytest.param("mysql", marks=pytest.mark.mysql)])
def store_url(request: pytest.FixtureRequest) -> str:
    """The same test on SQLite, PostgreSQL and MariaDB."""
    fixture = {"sqlite": "sqlite_url", "postgres": "pg_url", "mysql": "mysql_url"}[request.param]
    url: str = request.getfixturevalue(fixture)
    return url


@pytest.fixture
def mqtt_broker(request: pytest.FixtureRequest) -> tuple[str, int]:
    """(host, port) of the local Mosquitto."""
    require_marker(request, "mqtt", "Mosquitto")
    require_service(MQTT_URL, 1883, "Mosquitto")
    parsed = urlparse(MQTT_URL)
    return parsed.hostname or "127.0.0.1", parsed.port or 1883


@pytest.fixture
def topic_prefix() -> str:
    """A topic prefix no other test uses."""
    return f"fstest/{uuid.uuid4().hex[:10]}"
