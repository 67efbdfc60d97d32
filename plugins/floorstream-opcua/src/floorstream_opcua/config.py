"""The ``opcua`` source's keys: which server, how to talk to it securely, which variables to
watch and how they become fields, and whether to follow its alarms.

Everything is checked at start (``floorstream check``), not at the first notification: an item
with both ``node`` and ``path``, a security mode without a certificate, a percent deadband
over 100 are refused with the key that is wrong.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from floorstream.plugin import Duration, SourceConfig

__all__ = ["AlarmsConfig", "Deadband", "ItemConfig", "OpcuaConfig", "ReconnectConfig",
           "SecurityConfig"]

#: a browse path segment: ``2:Press07`` (namespace index, then the browse name) or ``Objects``
_SEGMENT = re.compile(r"^(?:(\d+):)?(.+)$")


def _node_id(text: str) -> str:
    # asyncua is imported here, not at module level: this module is the light half the plugin
    # registers, and a daemon with no opcua source must not pay asyncua's ~30 MB to start
    from asyncua import ua

    try:
        ua.NodeId.from_string(text)
    except Exception as exc:  # asyncua raises several kinds for a malformed NodeId
        raise ValueError(f"{text!r} is not a NodeId (ns=2;s=Press07.State, i=2258, "
                         f"ns=3;g=<guid>, ns=1;b=<base64>): {exc}") from None
    return text


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Deadband(_Strict):
    """A data-change filter: report a value only when it moved by more than this since the
    last one reported (OPC UA Part 4, DataChangeFilter). One of the two."""

    absolute: float | None = Field(default=None, ge=0, description="in the value's unit")
    percent: float | None = Field(default=None, ge=0, le=100,
                                  description="of the variable's EURange (high - low)")

    @model_validator(mode="after")
    def _one(self) -> Deadband:
        if (self.absolute is None) == (self.percent is None):
            raise ValueError("give either absolute or percent")
        return self


class ItemConfig(_Strict):
    """One monitored variable and the field its value becomes."""

    node: str | None = Field(default=None, description="NodeId: 'ns=2;s=Press07.State', "
                                                       "'i=2258'")
    path: str | None = Field(default=None, description="browse path from the Root folder: "
                                                       "'Objects/2:Line1/2:Press07/2:State'")
    subject: str | None = Field(default=None, description="the machine the value is about "
                                                          "(default: the source's subject)")
    field: str = Field(min_length=1, description="the field the value is set in, for the "
                                                 "detectors (state, spindle_temp…)")
    deadband: Deadband | None = None
    sampling_interval: Duration | None = Field(
        default=None, ge=0, description="how often the server samples it (default: the "
                                        "source's)")
    queue_size: int = Field(default=10, ge=1, le=10_000, description=(
        "values the server keeps between two publishes, so a fast A→B→A is not lost"))

    @field_validator("node")
    @classmethod
    def _node_id(cls, value: str | None) -> str | None:
        return None if value is None else _node_id(value)

    @model_validator(mode="after")
    def _node_or_path(self) -> ItemConfig:
        if (self.node is None) == (self.path is None):
            raise ValueError("give either node or path")
        if self.path is not None:
            for segment in self.path.strip("/").split("/"):
                if not segment or _SEGMENT.match(segment) is None:
                    raise ValueError(f"browse path {self.path!r}: empty segment")
        return self

    @property
    def key(self) -> str:
        """What identifies the item in positions: the text of the config, which stays the
        same across server restarts (a namespace index or a resolved NodeId may not)."""
        return self.node if self.node is not None else f"path:{self.path}"

    def segments(self) -> list[tuple[int, str]]:
        """The browse path as (namespace index, name) pairs; no index means 0."""
        assert self.path is not None
        out: list[tuple[int, str]] = []
        for segment in self.path.strip("/").split("/"):
            match = _SEGMENT.match(segment)
            assert match is not None
            out.append((int(match.group(1) or 0), match.group(2)))
        return out


Policy = Literal["None", "Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss"]
Mode = Literal["None", "Sign", "SignAndEncrypt"]


class SecurityConfig(_Strict):
    """How the session is secured. ``policy: None`` sends everything in clear; any other
    policy needs the client's certificate and key, and should name the server certificates
    to trust (without ``trust`` any server certificate is accepted, which the log says)."""

    policy: Policy = "None"
    mode: Mode = "None"
    certificate: Path | None = Field(default=None, description="client certificate (DER/PEM)")
    private_key: Path | None = Field(default=None, description="client private key (PEM/DER)")
    private_key_password: str | None = Field(default=None, description="use ${ENV}")
    trust: list[Path] = Field(default_factory=list, description=(
        "server certificates (files, or directories of .der/.pem files) the server's must be "
        "one of"))

    @model_validator(mode="after")
    def _consistent(self) -> SecurityConfig:
        if (self.policy == "None") != (self.mode == "None"):
            raise ValueError("policy and mode are None together or not at all")
        if self.policy != "None" and (self.certificate is None or self.private_key is None):
            raise ValueError(f"policy {self.policy} needs certificate and private_key")
        return self


class AlarmsConfig(_Strict):
    """Alarms & Conditions: an event subscription on ``AlarmConditionType`` and its subtypes.

    An alarm that becomes active is a post (its thread is the condition), its acknowledgement
    an update of that post, and its return to inactive the post's resolution."""

    node: str = Field(default="i=2253", description="the notifier to subscribe to (the Server "
                                                    "object by default)")
    critical: int = Field(default=800, ge=1, le=1000, description="OPC UA severity at and "
                                                                  "above which a post is critical")
    warning: int = Field(default=500, ge=1, le=1000)
    notice: int = Field(default=200, ge=1, le=1000)
    acknowledgements: bool = Field(default=True, description="post when an alarm is "
                                                             "acknowledged")
    subjects: dict[str, str] = Field(default_factory=dict, description=(
        "an alarm's SourceName → the subject its posts are about (default: the SourceName), "
        "so alarms join the items' machines"))

    @field_validator("node")
    @classmethod
    def _node_id(cls, value: str) -> str:
        return _node_id(value)

    @model_validator(mode="after")
    def _ordered(self) -> AlarmsConfig:
        if not self.notice <= self.warning <= self.critical:
            raise ValueError("severity levels must be notice <= warning <= critical")
        return self


