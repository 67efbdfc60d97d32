"""Fixtures of the OPC UA plugin's tests: one real server per module, and client
certificates made once per session (helpers in :mod:`opcua_support`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from floorstream_opcua.session import APPLICATION_URI
from opcua_support import SERVER_URI, OpcuaServer, make_certificate

from support.logging_fixture import logging_as_before  # noqa: F401  # autouse

#: the user the module server knows (it also takes anonymous sessions over security None)
USER = ("plant", "s3cret")


@pytest.fixture(scope="module")
def server(request: pytest.FixtureRequest,
           certificates: dict[str, tuple[Path, Path]]) -> Iterator[OpcuaServer]:
    """One server for a module's tests, on the module's ``OPCUA_PORT`` if it has one (a
    conformance class names its URL before fixtures run); each test writes what it needs.
    It offers security None with anonymous sessions, and Basic256Sha256 (Sign,
    SignAndEncrypt), Aes128_Sha256_RsaOaep and Aes256_Sha256_RsaPss (SignAndEncrypt) with
    the user ``USER``."""
    cert, key = certificates["server"]
    running = OpcuaServer(getattr(request.module, "OPCUA_PORT", None), "--cert", str(cert),
                          "--key", str(key), "--user", ":".join(USER), "--open").start()
    yield running
    running.stop()


@pytest.fixture(scope="session")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    directory = tmp_path_factory.mktemp("opcua-pki")
    return {"server": make_certificate(directory, "server", SERVER_URI),
            "client": make_certificate(directory, "client", APPLICATION_URI),
            "stranger": make_certificate(directory, "stranger", SERVER_URI)}
