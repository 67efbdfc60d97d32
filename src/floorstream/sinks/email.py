"""``email``: one mail per post (or one per digest) over SMTP, with STARTTLS and login.

Mails are ``multipart/alternative`` (plain text and HTML). The Message-ID is derived from the
post id, and a clearing post sets ``In-Reply-To``/``References`` to the Message-ID of the post
it clears: mail clients then show "running again" in the thread of the alarm. The password is a
secret and is only ever handed to ``SMTP.login``.
"""

from __future__ import annotations

import html
import ssl
from email.utils import formatdate
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field, SecretStr

from floorstream.model import DIGEST_SOURCE, Post
from floorstream.plugin import (
    DeliveryError,
    Duration,
    Outgoing,
    PermanentDeliveryError,
    Sink,
    SinkConfig,
    scrub,
)
from floorstream.sinks.payloads import plain_text

if TYPE_CHECKING:  # smtplib and email.message load with the first e-mail, not at registration
    import smtplib
    from email.message import EmailMessage

__all__ = ["EmailConfig", "EmailSink"]


class EmailConfig(SinkConfig):
    host: str = Field(description="SMTP server")
    port: int = Field(default=587, ge=1, le=65535)
    security: Literal["starttls", "ssl", "none"] = Field(
        default="starttls", description="starttls (587), ssl (implicit TLS, 465) or none")
    username: str | None = None
    password: SecretStr | None = Field(default=None, description="use ${ENV}")
    sender: str = Field(alias="from", description="From: address")
    to: list[str] = Field(min_length=1, description="recipients")
    subject: str = Field(default="[{severity}] {summary}",
                         description="fields: severity, summary, subject, source, team, type")
    ca_file: str | None = Field(default=None, description="CA bundle to verify the server")
    verify_tls: bool = True
    timeout: Duration = 30.0


def _addressed(post: Post) -> list[str]:
    """A person's digest (docs/web.md) goes to that person, not to the sink's ``to``; only
    that source's posts may say so (another post's ``fields["to"]`` is an ERP value)."""
    if post.source != DIGEST_SOURCE:
        return []
    return [str(a) for a in post.fields.get("to") or () if a]


def message_id(post_id: str, sink: str, sender: str) -> str:
    domain = sender.rpartition("@")[2] or "floorstream"
    return f"<{post_id}.{sink}@{domain}>"


class EmailSink(Sink[EmailConfig]):
    name: ClassVar[str] = "email"
    threads: ClassVar[bool] = True

    def __init__(self, config: EmailConfig) -> None:
        super().__init__(config)
        self.cfg = config

    def message(self, post: Post, outgoing: Outgoing) -> EmailMessage:
        from email.message import EmailMessage

        cfg = self.cfg
        msg = EmailMessage()
        subject = cfg.subject.format(severity=post.severity.label, summary=post.summary,
                                     subject=post.subject, source=post.source,
                                     team=outgoing.team, type=post.type)
        msg["Subject"] = subject.replace("\n", " ")[:250]
        msg["From"] = cfg.sender
        msg["To"] = ", ".join(_addressed(post) or cfg.to)
        msg["Date"] = formatdate(post.created_at.timestamp(), usegmt=True)
        msg["Message-ID"] = message_id(post.id, cfg.name, cfg.sender)
        msg["X-Floorstream-Idempotency-Key"] = outgoing.idempotency_key
        msg["X-Floorstream-Severity"] = post.severity.label
        if post.refers_to:  # an update, resolution or retraction: in the story's mail thread
            parent = outgoing.thread or message_id(post.refers_to, cfg.name, cfg.sender)
            msg["In-Reply-To"] = parent
            msg["References"] = parent
        msg.set_content(plain_text(post))
        msg.add_alternative(self._html(post, outgoing), subtype="html")
        return msg

    def _html(self, post: Post, outgoing: Outgoing) -> str:
        e = html.escape
        parts = [f"<p><strong>{e(post.summary)}</strong></p>"]
        if outgoing.digest:
            rows = "".join(
                f"<tr><td>{e(p.occurred_at.strftime('%H:%M'))}</td><td>{e(p.severity.label)}"
                f"</td><td>{e(p.subject)}</td><td>{e(p.summary)}</td></tr>"
                for p in outgoing.digest)
            parts.append("<table><tr><th>When (UTC)</th><th>Severity</th><th>Subject</th>"
                         f"<th>What</th></tr>{rows}</table>")
        elif post.body:
            parts.append(f"<p>{e(post.body).replace(chr(10), '<br>')}</p>")
        parts.append(f"<p><small>{e(post.severity.label)} · {e(post.subject)} · "
                     f"{e(post.source)}</small></p>")
        if post.links:
            parts.append("<ul>" + "".join(f'<li><a href="{e(h)}">{e(n)}</a></li>'
                                          for n, h in post.links.items()) + "</ul>")
        return "<html><body>" + "".join(parts) + "</body></html>"

    def _tls(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.cfg.ca_file)
        if not self.cfg.verify_tls:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def deliver(self, post: Post, outgoing: Outgoing) -> str | None:
        import smtplib

        msg = self.message(post, outgoing)
        cfg = self.cfg
        try:
            smtp: smtplib.SMTP
            if cfg.security == "ssl":
                smtp = smtplib.SMTP_SSL(cfg.host, cfg.port, timeout=cfg.timeout,
                                        context=self._tls())
            else:
                smtp = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout)
            with smtp:
                smtp.ehlo()
                if cfg.security == "starttls":
                    smtp.starttls(context=self._tls())
                    smtp.ehlo()
                if cfg.username and cfg.password is not None:
                    smtp.login(cfg.username, cfg.password.get_secret_value())
                smtp.send_message(msg)
        except (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused) as exc:
            raise PermanentDeliveryError(self._describe(exc)) from None
        except smtplib.SMTPResponseException as exc:
            error = self._describe(exc)
            if 500 <= exc.smtp_code < 600 and exc.smtp_code != 535:
                raise PermanentDeliveryError(error) from None
            raise DeliveryError(error) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(self._describe(exc)) from None
        return str(msg["Message-ID"])

    def _describe(self, exc: BaseException) -> str:
        return scrub(f"SMTP {type(exc).__name__}: {exc}", self.secrets())
