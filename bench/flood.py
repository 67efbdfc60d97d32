"""Flood control's cost per post and the size of the state it persists.

A busy machine's shape: routine info posts ("cycle complete") with, every ``--fault-every``
posts, a critical raise and its clear, through one subject's :class:`FloodControl` with the
default limit (10 per 5 min), on event time one post a second. The state is round-tripped
through JSON after every post, as the store writes it, and that is part of the cost reported.

    .venv/bin/python bench/flood.py [--posts 100000] [--fault-every 50]

Prints JSON: µs per admitted post (with and without the JSON round trip), how many went out,
were folded, and the largest persisted state in bytes (it holds up to 64 folded ids per
severity level). Numbers from a shared, loaded machine are only comparable between runs
taken together.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime, timedelta

from floorstream.flood import FloodControl
from floorstream.model import Event, Severity
from floorstream.plugin import DetectorState, FloodOptions

T0 = datetime(2026, 11, 2, 6, 0, tzinfo=UTC)


def _events(posts: int, fault_every: int) -> list[Event]:
    out: list[Event] = []
    raise_id: str | None = None
    for n in range(posts):
        at = T0 + timedelta(seconds=n)
        if fault_every and n % fault_every == fault_every - 2:
            event = Event.create(type="mtconnect.condition", source="cnc", subject="cnc-1",
                                 position=f"f{n}", occurred_at=at, severity=Severity.CRITICAL)
            raise_id = event.id
        elif fault_every and n % fault_every == fault_every - 1 and raise_id is not None:
            event = Event.create(type="mtconnect.condition_cleared", source="cnc",
                                 subject="cnc-1", position=f"c{n}", occurred_at=at,
                                 relation="resolution", refers_to=raise_id)
        else:
            event = Event.create(type="mtconnect.cycle_complete", source="cnc", subject="cnc-1",
                                 position=f"p{n}", occurred_at=at, fields={"part": n})
        out.append(event)
    return out


def _run(events: list[Event], round_trip: bool) -> dict[str, float]:
    control = FloodControl(FloodOptions(), "cnc")
    state = DetectorState()
    shown = folded = digests = 0
    largest = 0
    started = time.perf_counter()
    for event in events:
        out = control.admit(event, state, now=event.occurred_at)
        if out and out[-1].id == event.id:
            shown += 1
        else:
            folded += 1
        digests += sum(1 for e in out if e.type == "flood.digest")
        if round_trip:
            text = json.dumps(state.data)
            largest = max(largest, len(text))
            state = DetectorState(json.loads(text))
    elapsed = time.perf_counter() - started
    return {"us_per_post": round(elapsed / len(events) * 1e6, 2), "shown": shown,
            "folded": folded, "digests": digests, "largest_state_bytes": largest}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--posts", type=int, default=100_000)
    parser.add_argument("--fault-every", type=int, default=50)
    args = parser.parse_args()
    events = _events(args.posts, args.fault_every)
    print(json.dumps({"posts": args.posts, "fault_every": args.fault_every,
                      "admit_only": _run(events, round_trip=False),
                      "with_json_round_trip": _run(events, round_trip=True)}, indent=2))


if __name__ == "__main__":
    main()
