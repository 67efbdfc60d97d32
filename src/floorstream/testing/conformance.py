"""The adapter conformance suite: subclass it, set three attributes, and pytest runs it.

It checks what every adapter owes the pipeline: its config model refuses unknown keys, it emits
well-formed changes for its own source, it stops promptly when asked, and resuming from the
checkpoint it left gives neither a gap nor a duplicate position, and hands each item over the
way an uninterrupted run does (what a first start only learns through ``Emitter.baseline`` is
not posted by a restarted one).

Each run is a fresh adapter on a :class:`~floorstream.testing.RecordingEmitter`, which "commits"
at once: it acks and keeps the checkpoint, and ``AdapterContext.committed_checkpoint`` reads it.
A source that redelivers by itself (a broker's persistent session: the position is the
broker's, not the checkpoint) passes too: what a cut run did not ack comes again on the next.
"""

from __future__ import annotations

import threading
from typing import Any, ClassVar

import pytest
from pydantic import ValidationError

from floorstream.model import Change, Event
from floorstream.plugin.adapter import Adapter, AdapterContext
from floorstream.plugins import build_plugins
from floorstream.testing.doubles import RecordingEmitter


class AdapterConformance:
    """Base class for a plugin's conformance tests (not collected by itself)."""

    adapter: ClassVar[type[Adapter[Any]]]
    config: ClassVar[dict[str, Any]]
    #: the adapter must emit at least this many changes from the prepared source
    min_changes: ClassVar[int] = 1
    #: seconds to wait for changes
    timeout: ClassVar[float] = 10.0
    #: True: resuming must never emit a committed position again. False: it may replay an
    #: unfinished unit (a file, a page) as long as the replayed changes are identical.
    exact_resume: ClassVar[bool] = True

    def prepare_source(self) -> None:
        """Override to fill the source (insert rows, publish messages) before each run.

        The resume check calls it twice: for the uninterrupted run, then for the cut one and
        its restart. Both fills must give the same items at the same positions (fixed times,
        not "now"); a source that keeps state of its own between runs (a broker session) may
        be created on the first call and filled on both.
        """

    def _run(self, checkpoint: str | None, stop_after: int | None = None,
             want: int | None = None, covers: set[str] | None = None,
             states: dict[str, dict[str, Any]] | None = None) -> RecordingEmitter:
        config = self.adapter.config_model.model_validate(self.config)
        plugins = build_plugins(load_entry_points=False)
        emitter = RecordingEmitter(stop_after=stop_after, states=dict(states or {}))
        context = AdapterContext(config.name, checkpoint, plugins.decoders,
                                 committed_checkpoint=lambda: emitter.last_checkpoint,
                                 load_state=emitter.load_state)
        adapter = self.adapter(config, context)
        thread = threading.Thread(target=adapter.run, args=(emitter, emitter.stop), daemon=True)
        thread.start()
        target = want if want is not None else self.min_changes
        deadline = threading.Event()
        waited = 0.0
        def pending() -> bool:  # ``covers``: run until these positions were all emitted
            if covers is not None:
                return not covers <= {c.position for c in emitter.emitted}
            return len(emitter.emitted) < target

        while pending() and not emitter.stop.is_set() and waited < self.timeout:
            deadline.wait(0.05)
            waited += 0.05
        emitter.stop.set()
        thread.join(self.timeout)
        assert not thread.is_alive(), f"{self.adapter.__name__}.run did not return after stop"
        adapter.close()
        return emitter

    def test_config_refuses_unknown_keys(self) -> None:
        with pytest.raises(ValidationError):
            self.adapter.config_model.model_validate({**self.config, "no_such_key_xyz": 1})

    def test_adapter_is_registered_through_the_hook(self) -> None:
        plugins = build_plugins()
        assert plugins.adapters.get(self.adapter.name) is self.adapter

    def test_emits_changes_for_its_source(self) -> None:
        self.prepare_source()
        emitter = self._run(None)
        assert len(emitter.emitted) >= self.min_changes, "the adapter emitted too few changes"
        for item in emitter.emitted:
            assert isinstance(item, Change | Event)
            assert item.source == self.config["name"]
            assert item.subject and item.position

    def test_resume_from_checkpoint_has_no_gap_and_no_duplicate(self) -> None:
        self.prepare_source()
        full = self._run(None)
        positions = [c.position for c in full.emitted]
        assert len(positions) == len(set(positions)), "positions must be unique"
        if len(positions) < 2:
            pytest.skip("needs at least two changes to interrupt between them")
        self.prepare_source()
        cut = max(1, len(positions) // 2)
        first = self._run(None, stop_after=cut)
        done = {c.position for c in first.emitted}
        # a replayed unit counts twice, so wait for the positions still missing, not a count
        second = (self._run(first.last_checkpoint, want=len(positions) - len(first.emitted),
                            states=first.states)
                  if self.exact_resume else
                  self._run(first.last_checkpoint, covers=set(positions) - done,
                            states=first.states))
        replayed = [c.position for c in first.emitted] + [c.position for c in second.emitted]
        missing = set(positions) - set(replayed)
        assert not missing, f"positions lost across the restart: {sorted(missing)[:5]}"
        # an adapter may replay a unit it had not finished (a file half committed), but only
        # as an exact copy: same position, same content, so the post ids dedupe the replay
        before = {c.position: c for c in first.emitted}
        for change in second.emitted:
            earlier = before.get(change.position)
            if earlier is None:
                continue
            if self.exact_resume:
                raise AssertionError(f"committed position {change.position!r} emitted again")
            assert _content(earlier) == _content(change), (
                f"position {change.position!r} was replayed with different content, so its "
                "post would be made twice under two ids")
        # what the restart hands over for the first time goes the way an uninterrupted run
        # hands it over: a baseline (learnt, never posted) must not turn into a change that
        # detectors post, nor the other way round
        expected = _channels(full)
        for item, channel in _channels(second).values():
            if item.position in before:
                continue
            uninterrupted = expected.get(item.position)
            if uninterrupted is not None and uninterrupted[1] != channel:
                raise AssertionError(
                    f"position {item.position!r} came as a {channel} after the restart but as "
                    f"a {uninterrupted[1]} in an uninterrupted run"
                    + (": a restart would post what a first start only learns"
                       if uninterrupted[1] == "baseline" else ""))


def _channels(emitter: RecordingEmitter) -> dict[str, tuple[Change | Event, str]]:
    """position → (item, how it was handed over: ``baseline``, ``change`` or ``event``);
    the first handover of a position counts."""
    baselines = {id(item) for item in emitter.baselines}
    found: dict[str, tuple[Change | Event, str]] = {}
    for item in emitter.emitted:
        channel = ("event" if isinstance(item, Event) else
                   "baseline" if id(item) in baselines else "change")
        found.setdefault(item.position, (item, channel))
    return found


def _content(item: Change | Event) -> tuple[Any, ...]:
    if isinstance(item, Event):
        return (item.subject, item.type, item.fields)
    return (item.subject, item.kind, item.data)
