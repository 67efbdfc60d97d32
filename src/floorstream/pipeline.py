"""The pipeline thread: bounded queue in, group commits out, acks after commit.

Adapters block on a full queue (back-pressure to the broker or poll loop). The thread takes
what is queued, up to ``batch_max`` changes or ``batch_wait_ms``, processes it, commits posts,
checkpoints and detector state in one transaction, and only then runs the adapters' acks, in
the order the changes arrived. Small frequent commits matter: MQTT brokers cap the unacked
messages in flight per client (Mosquitto: 20), so waiting to fill big batches would stall them.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import OperationalError

from floorstream.config import PipelineSettings
from floorstream.handoff import Handoff
from floorstream.isolation import commit_isolating, is_transient
from floorstream.logs import get_logger
from floorstream.model import Change, Event, Post, Severity, utcnow
from floorstream.plugin.adapter import Ack
from floorstream.plugin.checkpoints import Checkpoint
from floorstream.plugins import Plugins
from floorstream.processing import Envelope, Processor
from floorstream.store.store import CommitBatch, QuarantineItem, Store

if TYPE_CHECKING:
    from tenacity import RetryCallState

__all__ = ["QUARANTINE_REASONS", "HeldEmitter", "Pipeline", "QueueEmitter", "SourceCounters",
           "quarantine_reason"]

log = get_logger("floorstream.pipeline")

_STOP = object()

#: the reason categories of quarantined input (a bounded metrics label; the message itself is
#: in the quarantine row): ``invalid`` input that did not decode or validate, ``too_large``
#: over a size limit, ``detector`` a detector raised on it, ``internal`` an adapter bug
QUARANTINE_REASONS = ("invalid", "too_large", "detector", "internal")


def quarantine_reason(item: QuarantineItem) -> str:
    """The category of a quarantined item: ``context["reason"]`` when an adapter gave one of
    :data:`QUARANTINE_REASONS`, else read off the message the host and builtins write."""
    given = item.context.get("reason")
    if isinstance(given, str) and given in QUARANTINE_REASONS:
        return given
    error = item.error
    if error.startswith("detector "):
        return "detector"
    if error.startswith("internal error"):
        return "internal"
    if item.context.get("truncated") or "exceeds max_" in error:
        return "too_large"
    return "invalid"


@dataclass(slots=True)
class SourceCounters:
    """What the pipeline saw of one source, for health, metrics and self-alerts. Written under
    the pipeline's lock after each commit; read by anyone (ints and floats, no lock needed).
    Times are epoch seconds."""

    received: int = 0  # inputs committed: changes, events, quarantined input
    posts: int = 0  # new posts committed
    quarantined: dict[str, int] = field(default_factory=dict)  # by quarantine_reason
    last_received: float | None = None  # when its newest committed input was observed
    last_committed: float | None = None
    lag: float = 0.0  # observed → committed, for the oldest input of its last batch
    pending_since: float | None = None  # oldest input of the batch being committed now

    def lag_now(self, now: float) -> float:
        """The last batch's lag, or longer while a batch of it waits for its commit."""
        pending = self.pending_since
        return max(self.lag, now - pending) if pending is not None else self.lag


