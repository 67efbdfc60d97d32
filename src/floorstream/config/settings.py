"""The settings models: the keys of the config file that belong to floorstream itself.

Sources and sinks are plugins, so :class:`Settings` keeps them as raw mappings; the validator
(:mod:`floorstream.config.validator`) checks each with its plugin's model and builds the
:class:`Config` the daemon runs from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from floorstream.config.display import DisplaySettings
from floorstream.delivery.personal_schedule import Schedule
from floorstream.delivery.policy import TeamPolicy
from floorstream.model import Severity
from floorstream.plugin import Duration, FloodOptions
from floorstream.plugin.adapter import SourceConfig
from floorstream.plugin.sink import SinkConfig
from floorstream.route import RouteRule

__all__ = ["AlertSettings", "Config", "HealthSettings", "LoggingSettings", "PersonDigest",
           "PipelineSettings", "PluginSettings", "RetentionSettings", "Settings", "TeamConfig",
           "WebPerson", "WebSettings", "WebToken"]

_SEVERITIES = [s.label for s in Severity]


def _any_case(*words: str) -> str:
    """A JSON Schema (ECMA 262) pattern matching ``words`` in any letter case, since editors'
    regex engines have no ``(?i)``."""
    def one(word: str) -> str:
        return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else re.escape(c)
                       for c in word)
    return r"^\s*(" + "|".join(one(w) for w in words) + r")\s*$"


_CLOCK = r"\d{1,2}:\d{2}"
# what TeamPolicy.parse reads, as JSON Schema (its range checks stay with `check`)
_DIGEST_SCHEMA: dict[str, Any] = {"anyOf": [
    {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*(ms|s|m|h|d)?\s*$"},
    {"type": "string", "pattern": rf"^[\s,]*{_CLOCK}(\s*,[\s,]*{_CLOCK})*[\s,]*$"},
    {"type": "null"}]}
_IMMEDIATE_SCHEMA: dict[str, Any] = {"anyOf": [{"enum": _SEVERITIES},
                                                {"pattern": _any_case(*_SEVERITIES)}]}
_QUIET_SCHEMA: dict[str, Any] = {"anyOf": [
    {"type": "string", "pattern": rf"^\s*{_CLOCK}\s*-\s*{_CLOCK}\s*$"}, {"type": "null"}]}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class TeamConfig(_Strict):
    """A team: where its posts go and when. Each key is checked on its own, so a wrong time
    zone and a wrong digest are two problems, each reported at its own key."""

    description: str | None = None
    sinks: list[str] = Field(default_factory=list, description="names of entries in sinks:")
    immediate: str = Field(default="info",
                           description="severity at or above which posts go out at once",
                           json_schema_extra=_IMMEDIATE_SCHEMA)
    digest: str | None = Field(default=None,
                               description="how to send the rest: an interval (1h) or shift "
                                           "times ('06:00,14:00,22:00'); none = at once",
                               json_schema_extra=_DIGEST_SCHEMA)
    quiet_hours: str | None = Field(default=None,
                                    description="'22:00-06:00': only immediate posts then",
                                    json_schema_extra=_QUIET_SCHEMA)
    timezone: str = Field(default="UTC", description="zone of digest and quiet-hour times")

    # TeamPolicy.parse with one setting at a time: the daemon's own parser, one key per error
    @field_validator("immediate")
    @classmethod
    def _immediate(cls, value: str) -> str:
        TeamPolicy.parse(immediate=value)
        return value

    @field_validator("digest")
    @classmethod
    def _digest(cls, value: str | None) -> str | None:
        TeamPolicy.parse(digest=value)
        return value

    @field_validator("quiet_hours")
    @classmethod
    def _quiet_hours(cls, value: str | None) -> str | None:
        TeamPolicy.parse(quiet_hours=value)
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        TeamPolicy.parse(timezone=value)
        return value

    def policy(self) -> TeamPolicy:
        return TeamPolicy.parse(self.immediate, self.digest, self.quiet_hours, self.timezone)


class PipelineSettings(_Strict):
    queue_size: int = Field(default=10_000, ge=1, le=10_000_000,
                            description="changes buffered before adapters are made to wait")
    batch_max: int = Field(default=1_000, ge=1, le=1_000_000,
                           description="changes per commit at most")
    batch_wait_ms: float = Field(
        default=0.0, ge=0, le=60_000,
        description="0: commit what is queued as soon as the last commit ended (group commit; "
                    "what arrives during a commit forms the next batch); >0: wait this long to "
                    "fill a batch. Waiting stalls MQTT QoS 1, whose broker sends only ~20 "
                    "unacked messages at a time")
    gather_ms: float = Field(
        default=2.0, ge=0, le=1_000,
        description="while input keeps coming, each batch gathers for up to this long (or "
                    "until half the smallest unacked window of the sources, e.g. an MQTT "
                    "broker's in-flight limit, is queued) before it is processed: one wake-up "
                    "and at most one commit per interval instead of one per message. Input "
                    "after a quiet spell is taken at once. 0: take input as it comes")
    tick_s: float = Field(default=1.0, gt=0, le=3600,
                          description="how often timers (silence) run")


class LoggingSettings(_Strict):
    level: str = Field(default="info", pattern=r"(?i)^(debug|info|warning|error)$",
                       json_schema_extra={"pattern": _any_case("debug", "info", "warning",
                                                               "error").replace(r"\s*", "")})
    format: str = Field(default="auto", pattern=r"^(auto|console|json)$",
                        description="auto: readable on a terminal, JSON lines otherwise")


class HealthSettings(_Strict):
    host: str = "127.0.0.1"
    port: int | None = Field(default=None, ge=0, le=65535,
                             description="serve /healthz, /readyz and /metrics on this "
                                         "port (0: any free port)")


class AlertSettings(_Strict):
    """Self-alerts (docs/daemon.md): one post to ``admin_team`` when a source stays down, a sink
    keeps failing or a source's quarantine rate is too high, and one when it is over."""

    enabled: bool = True
    source_down: Duration = Field(default=300.0, gt=0,
                                  description="alert when a source is disconnected this long")
    sink_failing: Duration = Field(default=300.0, gt=0,
                                   description="alert when a sink's deliveries fail this long")
    quarantine_rate: float | None = Field(
        default=10.0, gt=0,
        description="alert when a source quarantines more inputs a minute than this, "
                    "averaged over quarantine_window (null: never)")
    quarantine_window: Duration = Field(default=300.0, gt=0,
                                        description="window of the quarantine rate")
    recover_after: Duration = Field(
        default=30.0, ge=0,
        description="how long a source or sink must stay well before the recovery post (a "
                    "connection that comes up for a moment does not end an outage)")


