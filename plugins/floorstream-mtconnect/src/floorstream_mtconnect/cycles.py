"""``mtconnect.cycle``: one "cycle complete, part N" post per finished part, not the noise.

A CNC reports Execution (READY → ACTIVE → PROGRAM_COMPLETED → READY) and a part counter
many times a cycle, next to a stream of axis samples nobody wants as posts. What people want
is the cycle. Per controller path (the component the items belong to), this remembers the
execution state, the controller mode, the program and the part count:

* Execution going ACTIVE from a resting state (READY, STOPPED, PROGRAM_COMPLETED…) starts a
  cycle; ACTIVE again after a FEED_HOLD or an INTERRUPTED continues the same one.
* the part count going up by *n* is a cycle complete, "part N" (with *n* when more than one
  was made since the last post, e.g. after the source was unreachable), with the cycle's
  time when its start was seen;
* on a machine without a part counter (none seen on that path), PROGRAM_COMPLETED is the
  cycle complete, without a part number, when the cycle's start was seen (a program found
  completing right after a connection is no cycle we watched);
* the part count going *down* is a reset (a new shift, a new job): learnt, not posted.

Only the counter of the first PART_COUNT item seen on a path counts (TARGET and REMAINING
sub-types are not counts of parts made), so two counters never give two posts for one part.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from floorstream.model import Change, Event, Severity
from floorstream.plugin import Detector, DetectorOptions, DetectorState, SeverityName
from floorstream_mtconnect.observations import META

__all__ = ["CycleOptions", "Cycles"]

#: Execution values a new cycle starts from (anything else → ACTIVE continues a cycle)
_RESTING = frozenset({"READY", "STOPPED", "PROGRAM_COMPLETED", "PROGRAM_STOPPED"})
_NOT_PARTS_MADE = frozenset({"TARGET", "REMAINING", "BAD"})


class CycleOptions(DetectorOptions):
    severity: SeverityName = Field(default="info", description="severity of a cycle post")
    modes: list[str] = Field(default_factory=list,
                             description="post cycles only in these controller modes "
                                         "(e.g. [AUTOMATIC]); empty: in any mode")


class Cycles(Detector):
    name: ClassVar[str] = "mtconnect.cycle"
    options_model: ClassVar[type[DetectorOptions]] = CycleOptions

    def __init__(self, options: DetectorOptions, source: str) -> None:
        super().__init__(options, source)
        assert isinstance(options, CycleOptions)
        self.opts = options
        self._severity = Severity.parse(options.severity)
        self._modes = frozenset(m.upper() for m in options.modes)

    def on_change(self, change: Change, state: DetectorState) -> list[Event]:
        meta = change.data.get(META)
        if not isinstance(meta, dict):
            return []
        kind = meta.get("type")
        if kind not in ("EXECUTION", "PART_COUNT", "CONTROLLER_MODE", "PROGRAM"):
            return []
        value = change.data.get(str(meta.get("key")))
        paths: dict[str, dict[str, Any]] = state.data.setdefault("paths", {})
        name = str(meta.get("component_id") or meta.get("component") or "")
        path = dict(paths.get(name, {}))
        events: list[Event] = []
        now = change.when.timestamp()
        if value is None:
            if not meta.get("unavailable") or kind == "PART_COUNT":
                return []  # a count that comes back higher still counts the parts made
            # an unknown mode, program or execution: forgotten, never reported stale
            path.update({"CONTROLLER_MODE": {"mode": None}, "PROGRAM": {"program": None},
                         "EXECUTION": {"execution": None, "started": None}}[kind])
        elif kind == "CONTROLLER_MODE":
            path["mode"] = str(value)
        elif kind == "PROGRAM":
            path["program"] = str(value)
        elif kind == "EXECUTION":
            before, after = path.get("execution"), str(value)
            if after == "ACTIVE" and (before is None or before in _RESTING
                                      or path.get("started") is None):
                path["started"] = now
            elif after == "PROGRAM_COMPLETED" and before != after \
                    and not path.get("counter") and path.get("started") is not None:
                events += self._cycle(change, meta, path, None, 1, now)
            path["execution"] = after
        else:  # PART_COUNT
            if str(meta.get("sub_type") or "").upper() in _NOT_PARTS_MADE:
                return []
            item = str(meta.get("item"))
            if path.get("counter") not in (None, item):
                return []  # another counter of this path already counts
            path["counter"] = item
            if not isinstance(value, int | float):
                return []
            count, before_count = int(value), path.get("count")
            if before_count is not None and count > before_count:
                events += self._cycle(change, meta, path, count, count - before_count, now)
            path["count"] = count
        if path != paths.get(name):
            paths[name] = path
            state.update(paths=paths)
        return events

    def _cycle(self, change: Change, meta: dict[str, Any], path: dict[str, Any],
               count: int | None, parts: int, now: float) -> list[Event]:
        started, path["started"] = path.get("started"), None
        mode = path.get("mode")
        if self._modes and (mode is None or mode.upper() not in self._modes):
            return []
        fields: dict[str, Any] = {"part_count": count, "parts": parts,
                                  "program": path.get("program"), "mode": mode,
                                  "component": meta.get("component") or "",
                                  "cycle_s": None if started is None else max(0.0, now - started)}
        return [self.event(change, "mtconnect.cycle_complete", self._severity, fields,
                           position=f"{change.position}#cycle")]
