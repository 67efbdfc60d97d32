"""Helpers of the OPC UA plugin's tests: the real server as a process (:class:`OpcuaServer`),
a client that changes values and raises alarms the way a PLC program would, through OPC UA
itself (:class:`Plc`), the adapter on a thread against a recording emitter
(:class:`Following`), and application certificates made with ``cryptography``.

floorstream's shared test helpers (``support``: wait_for, sentinel, DaemonRunner) come from the
checkout's ``tests/`` folder, put on ``sys.path`` here.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import socket
import sys
import threading
from pathlib import Path
from typing import Any

from asyncua import ua
from asyncua.client.client import Client
from asyncua.crypto import security_policies
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests"))  # floorstream's support

import opcua_server
from floorstream_opcua import OpcuaAdapter
from floorstream_opcua.session import APPLICATION_URI

from floorstream.plugin import AdapterContext
from floorstream.plugins import build_plugins
from floorstream.testing import RecordingEmitter
from support.waiting import wait_for

SERVER_URI = "urn:floorstream:test:server"
STATE, TEMP, COUNT = "ns=2;s=Press07.State", "ns=2;s=Press07.SpindleTemp", "ns=2;s=Press07.Count"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class OpcuaServer:
    """The test server (``opcua_server.main``) on a thread with its own event loop:
    :meth:`stop` and :meth:`start` are a PLC reboot (the address space starts again from its
    initial values, the sessions and subscriptions are gone). A thread, not a process: the
    interpreter already imported asyncua for the adapter, and a server's start is then only
    its address space."""

    def __init__(self, port: int | None = None, *args: str) -> None:
        self.port = port or free_port()
        self.args = list(args)
        self.thread: threading.Thread | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.halt: asyncio.Event | None = None
        self.error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"opc.tcp://127.0.0.1:{self.port}/floorstream/"

    def start(self, timeout: float = 30.0) -> OpcuaServer:
        options = opcua_server.parser().parse_args(["--port", str(self.port), *self.args])
        ready = threading.Event()

        async def serve() -> None:
            self.loop, self.halt = asyncio.get_running_loop(), asyncio.Event()
            try:
                await opcua_server.main(options, stop=self.halt, ready=ready.set)
            except BaseException as exc:  # a failed start: told to the test, not lost
                self.error = exc
                ready.set()

        self.error = None
        self.thread = threading.Thread(target=asyncio.run, args=(serve(),),
                                       name=f"opcua-server-{self.port}", daemon=True)
        self.thread.start()
        if not ready.wait(timeout):
            raise AssertionError(f"the OPC UA test server did not start in {timeout} s")
        if self.error is not None:
            raise AssertionError(f"the OPC UA test server failed: {self.error!r}")
        return self

    def stop(self) -> None:
        thread, self.thread = self.thread, None
        if thread is None or not thread.is_alive():
            return
        assert self.loop is not None and self.halt is not None
        self.loop.call_soon_threadsafe(self.halt.set)
        thread.join(15)
        assert not thread.is_alive(), "the OPC UA test server did not stop"


class Plc:
    """Changes the server's values and alarms over OPC UA, like the PLC program would."""

    def __init__(self, url: str, *, certificate: tuple[Path, Path] | None = None,
                 user: tuple[str, str] | None = None) -> None:
        self.url = url
        self.certificate = certificate
        self.user = user

    def write(self, node: str, value: Any, variant: ua.VariantType | None = None) -> None:
        async def go(client: Client) -> None:
            target = client.get_node(node)
            kind = variant or await target.read_data_type_as_variant_type()
            await target.write_value(ua.DataValue(ua.Variant(value, kind)))
        self._run(go)

    def write_status(self, node: str, status: int) -> None:
        """A value with a bad status code and no value, as a PLC reports a lost sensor."""
        async def go(client: Client) -> None:
            await client.get_node(node).write_value(
                ua.DataValue(StatusCode=ua.StatusCode(status)))
        self._run(go)

    def alarm(self, active: bool, acked: bool = False, severity: int = 900,
              message: str = "Spindle overheated") -> None:
        async def go(client: Client) -> None:
            await client.get_node("ns=2;s=Press07").call_method(
                "2:SetAlarm", active, acked, ua.Variant(severity, ua.VariantType.UInt16),
                message)
        self._run(go)

    def _run(self, action: Any) -> None:
        async def main() -> None:
            client = Client(self.url, timeout=10)
            client.application_uri = APPLICATION_URI
            if self.certificate is not None:
                await client.set_security(
                    security_policies.SecurityPolicyBasic256Sha256,
                    str(self.certificate[0]), str(self.certificate[1]),
                    mode=ua.MessageSecurityMode.SignAndEncrypt)
            if self.user is not None:
                client.set_user(self.user[0])
                client.set_password(self.user[1])
            async with client:
                await action(client)
        asyncio.run(main())


class Following:
    """An :class:`OpcuaAdapter` running on a thread against a recording emitter."""

    def __init__(self, config: dict[str, Any], checkpoint: str | None = None) -> None:
        self.config = OpcuaAdapter.config_model.model_validate(
            {"name": "line1", "adapter": "opcua", "publishing_interval": 0.05,
             "sampling_interval": 0.02, "reconnect": {"min_delay": 0.2, "max_delay": 0.5},
             **config})
        self.emitter = RecordingEmitter()
        self.context = AdapterContext("line1", checkpoint,
                                      build_plugins(load_entry_points=False).decoders)
        self.adapter = OpcuaAdapter(self.config, self.context)
        self.thread = threading.Thread(target=self.adapter.run,
                                       args=(self.emitter, self.emitter.stop), daemon=True)

    def __enter__(self) -> Following:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self.emitter.stop.set()
        self.thread.join(15)
        assert not self.thread.is_alive(), "the adapter did not stop"

    def values(self, field: str) -> list[Any]:
        return [c.data[field] for c in self.emitter.changes if field in c.data]

    def wait_value(self, field: str, value: Any, timeout: float = 20.0) -> None:
        wait_for(lambda: value in self.values(field), timeout, f"{field}={value!r}",
                 interval=0.02)


# -- certificates --------------------------------------------------------------------------


def make_certificate(directory: Path, name: str, uri: str) -> tuple[Path, Path]:
    """A self-signed RSA 2048 application certificate (DER) and its key (PEM), with the
    application URI and the host in subjectAltName, as OPC UA wants them."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "floorstream tests")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([
            x509.UniformResourceIdentifier(uri), x509.DNSName("localhost"),
            x509.DNSName(socket.gethostname()),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=True, key_encipherment=True,
            data_encipherment=True, key_agreement=False, key_cert_sign=False, crl_sign=False,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH,
                                              x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]),
                       critical=False)
        .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / f"{name}.der", directory / f"{name}.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.DER))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path
