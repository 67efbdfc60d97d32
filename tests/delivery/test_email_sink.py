"""The email sink against a real aiosmtpd server: STARTTLS, login, text + HTML, threading."""

from __future__ import annotations

import email
import socket
import ssl
import subprocess
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from floorstream.delivery.outbox import Outbox
from floorstream.delivery.service import DeliveryService
from floorstream.model import Severity
from floorstream.store.store import Store
from support import wait_for

from .helpers import commit, config, make_post


class Inbox:
    def __init__(self) -> None:
        self.messages: list[email.message.Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"


def _auth(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"bot", b"pw-123456")
    return AuthResult(success=ok)


def test_email_starttls_login_and_thread(sqlite_url: str, tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    inbox = Inbox()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(inbox, hostname="127.0.0.1", port=port, tls_context=context,
                            require_starttls=True, authenticator=_auth, auth_required=True)
    controller.start()
    cfg, plugins = config(f"""
store: {sqlite_url}
teams: {{maintenance: {{sinks: [mail]}}}}
sinks:
  - name: mail
    type: email
    host: 127.0.0.1
    port: {port}
    username: bot
    password: ${{SMTP_PASSWORD}}
    from: floorstream@plant.example
    to: [maint@plant.example]
    ca_file: {cert}
""", {"SMTP_PASSWORD": "pw-123456"})
    store = Store.open(sqlite_url)
    alarm = make_post(1, "maintenance", severity=Severity.CRITICAL)
    clear = make_post(2, "maintenance", clears=alarm.id)
    commit(store, [alarm, clear], {"maintenance": ["mail"]})
    service = DeliveryService(cfg, plugins, store, poll=0.02)
    service.start()
    outbox = Outbox(store.engine)
    try:
        wait_for(lambda: outbox.counts() == {"delivered": 2}, what="both mailed")
    finally:
        service.stop()
        store.close()
        controller.stop()
    first, second = inbox.messages
    assert first["Subject"] == "[critical] maintenance post 1"
    assert first["Message-ID"] == f"<{alarm.id}.mail@plant.example>"
    assert second["In-Reply-To"] == first["Message-ID"]
    types = [part.get_content_type() for part in first.walk()]
    assert types == ["multipart/alternative", "text/plain", "text/html"]
    assert len(first["X-Floorstream-Idempotency-Key"]) == 32
