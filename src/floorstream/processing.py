"""Detect → render → route for a batch of inputs, with no threads and no I/O.

The :class:`Processor` is shared by the daemon's pipeline thread and the library API, so an
event published from ERP code and one read off MQTT take exactly the same path. It turns a
batch of envelopes into a :class:`CommitBatch`; writing it is the caller's business.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from floorstream.config import Config, TeamConfig
from floorstream.isolation import is_transient
from floorstream.logs import get_logger
from floorstream.model import PEOPLE_SOURCE, Change, Event, Post, utcnow
from floorstream.plugin import Ack, Checkpoint, Detector, DetectorState, FloodOptions, SourceConfig
from floorstream.plugins import Plugins
from floorstream.render import Renderer, clip
from floorstream.route import Router
from floorstream.store.store import ADAPTER_STATE, CommitBatch, QuarantineItem
from floorstream.timebase import STATE_KEY as WATERMARK
from floorstream.timebase import Watermark

if TYPE_CHECKING:  # imported where a source has flood control or ``states:`` (issue 16)
    from floorstream.flood import FloodControl
    from floorstream.settle import Settle

__all__ = ["HEALTH_SOURCE", "PEOPLE_SOURCE", "Envelope", "Processor", "SourceRuntime"]

log = get_logger("floorstream.pipeline")

#: detector-state key (subject "") under which a source's last batch positions are kept
REPLAY_GUARD = "replay-guard"
#: positions the replay guard keeps at least, across batches (see ``SourceRuntime.remember``)
GUARD_MIN = 64
#: ... and at most this many for a source's unacked window (an MQTT 5 Receive Maximum is 1000
#: by default): the guard is rewritten with every commit, and 1,000 positions in every
#: transaction cost QoS 1 at 5,000 msgs/s ~10 % of its CPU and 1.5 ms of p99 (bench/peers_ab.sh)
GUARD_WINDOW_MAX = 256
#: the source of the daemon's own alerts (docs/daemon.md, "Self-alerts"): routed to the admin
#: team like ``source.problem``; no configured source can be called so (names start alnum)
HEALTH_SOURCE = "@floorstream"
#: PEOPLE_SOURCE (from the model): people's comments from the web feed (docs/web.md), routed
#: to the teams the web chose (those of the post answered, plus @mentions), never folded by
#: flood control


class StateStore(Protocol):
    """Where persisted detector state is read from (the Store)."""

    def detector_states(self, source: str, detectors: Collection[str] | None = None
                        ) -> dict[tuple[str, str], dict[str, Any]]: ...

    def subject_states(self, source: str, subject: str) -> dict[str, dict[str, Any]]: ...

    def subjects_states(self, source: str, subjects: Collection[str]
                        ) -> dict[str, dict[str, dict[str, Any]]]: ...


@dataclass(slots=True)
class Envelope:
    """One unit of work on the queue: a change, a ready event, input to quarantine, or just
    a checkpoint (all of them optional, so a bare checkpoint needs no pseudo-change)."""

    source: str
    change: Change | None = None
    event: Event | None = None
    quarantine: QuarantineItem | None = None
    ack: Ack | None = None
    #: (a :class:`CheckpointParts` is joined only if it is the batch's last of the source)
    checkpoint: Checkpoint | None = None
    #: the change only primes the detectors' state: what they find is not posted
    baseline: bool = False
    #: the adapter's keyed state rows committed with ``checkpoint`` (Emitter.checkpoint)
    state: dict[str, dict[str, Any]] | None = None


@dataclass
class SourceRuntime:
    """A source's detectors, flood control and the per-subject state they keep.

    State is loaded from the store lazily, a subject at a time, the first time the subject is
    seen: a table of a million rows costs memory only for the rows that change. States of
    time-driven detectors (silence, flood windows) are loaded at start instead, since their
    subjects must be watched even if they never send again.
    """

    name: str
    detectors: list[tuple[Detector, str]]  # (detector, plugin that registered it)
    flood: FloodControl | None
    store: StateStore | None = None
    states: dict[tuple[str, str], DetectorState] = field(default_factory=dict)
    dirty: set[tuple[str, str]] = field(default_factory=set)
    #: states changed lazily (DetectorState.update_lazily): written with the next commit
    lazy: set[tuple[str, str]] = field(default_factory=set)
    loaded: set[str] = field(default_factory=set)
    #: "subject\x1fposition" of the recent batches' changes, oldest first (see ``replayed``)
    last: dict[str, None] = field(default_factory=dict)
    #: the committed last batch found at start, until each of its changes came back
    replay: set[str] | None = None
    #: new changes still allowed before the unreturned rest of ``replay`` is given up
    replay_budget: int = 0
    #: events flood control held back (metrics: floorstream_flood_suppressed_total)
    flood_suppressed: int = 0
    #: settling and flap detection of state-like posts (``states:``), if configured
    settle: Settle | None = None
    #: the source's event-time watermark (floorstream.timebase)
    clock: Watermark = field(default_factory=Watermark)

    def __post_init__(self) -> None:
        #: (detector, plugin, state key): keys are fixed per detector, looked up once
        self.keyed = [(d, plugin, d.key) for d, plugin in self.detectors]

    def state(self, subject: str, key: str) -> DetectorState:
        slot = self.states.get((subject, key))
        if slot is None:
            if self.store is not None and subject not in self.loaded:
                self.loaded.add(subject)
                for stored_key, data in self._stored(subject).items():
                    self.states.setdefault((subject, stored_key), self._slot(subject,
                                                                              stored_key, data))
                slot = self.states.get((subject, key))
            if slot is None:
                slot = self.states[(subject, key)] = self._slot(subject, key, None)
        return slot

    def prefetch(self, subjects: Collection[str]) -> None:
        """Load the states of a batch's new subjects in one query instead of one each: a
        poll of 500 ERP rows otherwise spent most of its pipeline time on 500 SELECTs."""
        if self.store is None:
            return
        wanted = [s for s in subjects if s not in self.loaded]
        if len(wanted) < 2:
            return
        try:
            found = self.store.subjects_states(self.name, wanted)
        except Exception as exc:
            if is_transient(exc):
                raise
            return  # one subject the store cannot even look up: load the others one by one
        self.loaded.update(wanted)
        for subject, states in found.items():
            for stored_key, data in states.items():
                self.states.setdefault((subject, stored_key), self._slot(subject, stored_key,
                                                                         data))

    def _stored(self, subject: str) -> dict[str, dict[str, Any]]:
        """A subject's persisted states; none when the store refuses the subject itself (a
        NUL byte PostgreSQL cannot compare): that change is judged from a fresh state and the
        store's refusal of its post, if any, quarantines it (see floorstream.isolation)."""
        assert self.store is not None
        try:
            return self.store.subject_states(self.name, subject)
        except Exception as exc:
            if is_transient(exc):
                raise
            log.warning("detector_state_unreadable", source=self.name,
                        subject=subject.replace("\x00", "\\x00"), error=str(exc)[:300])
            return {}

    def replayed(self, token: str) -> bool:
        """True for a change a recent committed batch already ran through the detectors.

        A source that redelivers what was not acked (MQTT after a kill between commit and
        ack) sends changes whose effect is already in the committed detector state; running
        them again would raise or clear at new positions. Only the last batch can be in that
        state (earlier ones were acked before the next was processed), so its positions are
        committed with it, as a state row of its own, and skipped when they come again.
        """
        if self.replay is None:
            self.replay = set(self.state("", REPLAY_GUARD).data.get("positions") or ())
            # a broker resends unacked messages first, so once well more new changes than
            # that went by, the rest will not come (a cursor source never resends at all);
            # without this the leftovers would be rewritten with every batch forever
            self.replay_budget = 2 * len(self.replay) + 1000
        if self.replay:
            if token in self.replay:
                self.replay.discard(token)
                return True
            self.replay_budget -= 1
            if self.replay_budget <= 0:
                self.replay.clear()
        return token in self.last

    def remember(self, tokens: list[str], window: int = 0) -> None:
        """Record this batch's changes, committed with it, in the guard of the next batches
        (plus what is still expected back from before a restart: a replay may span batches).

        Not only the last batch: a source whose acks leave asynchronously (the MQTT fast path
        coalesces PUBACKs on the network thread) can have several batches unacked when the
        process dies, and the broker resends them all. The guard keeps the most recent
        :data:`GUARD_MIN` positions, the whole last batch if larger, and the inputs the source
        can have unacknowledged (``window``, from ``Pipeline.limit_unacked``: an MQTT 5
        source's Receive Maximum) up to :data:`GUARD_WINDOW_MAX`. Acks leave after their
        commit, so several committed batches can be unacknowledged when the process dies — in
        a CI run under load, about 80 messages in four batches — and the broker resends them
        all; a guard of the last 64 let the older ones through the detectors again, which
        posted each as a state "reported late". (More than 256 committed and unacknowledged
        when the process dies can still do that: a known limit, docs/daemon.md.)
        """
        last = self.last
        for token in tokens:
            last.pop(token, None)
            last[token] = None
        excess = len(last) - max(GUARD_MIN, len(tokens), min(window, GUARD_WINDOW_MAX))
        if excess > 0:
            for token in list(itertools.islice(last, excess)):
                del last[token]
        # lazily: the guard matters only together with committed state, and every commit
        # writes it (Processor.collect_lazy); a batch that changed nothing needs no commit
        self.state("", REPLAY_GUARD).replace_lazily(
            {"positions": [*(self.replay or ()), *last]})

    def keep_clock(self) -> None:
        """Persist the watermark with the source's next commit (lazily, like the replay guard:
        it goes with this batch's posts and checkpoints, or with the timer's commit), so the
        windows open at a stop close on event time after the restart (floorstream.timebase).
        Only sources with windows need it."""
        if self.clock.high is not None and (self.settle is not None or self.flood is not None):
            self.state("", WATERMARK).replace_lazily(self.clock.dump())

    def _slot(self, subject: str, key: str, data: dict[str, Any] | None) -> DetectorState:
        return DetectorState(data, key=(subject, key), sink=self.dirty, lazy_sink=self.lazy)

    def preload(self, keys: Collection[str]) -> None:
        if self.store is None or not keys:
            return
        for (subject, key), data in self.store.detector_states(self.name, keys).items():
            self.states.setdefault((subject, key), self._slot(subject, key, data))