class RetentionSettings(_Strict):
    """How long floorstream keeps what it wrote (docs/daemon.md, "Retention"); null: forever.

    The daemon prunes every ``interval``, ``floorstream prune`` on demand, both in
    transactions of at most ``batch`` rows so a pipeline commit never waits long on them.
    """

    posts: Duration | None = Field(
        default=90 * 86400.0, gt=0,
        description="posts (with their team rows) older than this; never one with a delivery "
                    "still pending")
    delivered: Duration | None = Field(
        default=30 * 86400.0, gt=0,
        description="delivered outbox rows, after delivery (rows a later reply threads to "
                    "stay while their post does)")
    failed: Duration | None = Field(default=90 * 86400.0, gt=0,
                                    description="outbox rows given up on, after creation")
    quarantine: Duration | None = Field(default=30 * 86400.0, gt=0,
                                        description="quarantined input, after it came")
    detector_state: Duration | None = Field(
        default=None, gt=0,
        description="detector state of subjects that have not changed for this long (a "
                    "pruned subject starts from nothing: a cursor-polled ERP row's next "
                    "change is then learnt, not posted); null: kept")
    erp_changes: Duration | None = Field(
        default=7 * 86400.0, gt=0,
        description="rows of fs_erp_changes (erp install-triggers) the source has consumed, "
                    "older than this")
    interval: Duration = Field(default=3600.0, gt=0, description="how often the daemon prunes")
    batch: int = Field(default=1_000, ge=1, le=100_000,
                       description="rows per transaction at most")
    hold: Duration | None = Field(
        default=None, gt=0, le=60,
        description="how long one prune transaction may take: batches shrink until they "
                    "stay under it (null: 10ms on SQLite, whose one writer makes commits "
                    "wait; 200ms elsewhere)")
    pause: Duration = Field(default=0.05, ge=0, le=60,
                            description="rest between two batches (lets commits through)")


class PersonDigest(_Strict):
    """A person's e-mail digest of what they follow (docs/web.md): the config's default,
    which the person may change on their page (``/me``) or through the API."""

    every: str = Field(default="daily", description="hourly, daily or off")
    at: str = Field(default="07:00", description="a daily digest's local time, HH:MM")
    timezone: str = Field(default="UTC", description="of ``at`` and of the times listed")

    @model_validator(mode="after")
    def _schedule(self) -> PersonDigest:
        self.schedule()  # ValueError: what is expected
        return self

    def schedule(self) -> Schedule:
        return Schedule.parse(self.every, self.at, self.timezone)


class WebPerson(_Strict):
    """Someone who may log in to the web feed (docs/web.md)."""

    name: str | None = Field(default=None, description="shown next to comments and acks")
    password_hash: str | None = Field(
        default=None, description="argon2 hash (`floorstream web hash-password`); none: only "
                                  "through the trusted proxy header or an API token")
    teams: list[str] = Field(default_factory=lambda: ["*"],
                             description="teams whose posts this person may read ('*': all)")
    email: str | None = Field(default=None, description="where their digest goes")
    digest: PersonDigest | None = Field(
        default=None, description="an e-mail digest of what they follow (needs email and "
                                  "web.digest_sink); they may change it on their page")