class Pipeline:
    """Owns the queue and the thread that drains it."""

    def __init__(self, processor: Processor, store: Store, settings: PipelineSettings,
                 plugins: Plugins) -> None:
        self.processor = processor
        self.store = store
        self.settings = settings
        self.plugins = plugins
        self.queue: Handoff[Any] = Handoff(settings.queue_size)
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self.lock = threading.Lock()  # serialises processing with library-API publishes
        #: per source, the inputs with an ack it can have outstanding (limit_unacked); the
        #: processor's own dict, whose replay guards keep as many positions
        self.unacked_windows: dict[str, int] = processor.unacked
        self.committed_batches = 0
        #: batches acknowledged without a transaction of their own: nothing in them had to be
        #: durable before the ack (see :meth:`run_now`)
        self.uncommitted_batches = 0
        self.committed_posts = 0
        self.last_commit: float | None = None
        self.error: BaseException | None = None
        #: per source (health, metrics: see SourceCounters)
        self.counters: dict[str, SourceCounters] = {}
        #: why the last commit attempt failed while the store is unreachable, and when
        self.store_error: str | None = None
        self.store_error_at: float | None = None
        #: called with the seconds each successful commit transaction took (metrics)
        self.on_commit: Callable[[float], None] | None = None
        #: a fleet (floorstream.fleet): whether input of a source may be processed and acked
        #: (the sources this daemon runs now, and any it does not manage); None: everything
        self.accepts: Callable[[str], bool] | None = None
        #: test seam for crash-consistency tests: called between commit and acks.
        self.after_commit: Callable[[], None] | None = None

    # -- producer side --------------------------------------------------------------------

    def submit(self, envelope: Envelope) -> None:
        """Queue work; blocks while the queue is full."""
        self.queue.put(envelope)

    def emitter(self, source: str) -> QueueEmitter:
        return QueueEmitter(self, source)

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        # a long-running writer: SQLite's WAL checkpoints leave the commit path
        self.store.checkpoint_in_background()
        self._thread = threading.Thread(target=self._run, name="floorstream-pipeline",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Drain what is queued, commit it, and end the thread."""
        self._stopping.set()
        self.queue.put(_STOP)
        if self._thread is not None:
            self._thread.join(timeout)
        if not self.alive:
            self.store.checkpoint_in_commits()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- the loop -------------------------------------------------------------------------

    def limit_unacked(self, source: str, window: int | None) -> None:
        """Tell the pipeline how many inputs with an ack ``source`` can have outstanding
        before its upstream stops sending (``Adapter.unacked_window``; None: no limit).

        A gathering batch is taken as soon as half of the smallest such window is queued,
        never later: waiting for more than the broker sends unacked would stall it until the
        gathering interval ends. (What is queued beyond that is taken too: Mosquitto 2.0
        sends well past a client's Receive Maximum once acks come in batches, and smaller
        batches would only cost more transactions.) The source's replay guard keeps as many
        positions (``SourceRuntime.remember``)."""
        if window is None:
            self.unacked_windows.pop(source, None)
        else:
            self.unacked_windows[source] = max(1, window)

    def gather_enough(self) -> int:
        """How many queued inputs end a gathering wait early: half the smallest unacked
        window of the sources, else ``batch_max``."""
        batch_max = self.settings.batch_max
        windows = self.unacked_windows
        if not windows:
            return batch_max
        return min(batch_max, max(1, min(windows.values()) // 2))

    def _run(self) -> None:
        linger = self.settings.batch_wait_ms / 1000.0
        gather = self.settings.gather_ms / 1000.0
        tick_every = self.settings.tick_s
        next_tick = time.monotonic() + tick_every
        queue = self.queue
        batch_max = self.settings.batch_max
        stop_seen = False
        # the time the last batch was taken while input keeps coming (None: idle): the next
        # one gathers until ``gather`` after it, so a steady stream is taken in one batch per
        # interval, not a batch per message (each batch costs two thread switches and,
        # when it must be durable, a transaction)
        streaming: float | None = None
        while not stop_seen:
            now = time.monotonic()
            timeout = max(0.0, next_tick - now)
            items: list[Any]
            if streaming is not None and gather > 0:
                items = queue.gather(batch_max, min(timeout, streaming + gather - now),
                                     self.gather_enough())
                streaming = time.monotonic() if items else None
            else:
                items = queue.take_for(batch_max, timeout, linger)
                if items and gather > 0:
                    streaming = time.monotonic()
            if any(item is _STOP for item in items):
                stop_seen = True
                items = [item for item in items if item is not _STOP]
            if items:
                self._handle(items)
            if time.monotonic() >= next_tick:
                next_tick = time.monotonic() + tick_every
                self._handle_tick()
        # drain what producers queued before they were stopped
        rest = [item for item in self.queue.take(1 << 30, 0.0) if item is not _STOP]
        if rest:
            self._handle(rest)
        self.flush()

    def _handle(self, items: list[Envelope]) -> None:
        self.run_now(items, defer=True)

    def run_now(self, items: list[Envelope], *, defer: bool = False) -> list[Post]:
        """Process and commit ``items`` on the calling thread, then run their acks.

        The pipeline thread calls this for every batch it takes off the queue; the library
        API (:meth:`floorstream.Stream.publish`) calls it directly. Both hold :attr:`lock`, so
        a publish and a daemon batch never interleave and share one detector state, one
        commit retry and one ``post_committed`` call per batch. Returns the new posts.

        With ``defer`` (the pipeline thread) a batch gets no transaction of its own when
        nothing in it must be durable before its acks: no post, checkpoint or quarantined
        input, and either no urgent detector state change or no ack at all (MQTT QoS 0),
        whose state changes become lazy ones. Lazy state (the replay guard included) goes
        with the next commit, or with the timer's (:meth:`flush`, every ``tick_s``).
        """
        accepts = self.accepts
        if accepts is not None:
            # a fleet: input of a source this daemon no longer runs is dropped unacked; its
            # next holder reads it again from the committed checkpoint
            items = [item for item in items if accepts(item.source)]
        taken = time.time()
        spans = self._spans(items, taken)
        with self.lock:
            batch = self.processor.process(items)
            posts: list[Post] | None
            if defer and self._needs_no_commit(batch, items):
                posts = []
                self.uncommitted_batches += 1
            else:
                self.processor.collect_lazy(batch)
                posts = self._commit(batch) if batch else []
            if posts is not None:
                self._received(spans, taken)
        if posts is None:
            return []  # stopping during an outage: nothing acked, the sources will replay
        if self.after_commit is not None:
            self.after_commit()
        for item in items:
            # (a source the commit fence took away meanwhile is not acked either)
            if item.ack is not None and (accepts is None or accepts(item.source)):
                try:
                    item.ack()
                except Exception as exc:  # an ack failing must not lose the next batch
                    log.error("ack_failed", source=item.source, error=repr(exc))
        return posts

    def counter(self, source: str) -> SourceCounters:
        found = self.counters.get(source)
        if found is None:
            found = self.counters[source] = SourceCounters()
        return found

    def _spans(self, items: list[Envelope], taken: float) -> dict[str, list[Any]]:
        """Per source: [first input, last input, count] of a batch; marks it pending."""
        spans: dict[str, list[Any]] = {}
        for item in items:
            if item.change is None and item.event is None and item.quarantine is None:
                continue  # progress only (a poll that found nothing)
            span = spans.get(item.source)
            if span is None:
                spans[item.source] = [item, item, 1]
            else:
                span[1] = item
                span[2] += 1
        for source, span in spans.items():
            counters = self.counter(source)
            if counters.pending_since is None:
                counters.pending_since = _observed(span[0], taken)
        return spans

    def _received(self, spans: dict[str, list[Any]], taken: float) -> None:
        now = time.time()
        for source, (first, last, count) in spans.items():
            counters = self.counter(source)
            counters.received += count
            counters.last_received = _observed(last, taken)
            counters.lag = max(0.0, now - _observed(first, taken))
            counters.last_committed = now
            counters.pending_since = None

    def _needs_no_commit(self, batch: CommitBatch, items: list[Envelope]) -> bool:
        if not batch:
            return True  # nothing changed, or only lazily (the replay guard)
        if any(item.ack is not None for item in items):
            return False  # urgent state: durable before the ack
        return self.processor.defer(batch)

    def _handle_tick(self) -> None:
        with self.lock:
            batch = self.processor.tick()
            self.processor.collect_lazy(batch)
            if batch:
                self._commit(batch)

    def flush(self) -> None:
        """Commit the lazily changed state now (the pipeline does at every tick and when
        it stops)."""
        with self.lock:
            batch = CommitBatch()
            self.processor.collect_lazy(batch)
            if batch:
                self._commit(batch)

    def _commit_retrying(self, batch: CommitBatch) -> list[Post] | None:
        """One commit, retried while the store is unreachable (``is_transient``); None if the
        pipeline is stopping meanwhile; what the store refuses is raised.

        The first attempt is a plain call: a commit that succeeds builds no tenacity objects,
        and a daemon whose store never fails never imports tenacity (issue 16's memory)."""
        try:
            return self.store.commit(batch)
        except Exception as exc:
            if not is_transient(exc):
                raise
            first = exc
        return self._retry_commit(batch, first)  # outside the except: no chained context

    def _retry_commit(self, batch: CommitBatch, first: Exception) -> list[Post] | None:
        """The retries after a first attempt that failed with ``first``: tenacity's loop from
        the start, its first attempt raising ``first`` again, so the backoff, the
        ``commit_failed_retrying`` logs and ``store_error`` are those of one loop throughout."""
        from tenacity import Retrying, retry_if_exception, wait_exponential_jitter

        retrying = Retrying(
            retry=retry_if_exception(is_transient),
            wait=wait_exponential_jitter(multiplier=0.2, max=10.0),
            before_sleep=self._commit_failed,
            reraise=True,
        )
        failed: Exception | None = first
        for attempt in retrying:
            with attempt:
                if failed is not None:
                    error, failed = failed, None
                    raise error
                if self._stopping.is_set() and attempt.retry_state.attempt_number > 3:
                    return None
                return self.store.commit(batch)
        return None  # pragma: no cover - Retrying either returns or raises

    def _commit_part(self, batch: CommitBatch) -> list[Post]:
        posts = self._commit_retrying(batch)
        if posts is None:
            raise OperationalError("commit", {}, Exception("the pipeline is stopping"))
        return posts

    def _commit(self, batch: CommitBatch) -> list[Post] | None:
        """Commit with retries while the database is unreachable; None if stopped meanwhile."""
        started = time.perf_counter()
        try:
            committed = self._commit_retrying(batch)
            if committed is None:
                return None
            posts = committed
        except Exception as exc:
            if is_transient(exc):
                self.error = exc
                log.error("commit_failed", error=repr(exc))
                raise
            # refused for what it holds, not for being unreachable: commit it part by part,
            # so the one bad post or state is quarantined and every source goes on
            try:
                posts = commit_isolating(batch, self._commit_part, exc)
            except Exception as again:
                if self._stopping.is_set() and is_transient(again):
                    return None  # stopping during an outage: nothing acked, sources replay
                self.error = again
                log.error("commit_failed", error=repr(again))
                raise
        took = time.perf_counter() - started
        self.committed_batches += 1
        self.committed_posts += len(posts)
        self.last_commit = time.time()
        self.store_error = None
        if self.on_commit is not None:
            self.on_commit(took)
        counter = self.counter
        for post in posts:
            counter(post.source).posts += 1
        for item in batch.quarantined:
            by_reason = counter(item.source).quarantined
            reason = quarantine_reason(item)
            by_reason[reason] = by_reason.get(reason, 0) + 1
        if posts:
            self.plugins.manager.hook.post_committed(posts=posts)
        return posts


    def _commit_failed(self, state: RetryCallState) -> None:
        error = str(state.outcome.exception()) if state.outcome else None
        self.store_error, self.store_error_at = error or "commit failed", time.time()
        log.warning("commit_failed_retrying", attempt=state.attempt_number, error=error)


def _observed(item: Envelope, taken: float) -> float:
    """When the adapter observed ``item`` (a change's ``observed_at``), else when the
    pipeline took it."""
    change = item.change
    return change.observed_at.timestamp() if change is not None else taken


class QueueEmitter:
    """The :class:`floorstream.plugin.adapter.Emitter` handed to adapters."""

    def __init__(self, pipeline: Pipeline, source: str) -> None:
        self._pipeline = pipeline
        self._submit: Callable[[Envelope], None] = pipeline.submit
        self.source = source

    def held(self) -> HeldEmitter:
        """An emitter of the same source that holds what it is given until
        :meth:`HeldEmitter.release` (an adapter that reads input in bursts: see there)."""
        return HeldEmitter(self._pipeline, self.source)

    def emit(self, change: Change, *, ack: Ack | None = None,
             checkpoint: Checkpoint | None = None) -> None:
        self._submit(Envelope(self.source, change, None, None, ack, checkpoint))

    def quarantine(self, raw: bytes, error: str, *, position: str | None = None,
                   context: dict[str, Any] | None = None, ack: Ack | None = None,
                   checkpoint: Checkpoint | None = None) -> None:
        log.warning("input_quarantined", source=self.source, position=position, error=error)
        item = QuarantineItem(self.source, raw, error, position, context or {})
        self._submit(Envelope(self.source, quarantine=item, ack=ack, checkpoint=checkpoint))

    def baseline(self, change: Change, *, ack: Ack | None = None,
                 checkpoint: Checkpoint | None = None) -> None:
        self._submit(Envelope(self.source, change=change, ack=ack, checkpoint=checkpoint,
                              baseline=True))

    def event(self, event: Event, *, ack: Ack | None = None,
              checkpoint: Checkpoint | None = None) -> None:
        self._submit(Envelope(self.source, event=event, ack=ack, checkpoint=checkpoint))

    def checkpoint(self, checkpoint: Checkpoint | None, *, ack: Ack | None = None,
                   state: Mapping[str, dict[str, Any]] | None = None) -> None:
        self._submit(Envelope(self.source, ack=ack, checkpoint=checkpoint,
                              state=dict(state) if state else None))

    def problem(self, subject: str, message: str, *, position: str,
                fields: dict[str, Any] | None = None) -> None:
        log.error("source_problem", source=self.source, subject=subject, problem=message)
        event = Event.create(type="source.problem", source=self.source, subject=subject,
                             position=position, occurred_at=utcnow(),
                             severity=Severity.CRITICAL,
                             fields={"message": message, **(fields or {})})
        self._submit(Envelope(self.source, event=event))


class HeldEmitter(QueueEmitter):
    """An emitter that holds its input until :meth:`release` hands all of it to the pipeline
    queue at once, in the order it came.

    Why: the MQTT source reads up to 500 messages per socket read; queueing each on its own
    cost a handful of calls per message on the network thread (the emitter, the queue, its
    signal check) and could wake the pipeline thread in the middle of the read, where the
    two then fight over the GIL. Held, a message costs an append, and the queue is signalled
    once per read, when the network thread is about to block in its next ``select`` anyway.

    Any thread may emit (an append to a deque is atomic) and any may release; releases are
    serialised, so input reaches the queue in the order it was emitted, whichever thread
    emitted it. The holder must release at the end of every burst (and before it waits for
    more), or what it holds waits with it. Back-pressure is unchanged: :meth:`release` blocks
    while the queue is full.
    """

    def __init__(self, pipeline: Pipeline, source: str) -> None:
        super().__init__(pipeline, source)
        self._held: deque[Envelope] = deque()
        self._submit = self._held.append
        self._put_many = pipeline.queue.put_many
        self._release_lock = threading.Lock()

    def release(self) -> None:
        """Queue everything held now (blocks while the pipeline queue is full)."""
        held = self._held
        if not held:
            return
        with self._release_lock:
            pop = held.popleft
            self._put_many([pop() for _ in range(len(held))])
