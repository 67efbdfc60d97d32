"""Which batches cost a transaction (docs/performance.md, "Steady load"): a batch that changes
nothing durable is acked without one; urgent detector state is durable before its ack; state
of input with nothing to ack (QoS 0) and lazy state ride with the next commit or the timer.

The pipeline runs on a real SQLite store; ``run_now(defer=True)`` is what the pipeline thread
calls for each batch it takes off the queue."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from floorstream.config import parse_mapping
from floorstream.model import Change
from floorstream.pipeline import Pipeline
from floorstream.plugins import build_plugins
from floorstream.processing import REPLAY_GUARD, Envelope, Processor
from floorstream.store.store import Store

T0 = datetime(2026, 11, 25, 6, 0, tzinfo=UTC)
TH = "threshold:temp:above:85"  # the threshold's state key


@pytest.fixture
def pipeline(tmp_path: Path) -> Iterator[Pipeline]:
    plugins = build_plugins(load_entry_points=False)
    config = parse_mapping({
        "store": f"sqlite:///{tmp_path}/fs.db", "flood": None,
        "sources": [{"name": "line", "adapter": "simulator", "detect": [
            {"state_change": {"field": "state"}},
            {"threshold": {"field": "temp", "above": 85, "clear_below": 80, "for": "1h"}}]}],
    }, plugins)
    store = Store.open(config.settings.store)
    processor = Processor(config, plugins, states=store)
    yield Pipeline(processor, store, config.settings.pipeline, plugins)
    store.close()


def _change(n: int, machine: str = "m1", **data: Any) -> Change:
    return Change(source="line", subject=machine, kind="telemetry", position=str(n),
                  observed_at=T0 + timedelta(seconds=n), occurred_at=T0 + timedelta(seconds=n),
                  data={"state": "RUNNING", "temp": 70.0, **data})


def _stored(pipeline: Pipeline, machine: str = "m1") -> dict[str, dict[str, Any]]:
    return pipeline.store.subject_states("line", machine)


def _ack_probe(pipeline: Pipeline, seen: list[dict[str, dict[str, Any]]]
               ) -> Callable[[], None]:
    """An ack that records what the store holds for m1 when it runs."""
    return lambda: seen.append(_stored(pipeline))


def test_a_batch_that_changes_nothing_is_acked_without_a_commit(pipeline: Pipeline) -> None:
    pipeline.run_now([Envelope("line", change=_change(0))], defer=True)  # first sight: urgent
    assert pipeline.committed_batches == 0 and pipeline.uncommitted_batches == 1  # no ack: lazy
    pipeline.run_now([Envelope("line", change=_change(1), ack=lambda: None)])
    assert pipeline.committed_batches == 1  # not deferred: everything, lazy state included
    assert _stored(pipeline)["state_change:state"]["state"] == "RUNNING"
    acked: list[int] = []
    for n in range(2, 52):  # the same state and a normal temperature: nothing to keep
        pipeline.run_now([Envelope("line", change=_change(n), ack=partial(acked.append, n))],
                         defer=True)
    assert acked == list(range(2, 52))
    assert pipeline.committed_batches == 1 and pipeline.uncommitted_batches == 51
    # the replay guard is lazy: committed by the timer (and by any commit), not per batch
    pipeline.flush()
    assert pipeline.committed_batches == 2
    guard = pipeline.store.subject_states("line", "")[REPLAY_GUARD]["positions"]
    assert guard[-1] == "m1\x1f51" and len(guard) == 52


def test_urgent_state_is_durable_before_its_ack(pipeline: Pipeline) -> None:
    pipeline.run_now([Envelope("line", change=_change(0))])
    seen: list[dict[str, dict[str, Any]]] = []
    # above the limit, for 1h not yet over: no post, but the threshold is pending now, and a
    # later raise depends on when it began: committed before the ack
    pipeline.run_now([Envelope("line", change=_change(1, temp=90.0),
                               ack=_ack_probe(pipeline, seen))], defer=True)
    assert seen and seen[0][TH]["status"] == "pending"
    assert seen[0][TH]["since"] == (T0 + timedelta(seconds=1)).timestamp()


def test_state_of_input_with_nothing_to_ack_waits_for_the_next_commit(
        pipeline: Pipeline) -> None:
    pipeline.run_now([Envelope("line", change=_change(0))])
    committed = pipeline.committed_batches
    pipeline.run_now([Envelope("line", change=_change(1, temp=90.0))], defer=True)  # QoS 0
    assert pipeline.committed_batches == committed
    assert TH not in _stored(pipeline)  # (a normal reading never wrote one)
    # the next batch with a post carries it
    posts = pipeline.run_now([Envelope("line", change=_change(2, state="STOPPED",
                                                          temp=90.0))], defer=True)
    assert [p.type for p in posts] == ["machine.state_changed"]
    assert pipeline.committed_batches == committed + 1
    # pending since the deferred batch's reading, not since the one that came with the post
    stored = _stored(pipeline)[TH]
    assert (stored["status"], stored["since"], stored["peak"]) == (
        "pending", (T0 + timedelta(seconds=1)).timestamp(), 90.0)


def test_the_timer_commits_deferred_state(pipeline: Pipeline) -> None:
    pipeline.settings = pipeline.settings.model_copy(update={"tick_s": 0.05})
    pipeline.start()
    try:
        pipeline.submit(Envelope("line", change=_change(0, machine="m2", temp=90.0)))
        deadline = datetime.now(UTC) + timedelta(seconds=10)
        while TH not in _stored(pipeline, "m2"):
            assert datetime.now(UTC) < deadline, "the deferred state was never committed"
            pipeline._stopping.wait(0.02)
        assert _stored(pipeline, "m2")[TH]["status"] == "pending"
    finally:
        pipeline.stop()


def test_stopping_commits_what_is_lazy(pipeline: Pipeline) -> None:
    pipeline.settings = pipeline.settings.model_copy(update={"tick_s": 3600})
    pipeline.start()
    pipeline.submit(Envelope("line", change=_change(0, machine="m3", temp=90.0)))
    pipeline.stop()
    assert pipeline.uncommitted_batches == 1
    assert _stored(pipeline, "m3")[TH]["status"] == "pending"