class Processor:
    def __init__(self, config: Config, plugins: Plugins,
                 states: StateStore | None = None) -> None:
        self.config = config
        self.plugins = plugins
        settings = config.settings
        self.renderer = Renderer({s.name: s.summary for s in config.sources},
                                 {entry.name: entry.item for entry in plugins.phrases},
                                 settings.display.zone)
        self.router = Router(settings.routes, settings.default_team)
        self.teams: Mapping[str, TeamConfig] = settings.teams
        #: web.base_url: every post links to its permalink on the web feed
        self._base_url = (settings.web.base_url or "").rstrip("/")
        self._load_states = states
        #: per source, how many inputs it can have unacknowledged (``Pipeline.limit_unacked``):
        #: its replay guard keeps at least that many positions (``SourceRuntime.remember``)
        self.unacked: dict[str, int] = {}
        self.sources: dict[str, SourceRuntime] = {}
        for source in config.sources:
            self.sources[source.name] = self._runtime(source.name, source)
        hook = plugins.manager.hook
        self._render_hook = hook.render_post
        self._route_hook = hook.route_post
        self._has_render = bool(self._render_hook.get_hookimpls())
        self._has_route = bool(self._route_hook.get_hookimpls())

    def _runtime(self, name: str, source: SourceConfig | None) -> SourceRuntime:
        detectors: list[tuple[Detector, str]] = []
        flood_options: FloodOptions | None = self.config.settings.flood
        if source is not None:
            for spec in source.detect:
                entry = next(e for e in self.plugins.detectors if e.name == spec.name)
                detectors.append((entry.item(spec.options, name), entry.plugin))
            if source.flood is not None:
                flood_options = source.flood
        flood = None
        if flood_options is not None:
            from floorstream.flood import FloodControl

            flood = FloodControl(flood_options, name)
        runtime = SourceRuntime(name, detectors, flood, self._load_states)
        timed = [d.key for d, _ in detectors if d.ticks]
        if source is not None and source.states is not None:
            from floorstream.settle import Settle

            runtime.settle = Settle(source.states, name)
            timed.append(Settle.key)
        runtime.preload(timed + ([flood.key] if flood is not None else []))
        if runtime.settle is not None or flood is not None:
            runtime.clock.restore(runtime.state("", WATERMARK).data)
        return runtime

    def fresh_runtime(self, name: str) -> SourceRuntime:
        """A configured source's runtime built afresh, its detector state read from the store
        as committed now: a fleet daemon taking a source over (floorstream.fleet) must not
        act on state another daemon has moved on since. The caller installs it in
        :attr:`sources` (under the pipeline's lock)."""
        source = next((s for s in self.config.sources if s.name == name), None)
        return self._runtime(name, source)

    def runtime(self, source: str) -> SourceRuntime:
        """The runtime of a configured source, or a bare one for ad-hoc publishers."""
        runtime = self.sources.get(source)
        if runtime is None:
            runtime = self.sources[source] = self._runtime(source, None)
        return runtime

    # -- the batch ---------------------------------------------------------------------------

    def process(self, envelopes: Iterable[Envelope]) -> CommitBatch:
        batch = CommitBatch()
        tokens: dict[str, dict[str, None]] = {}  # per source, in order, without repeats
        checkpoints: dict[str, Checkpoint] = {}  # each source's last
        envelopes = list(envelopes)
        subjects: dict[str, dict[str, None]] = {}
        for envelope in envelopes:
            if envelope.change is not None:
                subjects.setdefault(envelope.source, {})[envelope.change.subject] = None
        for source, names in subjects.items():
            self.runtime(source).prefetch(names)
        for envelope in envelopes:
            if envelope.quarantine is not None:
                batch.quarantined.append(envelope.quarantine)
            elif envelope.change is not None:
                change = envelope.change
                token = f"{change.subject}\x1f{change.position}"
                runtime = self.runtime(change.source)
                seen = tokens.setdefault(change.source, {})
                if token not in seen and not runtime.replayed(token):
                    runtime.clock.observe(change.subject, change.when.timestamp())
                    self._detect(change, batch, envelope.baseline)
                seen[token] = None
            elif envelope.event is not None:
                event = envelope.event
                token = f"{event.subject}\x1f{event.position}\x1f{event.type}"
                runtime = self.runtime(event.source)
                seen = tokens.setdefault(event.source, {})
                if token not in seen and not runtime.replayed(token):
                    runtime.clock.observe(event.subject, event.occurred_at.timestamp())
                    self._admit(runtime, event, batch)
                seen[token] = None
            if envelope.checkpoint is not None:
                checkpoints[envelope.source] = envelope.checkpoint
            if envelope.state:
                for key, row in envelope.state.items():
                    batch.states[(envelope.source, key, ADAPTER_STATE)] = row
        for source, checkpoint in checkpoints.items():
            batch.checkpoints[source] = str(checkpoint)  # (a CheckpointParts joined here)
        unacked = self.unacked
        for source, seen in tokens.items():
            self.sources[source].remember(list(seen), unacked.get(source, 0))
            self.sources[source].keep_clock()
        self._collect_states(batch)
        return batch

    def tick(self, now: datetime | None = None) -> CommitBatch:
        """Run the time-driven detectors (silence) and close flood windows."""
        now = now or utcnow()
        batch = CommitBatch()
        for runtime in list(self.sources.values()):
            for detector, plugin in runtime.detectors:
                if not detector.ticks:
                    continue
                key = detector.key
                for (subject, state_key), state in list(runtime.states.items()):
                    if state_key != key:
                        continue
                    try:
                        events = detector.on_tick(now, subject, state)
                    except Exception as exc:
                        log.error("detector_failed", detector=detector.name, plugin=plugin,
                                  source=runtime.name, subject=subject, error=repr(exc))
                        continue
                    for event in events:
                        self._admit(runtime, event, batch)
            if runtime.settle is not None:
                for (subject, state_key), state in list(runtime.states.items()):
                    if state_key == runtime.settle.key:
                        for event in runtime.settle.tick(now, subject, state,
                                                         runtime.clock.now(subject)):
                            self._admit(runtime, event, batch, settled=True)
            if runtime.flood is not None:
                for (subject, state_key), state in list(runtime.states.items()):
                    if state_key == runtime.flood.key:
                        for event in runtime.flood.tick(now, subject, state,
                                                        runtime.clock.now(subject)):
                            self._post(event, batch)
        self._collect_states(batch)
        return batch

    def _detect(self, change: Change, batch: CommitBatch, baseline: bool = False) -> None:
        runtime = self.sources.get(change.source) or self.runtime(change.source)
        found: list[Event] = []
        subject = change.subject
        states = runtime.states
        for detector, plugin, key in runtime.keyed:
            # outside the try: a store error while loading state is not the change's fault
            state = states.get((subject, key)) or runtime.state(subject, key)
            try:
                found.extend(detector.on_change(change, state))
            except Exception as exc:
                # the input is kept for this detector; the others still judge the change, or
                # a stop next to a garbled temperature would be lost (its state already moved)
                self._quarantine_change(change, detector, plugin, exc, batch)
        if baseline:
            return  # learnt, not told: a first start or rows a mass update rewrote
        for event in found:
            self._admit(runtime, event, batch)

    def _quarantine_change(self, change: Change, detector: Detector, plugin: str,
                           exc: Exception, batch: CommitBatch) -> None:
        log.warning("change_quarantined", source=change.source, subject=change.subject,
                    position=change.position, detector=detector.name, plugin=plugin,
                    error=str(exc))
        raw = json.dumps(change.model_dump(mode="json"), ensure_ascii=False).encode()
        batch.quarantined.append(QuarantineItem(
            source=change.source, raw=raw, position=change.position,
            error=f"detector {detector.name!r} (plugin {plugin}): {exc}",
            context={"subject": change.subject, "kind": change.kind}))

    def _admit(self, runtime: SourceRuntime, event: Event, batch: CommitBatch,
               settled: bool = False) -> None:
        if runtime.settle is not None and not settled and runtime.name not in (
                HEALTH_SOURCE, PEOPLE_SOURCE):
            state = runtime.state(event.subject, runtime.settle.key)
            for item in runtime.settle.admit(event, state, utcnow().timestamp()):
                self._admit(runtime, item, batch, settled=True)
            return
        if (runtime.flood is None or event.type == "source.problem"
                or runtime.name in (HEALTH_SOURCE, PEOPLE_SOURCE)):
            self._post(event, batch)
            return
        admitted = runtime.flood.admit(event, runtime.state(event.subject, runtime.flood.key))
        # (the event may come back re-pointed: a clear answering the update that stood in
        # for its folded alarm, floorstream.flood; same id, so it went out)
        if not admitted or admitted[-1].id != event.id:
            runtime.flood_suppressed += 1
        for item in admitted:
            self._post(item, batch)

    def _post(self, event: Event, batch: CommitBatch) -> None:
        post = self.make_post(event)
        batch.posts.append(post)
        if event.source == PEOPLE_SOURCE and event.fields.get("deliver") is False:
            return  # an acknowledgement kept off the sinks (web.deliver_acks, docs/web.md)
        for team in post.teams:
            team_config = self.teams.get(team)
            if team_config is not None:
                for sink in team_config.sinks:
                    batch.deliveries.append((post.id, team, sink))

    def make_post(self, event: Event) -> Post:
        summary = self.renderer.summary(event)
        if self._has_render:
            chosen = self._render_hook(event=event, default=summary)
            if isinstance(chosen, str):
                summary = chosen
        if event.type == "source.problem" or event.source == HEALTH_SOURCE:
            admin = self.config.settings.admin_team
            teams: tuple[str, ...] = (admin,)
            routing: tuple[dict[str, str], ...] = ({"team": admin, "rule": "admin team"},)
        elif event.source == PEOPLE_SOURCE and event.fields.get("route"):
            routing = tuple({"team": str(r["team"]), "rule": str(r["rule"])}
                            for r in event.fields["route"])
            teams = tuple(r["team"] for r in routing)
        else:
            teams, routing = self.router.route(event)
        tags = tuple(f"{k}:{v}" for k, v in sorted(event.attrs.items()))
        # every value below is already of the right type (the event was validated), so skip
        # pydantic's validation: it is a third of the cost of a post on the hot path
        fields = event.fields
        uncertain = event.attrs.get("uncertain")
        if uncertain:  # the adapter lost input before this (a Sparkplug seq gap): say so
            summary = f"{summary} — uncertain: {uncertain}"
            fields = {**fields, "uncertain": uncertain}
        links = dict(fields.get("links") or {})
        if self._base_url:
            links["permalink"] = f"{self._base_url}/posts/{event.id}"
        post: Post = Post._trusted({
            "id": event.id, "type": event.type, "source": event.source,
            "subject": event.subject, "summary": clip(summary),
            "body": fields.get("body") or None, "severity": event.severity, "teams": teams,
            "tags": tags, "links": links,
            "occurred_at": event.occurred_at, "created_at": utcnow(),
            "thread": event.thread or event.subject, "relation": event.relation,
            "refers_to": event.refers_to, "fields": fields, "routing": routing,
        })
        if self._has_route:
            extra: list[str] = []
            for result in self._route_hook(post=post, event=event):
                if not result:
                    continue
                extra.extend(t for t in result if t not in post.teams and t not in extra)
            if extra:
                post = post.model_copy(update={
                    "teams": post.teams + tuple(extra),
                    "routing": post.routing + tuple({"team": t, "rule": "plugin"}
                                                    for t in extra)})
        return post

    def _collect_states(self, batch: CommitBatch) -> None:
        for runtime in self.sources.values():
            if not runtime.dirty:
                continue
            states = runtime.states
            for subject, key in runtime.dirty:
                state = states[(subject, key)]
                batch.states[(runtime.name, subject, key)] = state.data
                state._dirty = False
            runtime.dirty.clear()

    def collect_lazy(self, batch: CommitBatch) -> None:
        """Add the lazily changed states (and the replay guards) to ``batch``: every commit
        carries them, and the pipeline's timer commits them when nothing else does."""
        for runtime in self.sources.values():
            if not runtime.lazy:
                continue
            states = runtime.states
            for subject, key in runtime.lazy:
                state = states.get((subject, key))
                if state is not None:  # (the current data: newer than any collected before)
                    batch.states[(runtime.name, subject, key)] = state.data
            runtime.lazy.clear()

    def defer(self, batch: CommitBatch) -> bool:
        """Turn ``batch``'s detector states into lazy ones (written with the next commit or
        by the timer) and return True; False, with ``batch`` left as it is, when it holds
        anything else (posts, checkpoints, quarantine, an adapter's own state rows). For
        input with nothing to acknowledge (MQTT QoS 0): losing it in a crash loses its state
        changes too, whether they were committed or not."""
        if (batch.posts or batch.deliveries or batch.checkpoints or batch.quarantined
                or batch.unquarantined or batch.requarantined):
            return False
        sources = self.sources
        for source, subject, key in batch.states:
            runtime = sources.get(source)
            if runtime is None or (subject, key) not in runtime.states:
                return False
        for source, subject, key in batch.states:
            sources[source].lazy.add((subject, key))
        batch.states.clear()
        return True

    @property
    def has_lazy(self) -> bool:
        """Whether some lazily changed state waits for a commit."""
        return any(runtime.lazy for runtime in self.sources.values())

    def subjects(self) -> Sequence[str]:
        return sorted({s for r in self.sources.values() for s, _ in r.states if s})
