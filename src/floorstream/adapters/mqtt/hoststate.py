"""Sparkplug host applications' STATE messages: who is online.

A host application (a SCADA, an MES) announces itself on a retained STATE topic, and the
broker publishes its will when it drops off:

- Sparkplug 3.0: ``spBv1.0/STATE/<host_id>``, JSON ``{"online": true, "timestamp": <ms>}``;
- Sparkplug 2.2: ``STATE/<host_id>``, the plain text ``ONLINE`` or ``OFFLINE``.

Edge nodes of a namespace with a Primary Host stop publishing (store-and-forward) while it is
offline, so people watching machines want to know. The messages are never quarantined: they
are not edge data, and a host's own format quirks are not a reason to bury them — an unreadable
one is logged and skipped (:func:`parse_state` says why).

:class:`HostStates` remembers each host's last state (it travels in the source's checkpoint),
so the retained message a subscription delivers again after every restart, or a 3.0 message
older than the one already seen, posts nothing; only a change does. The first message ever
seen of a host is a baseline when it says online (a fresh start would otherwise announce every
host), a post when it says offline.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

__all__ = ["HostState", "HostStates", "parse_state"]


@dataclass(frozen=True)
class HostState:
    host: str
    online: bool
    timestamp: int | None  # 3.0: the host's millisecond time; 2.2: None


def parse_state(levels: list[str], payload: bytes) -> HostState | str:
    """``levels`` from ``spBv1.0`` (3.0) or ``STATE`` (2.2) on. A HostState, or why not."""
    host = "/".join(levels[2:]) if levels[0] == "spBv1.0" else "/".join(levels[1:])
    if not host:
        return "STATE topic without a host id"
    text = payload.strip()
    if text in (b"ONLINE", b"OFFLINE"):
        return HostState(host, text == b"ONLINE", None)
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return f"STATE payload is neither JSON nor ONLINE/OFFLINE: {payload[:60]!r}"
    if not isinstance(data, dict) or not isinstance(data.get("online"), bool):
        return f"STATE payload has no boolean 'online': {payload[:60]!r}"
    stamp = data.get("timestamp")
    if stamp is not None and (not isinstance(stamp, int) or isinstance(stamp, bool)
                              or not 0 <= stamp < 1 << 63):
        return f"STATE timestamp is not a millisecond time: {stamp!r}"
    return HostState(host, data["online"], stamp)


class HostStates:
    """The last state of every host application seen, and whether a new message changes it."""

    def __init__(self) -> None:
        self.hosts: dict[str, dict[str, Any]] = {}

    def update(self, state: HostState, now_ms: int) -> tuple[str, dict[str, Any]] | None:
        """Record ``state``; returns ``("offline" | "online", previous record)`` when it is
        worth a post, None when it changes nothing (a repeat, an older message, a first
        online)."""
        last = self.hosts.get(state.host)
        if last is not None:
            if state.timestamp is not None and last.get("timestamp") is not None and \
                    state.timestamp <= last["timestamp"]:
                return None  # older than (or the same as) what we know
            if last["online"] == state.online:
                if state.timestamp is not None:
                    last["timestamp"] = state.timestamp
                return None
        previous = dict(last or {})
        record = {"online": state.online, "timestamp": state.timestamp,
                  "n": int((last or {}).get("n", 0)) + 1,
                  "since": state.timestamp if state.timestamp is not None else now_ms,
                  "event": None}
        self.hosts[state.host] = record
        if last is None and state.online:
            return None
        return ("online" if state.online else "offline"), previous

    def dump(self) -> dict[str, Any]:
        return self.hosts

    def load(self, data: dict[str, Any]) -> None:
        self.hosts = {str(k): dict(v) for k, v in data.items() if isinstance(v, dict)}
