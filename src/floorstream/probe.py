"""``floorstream check --connect``: try every connection the config names, report each.

Like Telegraf's ``--test``: before a service is started (or to find which of its connections
is the broken one) every endpoint is tried once, for real, with a short timeout, in parallel:

- the **store** (a SQLAlchemy connection; a SQLite file: its directory must be writable);
- **MQTT brokers** of sources and sinks: a TCP (TLS) connection and an MQTT CONNECT with the
  configured credentials, under a client id of its own (``floorstream-check-<pid>``) and a
  clean session, so a running daemon's session is left alone;
- **databases** (``erp.table``'s ``url``, a supply source's ``erp.url``): a connection;
- **SMTP servers**: connect, EHLO, STARTTLS or TLS as configured, LOGIN when a user is set;
  no mail is sent;
- **HTTP endpoints** (webhook sinks, apprise http(s) URLs, ``supply.http`` sources): TCP and
  the TLS handshake (certificate verified as the sink would); no request is sent, a webhook
  must not receive a test post.

Any other source or sink with a ``url`` is tried by the URL's scheme. Secrets never show:
URLs are shown with their password hidden, webhook URLs (which are secrets) as scheme and host.
"""

from __future__ import annotations

import os
import smtplib
import socket
import ssl
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from floorstream.config import Config
from floorstream.plugin import scrub

__all__ = ["Probe", "probe_all", "probes"]

TIMEOUT = 5.0


@dataclass
class Probe:
    """One connection and what trying it gave."""

    key: str  # where the config names it: store, sources.<name>, sinks.<name>
    what: str  # "mqtt broker 10.0.0.5:1883", "database postgresql://erp@db/erp" …
    ok: bool | None = None  # None: not tried (nothing to connect to)
    detail: str = ""

    def line(self, width: int = 24) -> str:
        verdict = "ok" if self.ok else ("skipped" if self.ok is None else "error")
        return f"{self.key:<{width}}  {self.what:<48}  {verdict}: {self.detail}"


Attempt = Callable[[], str]  # returns the detail of a success, raises on failure


def probes(config: Config) -> list[tuple[Probe, Attempt | None]]:
    """Every connection of ``config``, each with its attempt (None: nothing to try)."""
    found: list[tuple[Probe, Attempt | None]] = [_store(config.settings.store)]
    for source in config.sources:
        if not source.enabled:
            continue
        found += _of(f"sources.{source.name}", source)
    for sink in config.sinks:
        found += _of(f"sinks.{sink.name}", sink)
    return found


def probe_all(config: Config, *, timeout: float = TIMEOUT) -> list[Probe]:
    """Try them all, in parallel; each probe is filled in with its verdict."""
    planned = probes(config)
    secrets = config.secrets

    def run(item: tuple[Probe, Attempt | None]) -> Probe:
        probe, attempt = item
        if attempt is None:
            return probe
        started = time.perf_counter()
        try:
            detail = attempt()
            probe.ok = True
            took = (time.perf_counter() - started) * 1000
            probe.detail = f"{detail} ({took:.0f} ms)" if detail else f"{took:.0f} ms"
        except Exception as exc:
            cause = getattr(exc, "orig", None) or exc
            lines = str(cause).strip().splitlines() or [type(cause).__name__]
            probe.ok = False
            probe.detail = scrub(f"{type(cause).__name__}: {lines[0]}", secrets)
        probe.what = scrub(probe.what, secrets)
        return probe

    with ThreadPoolExecutor(max_workers=min(16, max(1, len(planned)))) as pool:
        return list(pool.map(run, planned))


# -- what a config names ------------------------------------------------------------------------


def _secret(value: Any) -> str:
    return value.get_secret_value() if hasattr(value, "get_secret_value") else str(value)


def _of(key: str, config: Any) -> list[tuple[Probe, Attempt | None]]:
    kind = type(config).__name__
    if kind == "MqttConfig" or kind == "MqttSinkConfig":
        return [_mqtt(key, config)]
    if kind == "EmailConfig":
        return [_smtp(key, config)]
    out: list[tuple[Probe, Attempt | None]] = []
    erp = getattr(config, "erp", None)
    if erp is not None and getattr(erp, "url", None):
        out.append(_by_url(key, _secret(erp.url), config))
    url = getattr(config, "url", None)
    if url is not None:
        out.append(_by_url(key, _secret(url), config))
    for extra in getattr(config, "urls", None) or []:
        out.append(_by_url(key, _secret(extra), config))
    if not out:
        out.append((Probe(key, type(config).__name__.removesuffix("Config").lower() or key,
                          None, "no connection to try"), None))
    return out


def _by_url(key: str, url: str, config: Any) -> tuple[Probe, Attempt | None]:
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("http", "https"):
        return _http(key, url, verify=bool(getattr(config, "verify_tls", True)))
    if scheme in ("mqtt", "mqtts", "tcp", "ssl"):
        parts = urlsplit(url)
        return _tcp(key, f"mqtt broker {parts.hostname}:{parts.port or 1883}",
                    parts.hostname or "127.0.0.1", parts.port or 1883)
    try:
        parsed = make_url(url)
    except ArgumentError:
        return Probe(key, f"{scheme or 'unknown'} URL", None, "not a kind of URL check "
                     "knows"), None
    return _database(key, parsed)


