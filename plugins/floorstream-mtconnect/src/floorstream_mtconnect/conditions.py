"""``mtconnect.condition``: MTConnect Conditions as alarms that open, change and clear.

A Condition data item holds *several* states at once: a Warning ``MOT-WARN`` and a Fault
``MOT-OVR`` on the spindle's amperage are two open alarms, each its own thread. So the state
kept per device is ``open[item][native code] = the alarm``:

* ``Warning``/``Fault`` with a code not open: a new alarm post (``new``, its own thread);
  the same code at another level (Warning → Fault): an ``update`` in that thread; the same
  code at the same level (an agent repeating itself, a reconnect): nothing.
* ``Normal`` with a native code clears that alarm; ``Normal`` without one clears every alarm
  of the item: one ``resolution`` post per alarm, in its thread, with how long it lasted.
* ``Unavailable`` is the agent not knowing, not a fault and not a clear: no post, and the
  alarms stay open until the item reports again (a Normal then clears them, the same Fault
  says nothing).
* a ``/current`` lists all of an item's active alarms: an alarm it does not list cleared
  while nobody watched (a gap in the agent's buffer), and gets its ``resolution`` then.

The state lives in the detector state the pipeline commits with the posts, so a daemon
restart neither repeats an alarm nor forgets one; a baseline (first start, agent restart)
learns the open alarms without posting them.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from floorstream.model import Change, Event, Severity
from floorstream.plugin import Detector, DetectorOptions, DetectorState, SeverityName
from floorstream_mtconnect.observations import META

__all__ = ["ConditionOptions", "Conditions"]


class ConditionOptions(DetectorOptions):
    fault: SeverityName = Field(default="critical", description="severity of a Fault")
    warning: SeverityName = Field(default="warning", description="severity of a Warning")
    cleared: SeverityName = Field(default="info", description="severity of a clear")
    items: list[str] = Field(default_factory=list,
                             description="only these condition items (name or id); "
                                         "empty: all")


class Conditions(Detector):
    name: ClassVar[str] = "mtconnect.condition"
    options_model: ClassVar[type[DetectorOptions]] = ConditionOptions

    def __init__(self, options: DetectorOptions, source: str) -> None:
        super().__init__(options, source)
        assert isinstance(options, ConditionOptions)
        self.opts = options
        self._severity = {"FAULT": Severity.parse(options.fault),
                          "WARNING": Severity.parse(options.warning)}
        self._cleared = Severity.parse(options.cleared)
        self._items = frozenset(options.items)

    def on_change(self, change: Change, state: DetectorState) -> list[Event]:
        meta = change.data.get(META)
        if not isinstance(meta, dict) or meta.get("category") != "CONDITION":
            return []
        item, key = str(meta.get("item", "")), str(meta.get("key", ""))
        if self._items and item not in self._items and key not in self._items:
            return []
        level = str(meta.get("level", "")).upper()
        code = str(meta.get("native_code") or "")
        all_open: dict[str, dict[str, Any]] = state.data.setdefault("open", {})
        alarms: dict[str, Any] = dict(all_open.get(item, {}))
        events: list[Event] = []
        if level == "NORMAL":
            for closed in ([code] if code else sorted(alarms)):
                alarm = alarms.pop(closed, None)
                if alarm is not None:
                    events.append(self._cleared_event(change, meta, closed, alarm))
        elif level in self._severity:
            alarm = alarms.get(code)
            if alarm is None:
                event = self._alarm(change, meta, code, level, None)
                alarms[code] = {"level": level, "event": event.id, "thread": event.thread,
                                "at": change.when.timestamp(), "text": meta.get("text", "")}
                events.append(event)
            elif alarm["level"] != level:
                event = self._alarm(change, meta, code, level, alarm)
                alarms[code] = {**alarm, "level": level, "text": meta.get("text", "")}
                events.append(event)
        else:
            return []  # UNAVAILABLE (or a level we do not know): neither a fault nor a clear
        active = meta.get("active")
        if isinstance(active, list):  # a /current: what it does not list is no longer active
            # the same old observation may stand in two reads: each read's clears are its own
            at = f"@{meta.get('active_at', '')}"
            for gone in sorted(set(alarms) - {str(c) for c in active}):
                events.append(self._cleared_event(change, meta, gone, alarms.pop(gone), at))
        if alarms != all_open.get(item, {}):
            if alarms:
                all_open[item] = alarms
            else:
                all_open.pop(item, None)
            state.update(open=all_open)
        return events

    def _fields(self, meta: dict[str, Any], code: str, level: str) -> dict[str, Any]:
        kind = str(meta.get("condition_type") or meta.get("type") or "")
        return {"item": meta.get("key"), "item_id": meta.get("item"), "level": level,
                "native_code": code, "native_severity": meta.get("native_severity") or "",
                "qualifier": meta.get("qualifier") or "", "text": meta.get("text") or "",
                "component": meta.get("component") or "", "condition": kind.lower()}

    def _alarm(self, change: Change, meta: dict[str, Any], code: str, level: str,
               alarm: dict[str, Any] | None) -> Event:
        fields = self._fields(meta, code, level)
        position = f"{change.position}#condition:{meta.get('item')}:{code}"
        if alarm is None:
            thread = f"{change.subject}/condition/{meta.get('item')}/{code or '-'}" \
                     f"@{change.position}"
            return self.event(change, "mtconnect.condition", self._severity[level], fields,
                              position=position, thread=thread)
        fields["before"] = alarm["level"]
        return self.event(change, "mtconnect.condition", self._severity[level], fields,
                          position=position, thread=alarm.get("thread"), relation="update",
                          refers_to=alarm["event"])

    def _cleared_event(self, change: Change, meta: dict[str, Any], code: str,
                       alarm: dict[str, Any], at: str = "") -> Event:
        fields = self._fields(meta, code, "NORMAL")
        fields.update(before=alarm["level"], text=alarm.get("text") or "",
                      duration_s=max(0.0, change.when.timestamp() - float(alarm["at"])))
        return self.event(change, "mtconnect.condition_cleared", self._cleared, fields,
                          position=f"{change.position}{at}#condition:{meta.get('item')}:"
                                   f"{code}",
                          thread=alarm.get("thread"), clears=alarm["event"])
