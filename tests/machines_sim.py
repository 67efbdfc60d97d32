"""A simulated plant shift for the time-model tests: machines changing state on their own
(event) clock, read by a :class:`~floorstream.processing.Processor` that is ticked on a
separate wall clock, so a replay faster than real time, a backlog or a machine clock that is
months off can be reproduced in a second without services.

Every raw state change is known, so a test can check the invariant of issue 12: each one is a
post or is counted in a digest (a flood digest, a folded post, a blip, a flap summary).

``restart_at`` stops the plant's daemon in the middle of the shift and starts a new one: every
state the batches so far committed is written to a real store (SQLite), a new Processor reads
it back as a restarted daemon does (nothing else survives), and the shift goes on after
``down`` wall seconds of downtime, the readings sent meanwhile delivered at once on restart.
"""

from __future__ import annotations

import contextlib
import json
import random
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from floorstream.config import parse_config
from floorstream.model import Change, Post
from floorstream.plugins import build_plugins
from floorstream.processing import Envelope, Processor
from floorstream.store.store import CommitBatch, Store

__all__ = ["Plant", "Shift", "account"]

STATES = ("RUNNING", "STOPPED", "HELD", "FAULT")


@dataclass
class Shift:
    """What the machines did: readings per machine in event time and the raw transitions."""

    readings: list[tuple[float, str, str]] = field(default_factory=list)  # (t, machine, state)
    transitions: int = 0


def make_shift(machines: int = 50, hours: float = 8.0, every: float = 30.0,
               changes: int = 20, pauses: int = 1, seed: int = 7) -> Shift:
    """``machines`` each reporting every ``every`` s for ``hours``, changing state about
    ``changes`` times (some in quick bursts), with ``pauses`` two-hour stretches of silence."""
    rng = random.Random(seed)
    shift = Shift()
    length = hours * 3600
    for m in range(machines):
        name = f"m{m:02d}"
        switches = sorted(rng.uniform(60, length) for _ in range(changes))
        # a burst: three changes in 90 s, as a flapping sensor does
        burst = rng.uniform(600, length - 600)
        switches += [burst, burst + 30, burst + 60]
        switches.sort()
        gaps = [(start, start + 7200) for start in
                (rng.uniform(1800, length - 9000) for _ in range(pauses))]
        state = "RUNNING"
        t = 0.0
        k = 0
        while t < length:
            while k < len(switches) and switches[k] <= t:
                state = rng.choice([s for s in STATES if s != state])
                k += 1
            if not any(a <= t < b for a, b in gaps):
                shift.readings.append((t, name, state))
            t += every
    shift.readings.sort()
    last: dict[str, str] = {}
    for _, name, state in shift.readings:
        if name in last and last[name] != state:
            shift.transitions += 1
        last[name] = state
    return shift


CONFIG = """
store: "sqlite:///:memory:"
teams: {{maintenance: {{}}}}
flood: {flood}
sources:
  - name: plant
    adapter: mqtt
    url: mqtt://127.0.0.1:1883
    topics: ["plant/#"]
    {settle}
    detect:
      - state_change: {{field: state}}
      - silence: {{after: 60s}}
"""


