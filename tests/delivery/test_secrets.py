"""Webhook URLs, tokens and passwords from ${ENV} never reach last_error, logs or `check`."""

from __future__ import annotations

import io
import socket
from pathlib import Path

import pytest

from floorstream.cli import main
from floorstream.delivery.outbox import Outbox
from floorstream.delivery.service import DeliveryService
from floorstream.logs import configure_logging
from floorstream.store.store import Store
from support import http_receiver, wait_for

from .helpers import commit, config, make_post

SECRET = "T0KEN-s3cr3t-9f8e7d"

CONFIG = """
store: {store}
teams:
  maintenance: {{sinks: [chat, mail]}}
sinks:
  - name: chat
    type: webhook
    url: ${{CHAT_URL}}
    format: slack
    token: ${{CHAT_TOKEN}}
    retry: {{initial: 10ms, max_delay: 20ms, jitter: 1ms, max_attempts: 2}}
  - name: mail
    type: email
    host: 127.0.0.1
    port: {closed_port}
    username: bot
    password: ${{SMTP_PASSWORD}}
    from: floorstream@example.com
    to: [ops@example.com]
    retry: {{initial: 10ms, max_delay: 20ms, jitter: 1ms, max_attempts: 2}}
"""


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_secrets_stay_out_of_errors_and_logs(sqlite_url: str) -> None:
    log = io.StringIO()
    with http_receiver() as rec:
        url = rec.url
        # the server echoes the request path (which holds the secret) in its error body
        rec.reply = lambda r: (500, {}, f'{{"error": "bad hook {r.path}"}}'.encode())
        env = {"CHAT_URL": f"{url}/hooks/{SECRET}", "CHAT_TOKEN": SECRET + "-tok",
               "SMTP_PASSWORD": SECRET + "-pw"}
        cfg, plugins = config(CONFIG.format(store=sqlite_url, closed_port=_closed_port()), env)
        configure_logging("debug", "json", cfg.secrets, stream=log)
        store = Store.open(sqlite_url)
        commit(store, [make_post(1, "maintenance")], {"maintenance": ["chat", "mail"]})
        service = DeliveryService(cfg, plugins, store, poll=0.02)
        service.start()
        outbox = Outbox(store.engine)
        try:
            wait_for(lambda: outbox.counts() == {"failed": 2}, what="both failed")
        finally:
            service.stop()
        rows = outbox.rows()
        store.close()
        configure_logging()
    assert rec.requests and SECRET in rec.requests[0].path  # the secret was really used
    assert rec.requests[0].headers["authorization"] == f"Bearer {SECRET}-tok"
    errors = " ".join(r.last_error or "" for r in rows)
    assert "HTTP 500" in errors and "SMTP" in errors
    assert SECRET not in errors
    assert "delivery_failed" in log.getvalue()
    assert SECRET not in log.getvalue()
    assert SECRET not in repr(cfg.sinks)


def test_check_output_shows_no_secret(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    file = tmp_path / "floorstream.yaml"
    file.write_text(CONFIG.format(store=f"sqlite:///{tmp_path}/x.db", closed_port=2525))
    monkeypatch.setenv("CHAT_URL", f"https://hooks.example.com/{SECRET}")
    monkeypatch.setenv("CHAT_TOKEN", SECRET)
    monkeypatch.setenv("SMTP_PASSWORD", SECRET)
    assert main(["check", "-c", str(file), "--offline"]) == 0
    monkeypatch.setenv("CHAT_URL", f"ftp://hooks.example.com/{SECRET}")  # invalid: an error
    assert main(["check", "-c", str(file), "--offline"]) == 2
    out = capsys.readouterr()
    assert "2 sinks" in out.out and "http:// or https://" in out.err
    assert SECRET not in out.out + out.err