class ReconnectConfig(_Strict):
    min_delay: Duration = Field(default=1.0, gt=0)
    max_delay: Duration = Field(default=30.0, gt=0)


class OpcuaConfig(SourceConfig):
    """``adapter: opcua`` source keys (plus the common ones: name, detect, attrs…)."""

    url: str = Field(pattern=r"^opc\.tcp://", description="opc.tcp://host:4840[/path]")
    subject: str | None = Field(default=None, description="default subject of the items")
    kind: str = Field(default="telemetry", description="the changes' kind")
    security: SecurityConfig = Field(default_factory=SecurityConfig)
    username: str | None = Field(default=None, description="use ${ENV}")
    password: str | None = Field(default=None, description="use ${ENV}; never logged")
    publishing_interval: Duration = Field(default=1.0, gt=0, description=(
        "how often the server sends what changed"))
    sampling_interval: Duration = Field(default=0.5, ge=0, description=(
        "how often the server samples each item (0: as fast as it can)"))
    items: list[ItemConfig] = Field(default_factory=list)
    alarms: AlarmsConfig | None = Field(default=None, description="follow Alarms & Conditions")
    timeout: Duration = Field(default=10.0, gt=0, description="per request")
    reconnect: ReconnectConfig = Field(default_factory=ReconnectConfig)
    batch: int = Field(default=1000, ge=1, description="monitored items created per request")

    def check_warnings(self) -> list[str]:
        """Risks the config alone shows, for ``floorstream check`` (no connection)."""
        warnings = []
        if self.security.policy == "None" and self.password is not None:
            warnings.append("security.policy is None: the password travels in clear text")
        if self.security.policy != "None" and not self.security.trust:
            warnings.append("security.trust is empty: any server certificate is accepted")
        return warnings

    @model_validator(mode="after")
    def _something_to_watch(self) -> OpcuaConfig:
        if not self.items and self.alarms is None:
            raise ValueError("give items, alarms, or both")
        for index, item in enumerate(self.items):
            if item.subject is None and self.subject is None:
                raise ValueError(f"items[{index}] has no subject and the source none either")
        keys = [item.key for item in self.items]
        if len(keys) != len(set(keys)):
            dup = next(k for k in keys if keys.count(k) > 1)
            raise ValueError(f"item {dup!r} is listed twice")
        return self
