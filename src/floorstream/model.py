"""The three records that flow through floorstream: Change → Event → Post.

They are frozen so a record can be handed to plugins, queued and replayed without anyone
mutating it behind the pipeline's back. Ids are derived from content (never random) so that a
replay after a crash produces the same ids and the store's idempotent insert drops the copy.

This module imports nothing else of floorstream: every other layer may import it.
"""

from __future__ import annotations

import enum
import hashlib
import json
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["DIGEST_SOURCE", "PEOPLE_SOURCE", "RELATIONS", "Change", "Event", "Post", "Relation",
           "Severity", "event_id", "utcnow"]

#: How a post relates to the earlier posts of its thread (design.md §9):
#: ``new`` a story of its own; ``update`` the story changed (says what, since the last post);
#: ``resolution`` the story is over (a fault cleared, an estimate became an actual);
#: ``retraction`` the earlier post no longer holds (a cancelled document).
Relation = Literal["new", "update", "resolution", "retraction"]
RELATIONS: tuple[str, ...] = ("new", "update", "resolution", "retraction")
#: the source of people's comments (the web feed, docs/web.md): their actor is the person
#: (``fields["actor"]``), not an application
PEOPLE_SOURCE = "@people"
#: the source of a person's e-mail digest of what they follow (docs/web.md): a post with no
#: team, addressed to its person (``fields["to"]``, which the email sink sends it to)
DIGEST_SOURCE = "@digest"


def utcnow() -> datetime:
    """Timezone-aware now; every timestamp in floorstream is aware UTC."""
    return datetime.now(UTC)


class Severity(enum.IntEnum):
    """How urgent an event is. Ordered, so routing can say "at least warning"."""

    INFO = 10
    NOTICE = 20
    WARNING = 30
    CRITICAL = 40

    @classmethod
    def parse(cls, value: str | int | Severity) -> Severity:
        """Accept ``"warning"``, ``"WARNING"``, ``30`` or a Severity (config and API input)."""
        if isinstance(value, Severity):
            return value
        if isinstance(value, int):
            return cls(value)
        try:
            return cls[value.strip().upper()]
        except KeyError:
            names = ", ".join(s.name.lower() for s in cls)
            raise ValueError(f"unknown severity {value!r}; expected one of {names}") from None

    @property
    def label(self) -> str:
        return self.name.lower()


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def event_id(source: str, subject: str, position: str, type: str) -> str:
    """Deterministic id of an event: the same observation always yields the same id."""
    digest = hashlib.blake2b(digest_size=16)
    for part in (source, subject, position, type):
        digest.update(part.encode("utf-8"))
        digest.update(b"\x1f")
    return digest.hexdigest()


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=False)

    @classmethod
    def _trusted(cls, values: dict[str, Any]) -> Any:
        """An instance from values that are complete and already of the right types.

        ``model_construct`` costs ~10 µs as it re-derives defaults field by field; the pipeline
        builds an Event and a Post per interesting change, all fields known, so it fills the
        instance directly (the same three slots pydantic's own constructor fills).
        """
        instance = cls.__new__(cls)
        object.__setattr__(instance, "__dict__", values)
        object.__setattr__(instance, "__pydantic_fields_set__", set(values))
        object.__setattr__(instance, "__pydantic_extra__", None)
        object.__setattr__(instance, "__pydantic_private__", None)
        return instance


