"""Replaying quarantined input through the current config (``floorstream quarantine replay``).

After a fix (a field's type, a detector's field, a decoder) the input that was refused can be
tried again. Each item is decoded anew, through the config as it is *now*:

- an item a *detector* refused holds the change itself (as JSON): the change goes through the
  source's detectors again;
- any other item holds the raw input as received: the source's adapter decodes it again with
  :meth:`Adapter.replay <floorstream.plugin.Adapter.replay>` (an adapter that does not
  implement it leaves its items where they are, and says so).

What comes out goes the way live input goes (detectors, flood control, phrasing, routing, the
outbox) and is committed together with the item's removal from quarantine, in one
transaction per page of items: an item that now passes is posted and removed, an item that
still fails stays, with the reason it fails for now. Ids are deterministic (they derive from
the source, subject, position and type, as live), so a replay posts each thing once, even if
it is run twice or the same input shows up again.

The replay runs in its own process with its own detector state, read from the store: a
subject the running daemon holds in memory may see its state written by both; replaying
detector-refused changes while the daemon runs is safe for subjects that are quiet, and
``floorstream run`` picks up the committed state of the others on its next start.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field

from floorstream.config import Config
from floorstream.logs import get_logger
from floorstream.model import Change, Event, Post
from floorstream.pipeline import quarantine_reason
from floorstream.plugin import Progress, ReplayContext
from floorstream.plugins import Plugins
from floorstream.processing import REPLAY_GUARD, Envelope, Processor
from floorstream.progress import logged
from floorstream.store.store import CommitBatch, QuarantinedRow, QuarantineItem, Store
from floorstream.timebase import STATE_KEY as WATERMARK

__all__ = ["ReplayReport", "describe", "replay_quarantined"]

log = get_logger("floorstream.replay")


@dataclass
class ReplayReport:
    """What a replay did, item by item counted."""

    tried: int = 0
    passed: int = 0  # removed from quarantine
    posts: int = 0  # new posts they made
    failing: int = 0  # still quarantined, with the reason now
    #: left alone, by why (not in the config any more, adapter cannot replay)
    skipped: dict[str, int] = field(default_factory=dict)
    #: (item id, reason) of items still failing, the first 20
    failures: list[tuple[int, str]] = field(default_factory=list)


def replay_quarantined(config: Config, plugins: Plugins, store: Store, *,
                       ids: Collection[int] | None = None, source: str | None = None,
                       page: int = 100, progress: Callable[[int | None], Progress] | None = None
                       ) -> ReplayReport:
    """Replay these ids, a source's items, or (neither) every item, oldest first."""
    total = store.count_quarantined(source=source, ids=ids)
    meter = (progress(total) if progress is not None
             else logged(log, "replay_progress", total))
    processor = Processor(config, plugins, states=store)
    hook = plugins.manager.hook.post_committed
    report = ReplayReport()
    after = 0
    while True:
        rows = store.quarantined_after(after, limit=page, source=source, ids=ids)
        if not rows:
            break
        after = rows[-1].id
        batch = CommitBatch()
        for row in rows:
            _replay_one(config, plugins, processor, row, batch, report)
            meter.advance()
        for key in [k for k in batch.states if k[1] == "" and k[2] in (REPLAY_GUARD,
                                                                         WATERMARK)]:
            del batch.states[key]  # the daemon's own guard and event-time clock: not ours
        posts: list[Post] = store.commit(batch) if batch else []
        report.posts += len(posts)
        if posts:
            hook(posts=posts)
    meter.finish(passed=report.passed, failing=report.failing, posts=report.posts)
    return report


def _replay_one(config: Config, plugins: Plugins, processor: Processor, row: QuarantinedRow,
                batch: CommitBatch, report: ReplayReport) -> None:
    report.tried += 1
    try:
        source = config.source(row.source)
    except KeyError:
        report.skipped["source not in the config"] = (
            report.skipped.get("source not in the config", 0) + 1)
        return
    item = QuarantineItem(row.source, b"", row.error, row.position, row.context)
    try:
        if quarantine_reason(item) == "detector":
            outputs: list[Change | Event] = [Change.model_validate_json(row.raw)]
        else:
            adapter = plugins.adapters.get(source.adapter)
            if not adapter.supports_replay():
                why = f"the {source.adapter} adapter cannot replay"
                report.skipped[why] = report.skipped.get(why, 0) + 1
                return
            outputs = list(adapter.replay(row.raw, ReplayContext(
                source=row.source, config=source, position=row.position,
                context=dict(row.context), received_at=row.received_at,
                decoders=plugins.decoders, log=log.bind(source=row.source))))
        for output in outputs:
            if output.source != row.source:
                raise ValueError(f"the replay gave input of source {output.source!r}")
    except Exception as exc:  # still failing: its reason now
        _failing(row, _reason(exc), batch, report)
        return
    runtime = processor.runtime(row.source)
    runtime.replay = set()  # not a redelivery: never skipped as one (see replayed())
    runtime.last = {}
    envelopes = [Envelope(row.source, change=o) if isinstance(o, Change)
                 else Envelope(row.source, event=o) for o in outputs]
    found = processor.process(envelopes)
    if found.quarantined:  # a detector refused it now
        _failing(row, "; ".join(q.error for q in found.quarantined), batch, report)
        found.quarantined = []
    else:
        batch.unquarantined.append(row.id)
        report.passed += 1
    batch.posts += found.posts
    batch.deliveries += found.deliveries
    batch.states.update(found.states)


def _failing(row: QuarantinedRow, reason: str, batch: CommitBatch,
             report: ReplayReport) -> None:
    batch.requarantined[row.id] = reason
    report.failing += 1
    if len(report.failures) < 20:
        report.failures.append((row.id, reason))


def _reason(exc: BaseException) -> str:
    return str(exc).strip() or type(exc).__name__


def describe(report: ReplayReport) -> list[str]:
    """The report as lines for people."""
    lines = [f"{report.tried:,} replayed: {report.passed:,} passed now ({report.posts:,} new "
             f"posts), {report.failing:,} still failing"]
    for why, count in sorted(report.skipped.items()):
        lines.append(f"{count:,} left alone: {why}")
    for item_id, reason in report.failures:
        lines.append(f"  {item_id}: {reason}")
    return lines