class WebToken(_Strict):
    """An API token: ``Authorization: Bearer <token>`` acts as ``person``."""

    person: str
    token: str = Field(min_length=16, description="the token itself; use ${ENV}")


class WebSettings(_Strict):
    """The web feed (docs/web.md): served by the daemon when ``port`` is set, or alone by
    ``floorstream web -c FILE``."""

    port: int | None = Field(default=None, ge=0, le=65535,
                             description="serve the web feed on this port (0: any free port)")
    bind: str = Field(default="127.0.0.1", description="address to listen on")
    base_url: str | None = Field(
        default=None, description="public URL of the feed (https://floor.example.com); when "
                                  "set, chat and e-mail posts link to their permalink")
    people: dict[str, WebPerson] = Field(default_factory=dict)
    tokens: list[WebToken] = Field(default_factory=list)
    proxy_header: str | None = Field(
        default=None, description="header a trusted reverse proxy sets to the user name "
                                  "(X-Forwarded-User); single sign-on")
    trusted_proxies: list[str] = Field(default_factory=lambda: ["127.0.0.1/32", "::1/128"],
                                       description="addresses whose proxy header is believed")
    public_teams: list[str] = Field(default_factory=list,
                                    description="teams readable without login (kiosk screens)")
    public_networks: list[str] = Field(
        default_factory=lambda: ["127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12",
                                 "192.168.0.0/16", "::1/128", "fc00::/7"],
        description="networks from which public_teams are readable")
    session_hours: float = Field(default=12.0, gt=0, le=24 * 90)
    login_attempts: int = Field(default=5, ge=1,
                                description="failed logins per address and user per "
                                            "login_window before refusing for a while")
    login_window: Duration = Field(default=300.0, gt=0)
    digest_sink: str | None = Field(
        default=None, description="the email sink that sends people's digests of what they "
                                  "follow (to each person's email); none: no digests")
    deliver_acks: bool = Field(
        default=False, description="deliver an acknowledgement (\"on it\") to the post's "
                                   "teams' sinks like a comment, in the post's thread where "
                                   "the sink threads; off: stored and shown, not sent")
    poll_ms: float = Field(default=250.0, gt=0, le=60_000,
                           description="how often a web process looks for new posts where "
                                       "the store has no LISTEN/NOTIFY (SQLite, MariaDB)")


class FleetSettings(_Strict):
    """Several daemons on one PostgreSQL or MariaDB store (docs/fleet.md): each source runs
    on exactly one of them, and a survivor takes a dead daemon's sources over."""

    enabled: bool | None = Field(
        default=None, description="null: on with a PostgreSQL or MariaDB store, off with "
                                  "SQLite (one daemon per SQLite file; true is refused there)")
    takeover: Duration = Field(
        default=10.0, ge=1.0, le=3600,
        description="a dead or cut-off holder's sources run on another daemon within this; "
                    "a daemon that cannot reach the store stops its sources well before")
    weight: int = Field(default=1, ge=1, le=1000,
                        description="this daemon's share of the sources relative to the others")
    max_sources: int | None = Field(default=None, ge=0,
                                    description="never hold more sources than this")


class PluginSettings(_Strict):
    disable: list[str] = Field(default_factory=list,
                               description="plugin names to block, as `floorstream plugins` "
                                           "lists them")


class Settings(_Strict):
    """The top level of the config file."""

    store: str = Field(default="sqlite:///floorstream.db",
                       description="SQLAlchemy URL of the store: sqlite:///path, "
                                   "postgresql+psycopg://user@host/db, "
                                   "mysql+pymysql://user@host/db")
    default_team: str = Field(default="general",
                              description="team that gets posts no route matched")
    admin_team: str = Field(default="admin", description="team that gets source problems")
    teams: dict[str, TeamConfig] = Field(default_factory=dict)
    sources: list[dict[str, Any]] = Field(default_factory=list)
    routes: list[RouteRule] = Field(default_factory=list)
    sinks: list[dict[str, Any]] = Field(default_factory=list)
    flood: FloodOptions | None = Field(default_factory=FloodOptions,
                                       description="default flood control (null: off)")
    pipeline: PipelineSettings = Field(default_factory=PipelineSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    plugins: PluginSettings = Field(default_factory=PluginSettings)
    health: HealthSettings = Field(default_factory=HealthSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    fleet: FleetSettings = Field(default_factory=FleetSettings)
    web: WebSettings = Field(default_factory=WebSettings)
    display: DisplaySettings = Field(default_factory=DisplaySettings)


@dataclass(frozen=True)
class Config:
    """A validated configuration: the settings plus plugin-validated sources and sinks."""

    settings: Settings
    sources: list[SourceConfig]
    sinks: list[SinkConfig]
    file: str = "<memory>"
    secrets: frozenset[str] = field(default_factory=frozenset)
    warnings: tuple[str, ...] = ()

    def source(self, name: str) -> SourceConfig:
        for source in self.sources:
            if source.name == name:
                return source
        raise KeyError(name)
