"""Opening an OPC UA session as the source's config says: the user token, the security
policy and mode with the client's certificate, and the server's certificate checked against
the trust list before anything else is sent. The source (:mod:`.session`) and
``floorstream check`` (:mod:`.probe`) open their sessions here.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from asyncua import ua
from asyncua.client.client import Client
from asyncua.crypto import security_policies
from asyncua.ua.uaerrors import UaStatusCodeError
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from .config import OpcuaConfig

__all__ = ["APPLICATION_URI", "close_client", "open_client", "reason"]

#: the client's application URI; a client certificate must carry it as its SAN URI
APPLICATION_URI = "urn:floorstream:opcua:client"

_POLICIES: dict[str, type[security_policies.SecurityPolicy]] = {
    "Basic256Sha256": security_policies.SecurityPolicyBasic256Sha256,
    "Aes128_Sha256_RsaOaep": security_policies.SecurityPolicyAes128Sha256RsaOaep,
    "Aes256_Sha256_RsaPss": security_policies.SecurityPolicyAes256Sha256RsaPss,
}
_MODES = {"Sign": ua.MessageSecurityMode.Sign,
          "SignAndEncrypt": ua.MessageSecurityMode.SignAndEncrypt}


async def open_client(config: OpcuaConfig, log: Any) -> Client:
    """A connected client (session created and activated); raises with a reason people can
    read when the server cannot be reached, refuses us, or is not trusted."""
    client = Client(config.url, timeout=config.timeout, watchdog_intervall=1.0)
    client.application_uri = APPLICATION_URI
    client.name = client.description = f"floorstream {config.name}"
    client.session_timeout = 60_000
    if config.username is not None:
        client.set_user(config.username)
    if config.password is not None:
        client.set_password(config.password)
    security = config.security
    if security.policy != "None":
        policy = _POLICIES[security.policy]
        mode = _MODES[security.mode]
        server_cert = await _server_certificate(client, config, log, policy, mode)
        await client.set_security(
            policy, certificate=str(security.certificate),
            private_key=str(security.private_key),
            private_key_password=security.private_key_password,
            server_certificate=server_cert, mode=mode)
    await client.connect(auto_reconnect=False)
    return client


async def close_client(client: Client) -> None:
    try:
        await asyncio.wait_for(client.disconnect(), 2.0)
    except Exception:  # the server is gone: nothing to close politely
        with contextlib.suppress(Exception):
            client.disconnect_socket()


async def _server_certificate(client: Client, config: OpcuaConfig, log: Any,
                              policy: type[security_policies.SecurityPolicy],
                              mode: ua.MessageSecurityMode) -> bytes:
    """The server's certificate for this policy and mode, checked against ``trust``."""
    endpoints = await client.connect_and_get_server_endpoints()
    try:
        endpoint = Client.find_endpoint(endpoints, mode, policy.URI)
    except ValueError:
        offered = sorted({f"{e.SecurityPolicyUri.rsplit('#', 1)[-1]}/"
                          f"{e.SecurityMode.name}" for e in endpoints})
        raise ConnectionError(f"the server offers no {config.security.policy}/"
                              f"{config.security.mode} endpoint (it offers "
                              f"{', '.join(offered)})") from None
    der = _first_certificate(endpoint.ServerCertificate)
    trusted = _load_trust(config.security.trust)
    if not trusted:
        log.warning("opcua_server_certificate_not_checked", url=config.url,
                    reason="security.trust is empty: any server certificate is accepted")
    elif not _is_trusted(der, trusted):
        subject = x509.load_der_x509_certificate(der).subject.rfc4514_string()
        raise ConnectionError(f"the server's certificate ({subject}) is not in "
                              "security.trust")
    return der


def _first_certificate(chain: bytes) -> bytes:
    """A server may send its chain; the first certificate is its own."""
    cert = x509.load_der_x509_certificate(chain[:_der_length(chain)])
    return cert.public_bytes(Encoding.DER)


def _der_length(data: bytes) -> int:
    if len(data) < 2 or data[1] < 0x80:
        return len(data) if len(data) < 2 else 2 + data[1]
    count = data[1] & 0x7F
    return 2 + count + int.from_bytes(data[2:2 + count], "big")


def _load_trust(paths: list[Path]) -> list[x509.Certificate]:
    certs: list[x509.Certificate] = []
    for path in paths:
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in (
            ".der", ".pem", ".crt", ".cer")) if path.is_dir() else [path]
        for file in files:
            data = file.read_bytes()
            certs.append(x509.load_pem_x509_certificate(data) if b"-----BEGIN" in data
                         else x509.load_der_x509_certificate(data))
    return certs


def _is_trusted(der: bytes, trusted: list[x509.Certificate]) -> bool:
    """The certificate itself is trusted, or it was issued by a trusted one (a plant CA)."""
    cert = x509.load_der_x509_certificate(der)
    now = datetime.now(UTC)
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        return False
    for anchor in trusted:
        if anchor.public_bytes(Encoding.DER) == der:
            return True
        try:
            cert.verify_directly_issued_by(anchor)
        except Exception:  # another issuer, another key type: not this anchor
            continue
        return True
    return False


def reason(exc: BaseException) -> str:
    """An exception as one line people can read (asyncua's status errors name the code)."""
    if isinstance(exc, UaStatusCodeError):
        return f"{type(exc).__name__}: {exc}"
    if isinstance(exc, socket.gaierror | OSError) and not str(exc):
        return type(exc).__name__
    return f"{type(exc).__name__}: {exc}".rstrip(": ")