class Plant:
    """Replays a shift through a Processor: ``speed`` event seconds per wall second, the event
    clock ``skew`` seconds off the wall clock, ticks every ``tick`` wall seconds."""

    def __init__(self, flood: str = "{max_posts: 3, window: 5m}", settle: str = "") -> None:
        self.plugins = plugins = build_plugins()
        self.config = parse_config(CONFIG.format(flood=flood, settle=settle), plugins)
        self.processor = Processor(self.config, plugins)
        self.posts: list[Post] = []
        #: (source, subject, key) → the state as last committed (JSON, as the store keeps it)
        self.committed: dict[tuple[str, str, str], str] = {}
        self.restarts = 0
        self._store: Store | None = None
        self._keep = False

    def replay(self, shift: Shift, *, speed: float = 1.0, skew: float = 0.0,
               tick: float = 1.0, batch: int = 20, restart_at: int | None = None,
               down: float = 30.0, store: str | None = None) -> list[Post]:
        """At ``speed`` 1 the shift is live (event time = wall time, less ``skew``); faster,
        it is history replayed: it happened in the nine hours before the replay started.
        ``restart_at``: the daemon stops before that reading and a new one starts ``down``
        wall seconds later from what was committed, in the store at ``store`` (a URL)."""
        # on a whole hour, so every mode's event clock has the same windows (a skew is a whole
        # number of days): runs differ only in how they are read, not in what happened
        wall0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        assert restart_at is None or store is not None, "a restart needs a store"
        self._keep = restart_at is not None
        try:
            with _clock() as clock:
                return self._replay(shift, clock, wall0, speed, skew, tick, batch,
                                    restart_at, down, store)
        finally:
            if self._store is not None:
                self._store.close()
                self._store = None

    def _replay(self, shift: Shift, clock: list[datetime], wall0: datetime, speed: float,
                skew: float, tick: float, batch: int, restart_at: int | None, down: float,
                store: str | None) -> list[Post]:
        event0 = wall0 - timedelta(hours=0 if speed == 1 else 9) - timedelta(seconds=skew)
        pending: list[Envelope] = []
        next_tick = 0.0
        resumed = 0.0  # the wall time the restarted daemon reads its first input
        for n, (t, name, state) in enumerate(shift.readings):
            if n == restart_at:
                assert store is not None
                self._flush(pending)  # a clean stop: what was read is processed, committed
                resumed = clock[0].timestamp() - wall0.timestamp() + down
                self._restart(store)
                next_tick = resumed
            wall = max(t / speed, resumed)
            clock[0] = wall0 + timedelta(seconds=wall)
            while next_tick <= wall:
                clock[0] = wall0 + timedelta(seconds=next_tick)
                self._flush(pending)
                self._commit(self.processor.tick(wall0 + timedelta(seconds=next_tick)))
                next_tick += tick
            pending.append(Envelope("plant", change=Change(
                source="plant", subject=name, kind="telemetry", position=str(n),
                occurred_at=event0 + timedelta(seconds=t),
                observed_at=wall0 + timedelta(seconds=wall), data={"state": state})))
            if len(pending) >= batch:
                self._flush(pending)
        self._flush(pending)
        end = max(shift.readings[-1][0] / speed, resumed)
        # quiet after the end for a little longer than the longest window (5 min) in wall
        # time: no window may hold a post longer than its length
        for extra in range(1, 330, 5):
            clock[0] = wall0 + timedelta(seconds=end + extra)
            self._commit(self.processor.tick(wall0 + timedelta(seconds=end + extra)))
        return self.posts

    def _flush(self, pending: list[Envelope]) -> None:
        if pending:
            self._commit(self.processor.process(pending))
            pending.clear()

    def _commit(self, batch: CommitBatch) -> None:
        """What the daemon commits of a batch: its posts, and its states as they are now
        (lazily changed ones too: the daemon writes them with its commits)."""
        self.processor.collect_lazy(batch)
        self.posts += batch.posts
        if self._keep:  # (only a run with a restart needs them: they cost a third of it)
            for key, data in batch.states.items():
                self.committed[key] = json.dumps(data)

    def _restart(self, url: str) -> None:
        """A new daemon: the committed states in a real store, read back by a new Processor;
        whatever was only in memory (the held events, the watermark unless persisted) is
        gone."""
        self.restarts += 1
        store = Store.open(url)
        try:
            batch = CommitBatch(states={key: json.loads(data)
                                        for key, data in self.committed.items()})
            store.commit(batch)
            self.processor = Processor(self.config, self.plugins, states=store)
        except BaseException:
            store.close()
            raise
        self._store = store


@contextlib.contextmanager
def _clock() -> Iterator[list[datetime]]:
    """The simulated wall clock, in place of the real one wherever floorstream reads it (the
    time-driven parts: silence and flood control), so a shift replays in a second."""
    import floorstream.model as model

    modules = [m for m in list(sys.modules.values())
               if m is not None and getattr(m, "__name__", "").startswith("floorstream")
               and getattr(m, "utcnow", None) is model.utcnow]
    clock = [datetime.now(UTC)]
    original = model.utcnow
    for module in modules:
        module.utcnow = lambda: clock[0]  # type: ignore[attr-defined]
    try:
        yield clock
    finally:
        for module in modules:
            module.utcnow = original  # type: ignore[attr-defined]


def account(posts: list[Post]) -> dict[str, int]:
    """How many raw state changes the posts show or count, by where they went."""
    tally: Counter[str] = Counter()
    for post in posts:
        f = post.fields
        if post.type == "machine.state_changed":
            tally["posted"] += 1
            tally["folded"] += len(f.get("via") or ())
        elif post.type == "machine.blip" and f.get("stream", "").startswith("state"):
            tally["blips"] += int(f["transitions"])
        elif post.type == "machine.flapping" and f.get("stream", "").startswith("state"):
            tally["flapping"] += int(f.get("held", 0))
        elif post.type == "machine.stable" and f.get("stream", "").startswith("state"):
            tally["flapping"] += int(f["suppressed"])
        elif post.type == "flood.digest":
            tally["digested"] += sum(n for stream, n in (f.get("transitions") or {}).items()
                                     if stream.startswith("state"))
    tally["total"] = sum(tally.values())
    return dict(tally)
