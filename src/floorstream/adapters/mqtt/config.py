"""The ``mqtt`` source's keys, validated at start so a typo never silently loses messages."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from floorstream.adapters.mqtt.topics import (
    _PLACEHOLDER,
    _TOPIC_LEVEL,
    Template,
    strip_shared,
    validate_filter,
)
from floorstream.plugin import Duration, SourceConfig

__all__ = ["LastWillConfig", "MqttConfig", "SparkplugConfig", "TlsConfig", "TopicConfig",
           "check_template"]


def check_template(text: str) -> str:
    """Compile a subject/attrs template and refuse what :class:`Template` would take
    silently and fail on for every message: stray braces (``{topic[}``), a malformed topic
    level, an empty placeholder."""
    Template(text)
    rest = _PLACEHOLDER.sub("", text)
    if "{" in rest or "}" in rest:
        raise ValueError(f"unbalanced braces in template {text!r}; placeholders are "
                         "{topic}, {topic[N]}, {node}, {device}, {field.path} or {/pointer}")
    for match in _PLACEHOLDER.finditer(text):
        name = match.group(1).strip()
        if not name:
            raise ValueError(f"empty placeholder in template {text!r}")
        if name.lstrip("-").isdigit():
            # {1} reads like a topic level (or str.format's first argument), but a bare name
            # is a payload field: every message would be quarantined for lacking a key "1"
            raise ValueError(f"{{{name}}} in template {text!r} names a payload field "
                             f"{name!r}; a topic level is written {{topic[{name}]}} (a "
                             f"payload key that is a number: {{/{name.lstrip('-')}}})")
        if name.startswith("topic[") and not _TOPIC_LEVEL.match(name):
            raise ValueError(f"{{{name}}} in template {text!r}: a topic level is written "
                             "{topic[N]} with N a whole number (negative counts from the end)")
    return text


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TlsConfig(_Strict):
    """TLS towards the broker. ``mqtts://`` URLs turn TLS on with the system CAs."""

    ca_file: str | None = Field(default=None, description="CA bundle that signed the broker")
    cert_file: str | None = Field(default=None, description="client certificate (PEM)")
    key_file: str | None = Field(default=None, description="client key (PEM)")
    insecure: bool = Field(default=False,
                           description="skip the broker hostname check (test benches only)")


class TopicConfig(_Strict):
    """A subscription with its own QoS."""

    filter: str
    qos: Literal[0, 1, 2] | None = Field(default=None, description="default: the source's qos")

    @field_validator("filter")
    @classmethod
    def _filter(cls, value: str) -> str:
        return validate_filter(value)


class LastWillConfig(_Strict):
    """Machines' MQTT last-will (or birth) messages → machine.offline / machine.online posts."""

    topic: str = Field(description="filter of the status topics (``plant/+/+/status``)")
    subject: str = Field(default="{topic[-2]}", description="template of the machine id")
    field: str | None = Field(default=None,
                              description="payload field holding the status (JSON); "
                                          "default: the whole payload as text")
    offline: list[str] = Field(default_factory=lambda: ["offline", "OFFLINE", "0", "false",
                                                        "UNAVAILABLE", "disconnected"])
    online: list[str] = Field(default_factory=lambda: ["online", "ONLINE", "1", "true",
                                                       "AVAILABLE", "connected"])
    severity: str = "warning"

    @field_validator("topic")
    @classmethod
    def _filter(cls, value: str) -> str:
        return validate_filter(value)

    @field_validator("subject")
    @classmethod
    def _template(cls, value: str) -> str:
        return check_template(value)


class SparkplugConfig(_Strict):
    """Sparkplug B behaviour (``decode: sparkplug``)."""

    primary_host: bool = Field(
        default=False, description="floorstream is this namespace's Primary Host application: "
                                   "it may send NCMD Node Control/Rebirth after a seq gap the "
                                   "reorder timeout did not close, or an alias no birth "
                                   "defined; never otherwise")
    rebirth: bool | None = Field(
        default=None, description="with primary_host: false turns the rebirth requests off; "
                                  "true without primary_host is refused")
    offline_severity: str = "warning"
    historical: Literal["feed", "skip"] = Field(
        default="feed", description="is_historical metrics and late readings: one "
                                    "'backfilled' post per node/device and burst, never "
                                    "through detectors (feed), or dropped (skip)")
    prefix: str | None = Field(
        default=None, description="bridge prefix before spBv1.0 (site/): topics must start "
                                  "with it; unset: any levels before spBv1.0 are taken as one")
    reorder_timeout: Duration = Field(
        default=2.0, description="how long a message that came early waits for the missing "
                                 "seq before the gap is given up (Sparkplug 3.0 Reorder "
                                 "Timeout)")
    reorder_limit: int = Field(default=64, ge=1, le=127,
                               description="messages held per node behind a gap, at most")
    birth_wait: Duration = Field(default=30.0, description="how long data with aliases no "
                                                           "birth defined waits for its birth")
    birth_buffer: int = Field(default=100, ge=0, description="messages per node waiting for a "
                                                             "birth, at most")
    backfill_quiet: Duration = Field(default=5.0, description="a backfill burst ends after "
                                                              "this long without values")
    late_after: Duration | None = Field(
        default=60.0, description="a reading older than the newest of its node/device by "
                                  "more than this is backfill, not news; null: never")
    host_state: Literal["ignore", "post"] = Field(
        default="ignore", description="host applications' STATE messages: ignored, or "
                                      "online/offline posts")

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if "+" in value or "#" in value:
            raise ValueError("a prefix is topic levels, not a filter: no '+' or '#'")
        return value.strip("/")

    @model_validator(mode="after")
    def _primary(self) -> SparkplugConfig:
        if self.rebirth and not self.primary_host:
            raise ValueError("rebirth requests are the Primary Host's job: set "
                             "primary_host: true, and only if floorstream is that host")
        return self

    @property
    def sends_rebirth(self) -> bool:
        return self.primary_host and self.rebirth is not False

    @property
    def prefix_levels(self) -> list[str] | None:
        if self.prefix is None:
            return None
        return self.prefix.split("/") if self.prefix else []

    def namespace_warnings(self, filters: list[str]) -> list[str]:
        """Subscriptions of a ``decode: sparkplug`` source that reach outside the namespace:
        what they bring that is not Sparkplug is quarantined, or they bring nothing."""
        space = [*(self.prefix_levels or []), "spBv1.0"]
        legacy = [*(self.prefix_levels or []), "STATE"]
        out = []
        for text in filters:
            levels = strip_shared(text).split("/")
            if self.prefix is None and "spBv1.0" in levels:
                continue
            verdicts = [_fits(levels, ns) for ns in (space, legacy)]
            if "inside" in verdicts:
                continue
            where = "/".join(space) + "/…"
            if "wider" in verdicts:
                out.append(f"topic filter {text!r} also matches topics outside the Sparkplug "
                           f"namespace {where}: those messages are quarantined")
            else:
                out.append(f"topic filter {text!r} is outside the Sparkplug namespace "
                           f"{where}: every message it brings is quarantined")
        return out


def _fits(levels: list[str], namespace: list[str]) -> str:
    """``inside``: every topic the filter matches starts with ``namespace``; ``wider``: some
    do; ``outside``: none."""
    for index, level in enumerate(namespace):
        if index >= len(levels):
            return "outside"
        if levels[index] == "#":
            return "wider"
        if levels[index] == "+":
            continue  # a '+' where the namespace is fixed: wider, unless nothing else is
        if levels[index] != level:
            return "outside"
    if any(lv == "+" for lv in levels[:len(namespace)]):
        return "wider"
    return "inside"


class MqttConfig(SourceConfig):
    """An MQTT broker and the topics to read from it."""

    url: str = Field(default="mqtt://127.0.0.1:1883",
                     description="mqtt://host:port, or mqtts:// for TLS")
    protocol: Literal["3.1.1", "5"] = Field(default="5", description="MQTT protocol version")
    client_id: str | None = Field(default=None,
                                  description="fixed client id (default floorstream-<name>); "
                                              "the broker keeps the session under it")
    clean_start: bool = Field(default=False,
                              description="false keeps the session (and unacked QoS>=1 "
                                          "messages) across restarts")
    session_expiry: Duration = Field(default=86400.0,
                                     description="MQTT 5: how long the broker keeps the "
                                                 "session while disconnected")
    username: str | None = None
    password: str | None = Field(default=None, description="use ${ENV}; never logged")
    tls: TlsConfig | None = None
    keepalive: int = Field(default=30, ge=5, le=65535)
    qos: Literal[0, 1, 2] = Field(default=1, description="subscription QoS; >=1: nothing lost")
    topics: list[str | TopicConfig] = Field(min_length=1, description="topic filters")
    shared_group: str | None = Field(default=None,
                                     description="MQTT 5 shared subscription group: several "
                                                 "daemons split the messages")
    receive_maximum: int = Field(default=1000, ge=1, le=65535,
                                 description="MQTT 5: unacked QoS>=1 messages the broker may "
                                             "have in flight to us")
    broker_inflight: int = Field(default=20, ge=1, le=65535,
                                 description="MQTT 3.1.1: the broker's max_inflight_messages "
                                             "(unacked QoS>=1 messages it sends us; "
                                             "Mosquitto's default 20): a gathering batch is "
                                             "taken once half of it is queued; MQTT 5 uses "
                                             "receive_maximum")
    fast_path: bool = Field(default=True,
                            description="parse QoS 0/1 messages straight from paho's read "
                                        "buffer and write acks in batches (used only when "
                                        "the installed paho-mqtt passes the fast path's "
                                        "check); false: stock paho, slower")
    decode: str = Field(default="json", description="decoder: json, value, sparkplug or a plugin")
    subject: str = Field(default="{topic[-2]}",
                         description="template of the subject: {topic[N]}, {field.path}, "
                                     "{/json/pointer}, {node}, {device}")
    kind: str = "telemetry"
    fields: dict[str, str] = Field(default_factory=dict,
                                   description="name → dotted path / JSON pointer copied to the "
                                               "top level, for detectors")
    types: dict[str, Literal["number", "integer", "string", "boolean"]] = Field(
        default_factory=dict, description="field → expected type; a mismatch is quarantined")
    position_field: str | None = Field(default=None,
                                       description="payload timestamp or sequence that makes a "
                                                   "message unique (ids stable on replay)")
    time_field: str | None = Field(default=None,
                                   description="payload time (epoch s/ms or ISO 8601)")
    max_payload: int = Field(default=262_144, ge=1,
                             description="bigger payloads are quarantined unparsed")
    reconnect_min: Duration = 0.5
    reconnect_max: Duration = 30.0
    last_will: LastWillConfig | None = None
    sparkplug: SparkplugConfig = Field(default_factory=SparkplugConfig)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        parsed = urlparse(value)
        if parsed.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
            raise ValueError("expected mqtt://host:port or mqtts://host:port")
        if not parsed.hostname:
            raise ValueError("the URL has no host")
        try:
            port = parsed.port
        except ValueError:
            port = -1
        if port is not None and not 1 <= port <= 65535:
            raise ValueError("the port must be a number from 1 to 65535")
        return value

    @field_validator("topics")
    @classmethod
    def _topics(cls, value: list[str | TopicConfig]) -> list[str | TopicConfig]:
        for entry in value:
            if isinstance(entry, str):
                validate_filter(entry)
        return value

    @field_validator("subject")
    @classmethod
    def _template(cls, value: str) -> str:
        return check_template(value)

    @model_validator(mode="after")
    def _consistent(self) -> MqttConfig:
        if self.shared_group is not None and self.protocol != "5":
            raise ValueError("shared_group needs protocol 5")
        if self.shared_group is not None and "/" in self.shared_group:
            raise ValueError("shared_group must not contain '/'")
        if self.reconnect_max < self.reconnect_min:
            raise ValueError("reconnect_max must not be less than reconnect_min")
        for name, template in self.attrs.items():
            try:
                check_template(template)
            except Exception as exc:
                raise ValueError(f"attrs.{name}: {exc}") from None
        return self

    @property
    def host(self) -> str:
        return urlparse(self.url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        parsed = urlparse(self.url)
        return parsed.port or (8883 if self.use_tls else 1883)

    @property
    def use_tls(self) -> bool:
        return self.tls is not None or urlparse(self.url).scheme in ("mqtts", "ssl")

    def check_warnings(self) -> list[str]:
        """Static warnings for ``floorstream check`` (no connection needed)."""
        if self.decode != "sparkplug":
            return []
        filters = [t if isinstance(t, str) else t.filter for t in self.topics]
        warnings = self.sparkplug.namespace_warnings(filters)
        if self.shared_group is not None:
            warnings.append("shared_group splits each edge node's messages between daemons: "
                            "seq order, births and aliases cannot be followed (seq gaps, "
                            "data waiting for births it never sees); give each set of nodes "
                            "its own source instead")
        return warnings

    def subscriptions(self) -> list[tuple[str, int]]:
        """(filter as sent to the broker, qos) for every topic, the last-will one included."""
        result: list[tuple[str, int]] = []
        entries: list[str | TopicConfig] = list(self.topics)
        if self.last_will is not None:
            entries.append(self.last_will.topic)
        for entry in entries:
            text, qos = (entry, self.qos) if isinstance(entry, str) else (
                entry.filter, entry.qos if entry.qos is not None else self.qos)
            if self.shared_group and not text.startswith("$share/"):
                text = f"$share/{self.shared_group}/{text}"
            result.append((text, qos))
        return result
