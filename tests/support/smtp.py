"""A real local SMTP server (aiosmtpd) that keeps what it receives: for the e-mail sink's
delivery tests and the personal digests (STARTTLS and login are covered in
test_email_sink, which needs its own TLS-ready server)."""

from __future__ import annotations

import email
import email.message
import email.policy
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from aiosmtpd.controller import Controller

__all__ = ["Inbox", "local_smtp"]


class Inbox:
    """Every message the server accepted, parsed, in arrival order."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(  # type: ignore[arg-type]
            envelope.content, policy=email.policy.default))
        return "250 OK"

    def to(self, address: str) -> list[email.message.EmailMessage]:
        return [m for m in self.messages if m["To"] == address]


@contextmanager
def local_smtp() -> Iterator[tuple[int, Inbox]]:
    """A plain SMTP server on a free port of 127.0.0.1: (port, inbox), stopped after."""
    inbox = Inbox()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, inbox
    finally:
        controller.stop()