def _store(url: str) -> tuple[Probe, Attempt | None]:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = parsed.database or ""
        probe = Probe("store", f"sqlite file {path or ':memory:'}")

        def sqlite() -> str:
            if not path or path == ":memory:":
                return "in memory"
            file = Path(path)
            folder = file.parent if str(file.parent) else Path(".")
            if not folder.is_dir():
                raise FileNotFoundError(f"directory {folder} does not exist")
            if not os.access(folder, os.W_OK):
                raise PermissionError(f"directory {folder} is not writable")
            return "file exists" if file.exists() else "will be created"
        return probe, sqlite
    return _database("store", parsed)


def _database(key: str, parsed: Any) -> tuple[Probe, Attempt]:
    shown = parsed.render_as_string(hide_password=True)
    probe = Probe(key, f"database {shown}")

    def connect() -> str:
        args: dict[str, Any] = {}
        backend = parsed.get_backend_name()
        if backend in ("postgresql", "mysql", "mariadb"):
            args["connect_args"] = {"connect_timeout": int(TIMEOUT)}
        engine = create_engine(parsed, **args)
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
                version = conn.dialect.server_version_info
            return "connected" + (f", server {'.'.join(map(str, version))}" if version else "")
        finally:
            engine.dispose()
    return probe, connect


def _tcp(key: str, what: str, host: str, port: int) -> tuple[Probe, Attempt]:
    def connect() -> str:
        with socket.create_connection((host, port), timeout=TIMEOUT):
            return "TCP connected"
    return Probe(key, what), connect


def _http(key: str, url: str, *, verify: bool = True) -> tuple[Probe, Attempt]:
    parts = urlsplit(url)
    host = parts.hostname or ""
    tls = parts.scheme.lower() == "https"
    port = parts.port or (443 if tls else 80)
    probe = Probe(key, f"{parts.scheme}://{host}:{port}")  # the path may hold the secret

    def connect() -> str:
        with socket.create_connection((host, port), timeout=TIMEOUT) as raw:
            if not tls:
                return "TCP connected (no request sent)"
            context = ssl.create_default_context()
            if not verify:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            with context.wrap_socket(raw, server_hostname=host) as wrapped:
                return f"{wrapped.version()} handshake done (no request sent)"
    return probe, connect


def _smtp(key: str, config: Any) -> tuple[Probe, Attempt]:
    probe = Probe(key, f"smtp {config.host}:{config.port} ({config.security})")

    def context() -> ssl.SSLContext:
        made = ssl.create_default_context(cafile=config.ca_file)
        if not config.verify_tls:
            made.check_hostname = False
            made.verify_mode = ssl.CERT_NONE
        return made

    def connect() -> str:
        timeout = min(TIMEOUT, float(config.timeout))
        server: smtplib.SMTP
        if config.security == "ssl":
            server = smtplib.SMTP_SSL(config.host, config.port, timeout=timeout,
                                      context=context())
        else:
            server = smtplib.SMTP(config.host, config.port, timeout=timeout)
        try:
            server.ehlo()
            done = ["EHLO"]
            if config.security == "starttls":
                server.starttls(context=context())
                server.ehlo()
                done.append("STARTTLS")
            if config.username:
                password = config.password.get_secret_value() if config.password else ""
                server.login(config.username, password)
                done.append(f"LOGIN as {config.username}")
            return ", ".join(done) + " (no mail sent)"
        finally:
            try:
                server.quit()
            except smtplib.SMTPException:
                server.close()
    return probe, connect


def _mqtt(key: str, config: Any) -> tuple[Probe, Attempt]:
    host, port = config.host, int(config.port)
    use_tls = bool(getattr(config, "use_tls", None) or getattr(config, "tls", False))
    probe = Probe(key, f"mqtt broker {host}:{port}" + (" (TLS)" if use_tls else ""))

    def connect() -> str:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        v5 = getattr(config, "protocol", "5") == "5"
        client_id = f"floorstream-check-{os.getpid()}-{threading.get_ident()}"
        if v5:  # clean start and no session expiry: the default of a v5 CONNECT
            client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                 protocol=mqtt.MQTTv5)
        else:
            client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                 clean_session=True, protocol=mqtt.MQTTv311)
        password = getattr(config, "password", None)
        if getattr(config, "username", None) is not None:
            client.username_pw_set(config.username, _secret(password) if password else None)
        if use_tls:
            tls = config.tls if not isinstance(config.tls, bool) else None
            ca = getattr(tls, "ca_file", None) if tls is not None else getattr(config, "ca_file",
                                                                               None)
            client.tls_set(ca_certs=ca, certfile=getattr(tls, "cert_file", None),
                           keyfile=getattr(tls, "key_file", None),
                           cert_reqs=ssl.CERT_REQUIRED, tls_version=ssl.PROTOCOL_TLS_CLIENT)
            if tls is not None and getattr(tls, "insecure", False):
                client.tls_insecure_set(True)
        answer: dict[str, Any] = {}

        def on_connect(_c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
            answer["reason"] = reason

        client.on_connect = on_connect
        client.connect(host, port, keepalive=10)  # TCP (and TLS) now; raises if refused
        deadline = time.monotonic() + TIMEOUT
        try:
            while "reason" not in answer and time.monotonic() < deadline:
                client.loop(timeout=0.1)
            reason = answer.get("reason")
            if reason is None:
                raise TimeoutError(f"no CONNACK within {TIMEOUT:g} s")
            if reason.is_failure:
                raise ConnectionRefusedError(f"the broker refused the connection: {reason}")
            return "MQTT CONNACK: accepted" + (f" as {config.username}"
                                               if getattr(config, "username", None) else "")
        finally:
            client.disconnect()
    return probe, connect
