"""``floorstream check --connect`` against real endpoints: a PostgreSQL store, a MariaDB ERP
database, the Mosquitto broker, an SMTP server with STARTTLS and LOGIN, an HTTP webhook; and
the ones that fail (a closed port, a wrong SMTP password, an unknown database): one line each,
ok or the reason, secrets never shown, exit 1 when one failed."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from support.daemon import FLOORSTREAM
from support.http import http_receiver

pytestmark = [pytest.mark.postgres, pytest.mark.mysql, pytest.mark.mqtt]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class _Inbox:
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raise AssertionError("check --connect must not send mail")


def _auth(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"bot", b"pw-123456")
    return AuthResult(success=ok, handled=False)  # handled=True would answer nothing


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    port = _free_port()
    controller = Controller(_Inbox(), hostname="127.0.0.1", port=port, tls_context=context,
                            require_starttls=True, authenticator=_auth, auth_required=True)
    controller.start()
    try:
        yield port, cert
    finally:
        controller.stop()


def test_check_connect_reports_every_connection(pg_url: str, mysql_url: str,
                                                mqtt_broker: tuple[str, int],
                                                smtp: tuple[int, Path], tmp_path: Path) -> None:
    host, port = mqtt_broker
    smtp_port, cert = smtp
    closed = _free_port()
    with http_receiver() as hook:
        config = tmp_path / "fs.yaml"
        config.write_text(textwrap.dedent(f"""\
            store: {pg_url}
            sources:
              - name: line1
                adapter: mqtt
                url: mqtt://{host}:{port}
                topics: ["fstest/check/#"]
              - name: erp
                adapter: erp.table
                url: {mysql_url}
                table: production_order
                mode: cursor
                cursor: write_date
              - name: old-erp
                adapter: erp.table
                url: postgresql+psycopg://postgres@127.0.0.1:{closed}/erp
                table: production_order
                mode: cursor
                cursor: write_date
              - name: idle
                adapter: simulator
                enabled: false
            teams:
              maintenance: {{sinks: [hook, down, mail, wrongpass]}}
            sinks:
              - {{name: hook, type: webhook, url: "${{HOOK_URL}}"}}
              - {{name: down, type: webhook, url: "https://127.0.0.1:{closed}/x/${{TOKEN}}"}}
              - name: mail
                type: email
                host: 127.0.0.1
                port: {smtp_port}
                username: bot
                password: ${{SMTP_PASSWORD}}
                from: floorstream@plant.example
                to: [maint@plant.example]
                ca_file: {cert}
              - name: wrongpass
                type: email
                host: 127.0.0.1
                port: {smtp_port}
                username: bot
                password: wrong-password-1
                from: floorstream@plant.example
                to: [maint@plant.example]
                ca_file: {cert}
            """))
        secret_path = "/hooks/T000/B000/s3cr3t-t0ken"
        env = {"HOOK_URL": hook.url + secret_path, "TOKEN": "tok-abcdef123",
               "SMTP_PASSWORD": "pw-123456"}

        done = subprocess.run([FLOORSTREAM, "check", "--connect", "-c", str(config)],
                              capture_output=True, text=True, timeout=120,
                              env={**os.environ, **env})
        assert hook.requests == [], "check --connect sent a request to a webhook"
    out = done.stdout
    assert done.returncode == 1, done.stdout + done.stderr
    lines = {line.split()[0]: line for line in out.splitlines()
             if line.startswith(("store", "sources.", "sinks."))}
    assert "ok: connected, server" in lines["store"]
    assert "database postgresql+psycopg://postgres@127.0.0.1" in lines["store"]
    assert "mqtt broker" in lines["sources.line1"] and "ok: MQTT CONNACK" in lines["sources.line1"]
    assert "database mysql+pymysql://root@127.0.0.1" in lines["sources.erp"]
    assert "ok: connected" in lines["sources.erp"]
    assert "error:" in lines["sources.old-erp"]
    assert "sources.idle" not in lines  # disabled: nothing to try
    assert "ok: TCP connected (no request sent)" in lines["sinks.hook"]
    assert "error:" in lines["sinks.down"] and "refused" in lines["sinks.down"].lower()
    assert "ok: EHLO, STARTTLS, LOGIN as bot (no mail sent)" in lines["sinks.mail"]
    assert "error: SMTPAuthenticationError" in lines["sinks.wrongpass"]
    assert "connections tried: 5 ok, 3 failed" in out
    for secret in ("s3cr3t-t0ken", "tok-abcdef123", "pw-123456", "wrong-password-1"):
        assert secret not in out and secret not in done.stderr


def test_check_connect_all_ok_exits_0(tmp_path: Path, mqtt_broker: tuple[str, int]) -> None:
    host, port = mqtt_broker
    config = tmp_path / "fs.yaml"
    config.write_text(textwrap.dedent(f"""\
        store: sqlite:///{tmp_path}/fs.db
        sources:
          - {{name: line1, adapter: mqtt, url: "mqtt://{host}:{port}", topics: ["fstest/c/#"]}}
        """))
    done = subprocess.run([FLOORSTREAM, "check", "--connect", "-c", str(config)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ok: will be created" in done.stdout
    assert "2 connections tried: 2 ok, 0 failed" in done.stdout
    assert not (tmp_path / "fs.db").exists()  # the check creates no store