class Change(_Frozen):
    """What an adapter observed, before any interpretation.

    Fields:
        source: the configured source name (``presses``, ``production-orders``).
        subject: the entity observed (``press-07``, ``mrp_production:42``, ``ASN 0001234``).
        kind: what sort of observation (``telemetry``, ``row.updated``, ``asn.received``).
        position: the source's cursor or offset as a string; replaying the same observation
            must give the same position, since event ids are derived from it.
        observed_at: when floorstream saw it.
        occurred_at: when it happened at the source (falls back to ``observed_at``).
        data: the payload or the row after the change.
        before: the row before the change, when the source knows it.
        attrs: flat string labels (site, area, line) used by routing and templates.
    """

    source: str
    subject: str
    kind: str
    position: str
    observed_at: datetime = Field(default_factory=utcnow)
    occurred_at: datetime | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    before: dict[str, Any] | None = None
    attrs: dict[str, str] = Field(default_factory=dict)

    @field_validator("observed_at", "occurred_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return None if value is None else _aware(value)

    @property
    def when(self) -> datetime:
        """The best known time of the observation (source time, else observation time)."""
        return self.occurred_at or self.observed_at


class Event(_Frozen):
    """What a change means, as decided by a detector (or published directly by code).

    Fields:
        id: deterministic hash of (source, subject, position, type); see :func:`event_id`.
        type: dotted event type (``machine.state_changed``, ``metric.limit_exceeded``…).
        severity: :class:`Severity`.
        source, subject: copied from the change, so an event stands on its own.
        position: the position that makes this event unique within the subject.
        occurred_at: when it happened.
        fields: what the renderer needs: before/after, value, limit, unit, field…
        attrs: the change's attrs (site, area, line).
        change: the Change it came from, when there was one (timers have none).
        thread: the story this event belongs to (a shipment, an alarm instance); None: the
            subject, so a machine's posts form one thread.
        relation: ``new``, ``update``, ``resolution`` or ``retraction`` (see :data:`Relation`).
        refers_to: id of the earlier event this one updates, resolves or retracts.
    """

    id: str
    type: str
    severity: Severity = Severity.INFO
    source: str
    subject: str
    position: str
    occurred_at: datetime
    fields: dict[str, Any] = Field(default_factory=dict)
    attrs: dict[str, str] = Field(default_factory=dict)
    change: Change | None = None
    thread: str | None = None
    relation: Relation = "new"
    refers_to: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _clears(cls, data: Any) -> Any:
        return _clears_to_relation(data)

    @field_validator("occurred_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return _aware(value)

    @property
    def clears(self) -> str | None:
        """The event this one resolves (a limit cleared, a machine back online), if any."""
        return self.refers_to if self.relation == "resolution" else None

    @classmethod
    def create(
        cls,
        *,
        type: str,
        source: str,
        subject: str,
        position: str,
        occurred_at: datetime,
        severity: Severity = Severity.INFO,
        fields: dict[str, Any] | None = None,
        attrs: dict[str, str] | None = None,
        change: Change | None = None,
        clears: str | None = None,
        thread: str | None = None,
        relation: Relation | None = None,
        refers_to: str | None = None,
    ) -> Event:
        """Build an event with its deterministic id filled in.

        ``clears=id`` is short for ``relation="resolution", refers_to=id``. The arguments are
        typed and normalised here, so pydantic's validation is skipped: this runs for every
        event on the pipeline's hot path.
        """
        if clears is not None:
            relation, refers_to = relation or "resolution", refers_to or clears
        if relation is None:
            relation = "new"
        elif relation not in RELATIONS:
            raise ValueError(f"unknown relation {relation!r}; expected one of {RELATIONS}")
        event: Event = cls._trusted({
            "id": event_id(source, subject, position, type),
            "type": type,
            "severity": Severity.parse(severity),
            "source": source,
            "subject": subject,
            "position": position,
            "occurred_at": _aware(occurred_at),
            "fields": fields if fields is not None else {},
            "attrs": attrs if attrs is not None else {},
            "change": change,
            "thread": thread,
            "relation": relation,
            "refers_to": refers_to,
        })
        return event


class Post(_Frozen):
    """What people read in a team's feed.

    Fields:
        id: the id of the event it renders (so a replay cannot post twice).
        type, source, subject: from the event, kept for filtering and threading.
        summary: one plain-language line, at most 200 characters.
        body: optional longer text.
        severity: from the event.
        teams: the teams it was routed to.
        tags: free labels (attrs rendered as ``key:value`` plus detector tags).
        links: name → URL.
        occurred_at: when the underlying thing happened.
        created_at: when the post was made.
        thread: the story it belongs to (the subject unless the producer chose another key);
            indexed, so a subject's or a shipment's whole story is one lookup.
        relation: ``new``, ``update``, ``resolution`` or ``retraction`` of its thread's story.
        refers_to: id of the post this one updates, resolves or retracts, so sinks can thread,
            edit or answer it (``clears`` is the same for a resolution).
        fields: the event's fields, kept for machine readers.
        routing: why each team got it (rule index/name → team), for ``floorstream explain``.
    """

    id: str
    type: str
    source: str
    subject: str
    summary: str = Field(max_length=200)
    body: str | None = None
    severity: Severity = Severity.INFO
    teams: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    links: dict[str, str] = Field(default_factory=dict)
    occurred_at: datetime
    created_at: datetime = Field(default_factory=utcnow)
    thread: str = ""
    relation: Relation = "new"
    refers_to: str | None = None
    fields: dict[str, Any] = Field(default_factory=dict)
    routing: tuple[dict[str, str], ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _clears(cls, data: Any) -> Any:
        data = _clears_to_relation(data)
        if isinstance(data, dict) and not data.get("thread") and data.get("subject"):
            data = {**data, "thread": data["subject"]}
        return data

    @field_validator("occurred_at", "created_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return _aware(value)

    @property
    def clears(self) -> str | None:
        """The post this one resolves (a fault over, a machine running again), if any."""
        return self.refers_to if self.relation == "resolution" else None

    def as_activity(self) -> dict[str, Any]:
        """This post as a W3C Activity Streams 2.0 activity.

        An ``Announce`` of a ``Note`` for a new story or a resolution, an ``Update`` for an
        update, an ``Undo`` of the earlier post for a retraction. The actor is the source (an
        ``Application``), the object the post's subject as a ``Note`` carrying the summary,
        the target the teams' feeds (``Collection``); ``context`` is the thread and
        ``inReplyTo`` the post this one refers to.
        """
        published = self.occurred_at.isoformat().replace("+00:00", "Z")
        kind = _ACTIVITY_TYPES[self.relation]
        activity: dict[str, Any] = {
            "@context": [
                "https://www.w3.org/ns/activitystreams",
                {"floorstream": "urn:floorstream:ns#"},
            ],
            "type": kind,
            "id": f"urn:floorstream:post:{self.id}",
            "actor": {"type": "Application", "id": f"urn:floorstream:source:{self.source}",
                      "name": self.source},
            "summary": self.summary,
            "published": published,
            "updated": self.created_at.isoformat().replace("+00:00", "Z"),
            "object": {
                "type": "Note",
                "id": f"urn:floorstream:subject:{self.source}:{self.subject}",
                "name": self.subject,
                "content": self.body or self.summary,
                "mediaType": "text/plain",
            },
            "target": [
                {"type": "Collection", "id": f"urn:floorstream:team:{team}", "name": team}
                for team in self.teams
            ],
            "tag": [{"type": "Object", "name": tag} for tag in self.tags],
            "floorstream:type": self.type,
            "floorstream:severity": self.severity.label,
            "floorstream:fields": json.loads(json.dumps(self.fields, default=str)),
        }
        if self.links:
            activity["url"] = [
                {"type": "Link", "href": href, "name": name} for name, href in self.links.items()
            ]
        activity["context"] = f"urn:floorstream:thread:{self.thread or self.subject}"
        activity["floorstream:relation"] = self.relation
        person = self.fields.get("actor") if self.source == PEOPLE_SOURCE else None
        if isinstance(person, str) and person:
            # a person's comment from the web feed: a Note they created, not an announcement
            activity["type"] = "Create"
            activity["actor"] = {"type": "Person", "id": f"urn:floorstream:person:{person}",
                                 "name": str(self.fields.get("actor_name") or person)}
        if self.refers_to:
            activity["inReplyTo"] = f"urn:floorstream:post:{self.refers_to}"
            if self.relation == "retraction":
                # an Undo's object is the activity it takes back
                activity["object"] = {"type": "Announce",
                                      "id": f"urn:floorstream:post:{self.refers_to}",
                                      "summary": self.summary}
        return activity


#: relation → the Activity Streams 2.0 activity type of the post
_ACTIVITY_TYPES: dict[str, str] = {"new": "Announce", "update": "Update",
                                   "resolution": "Announce", "retraction": "Undo"}


def _clears_to_relation(data: Any) -> Any:
    """Accept the older ``clears=id`` spelling: a resolution of that id."""
    if isinstance(data, dict) and "clears" in data:
        data = dict(data)
        clears = data.pop("clears")
        if clears is not None and not data.get("refers_to"):
            data["refers_to"] = clears
            data.setdefault("relation", "resolution")
    return data
