"""One bad input affects itself only, even when the store is what refuses it: a post
PostgreSQL will not take (a NUL in a text column) is quarantined with the database's reason,
the rest of its batch is committed, and the pipeline goes on (a sentinel published afterwards
is posted)."""

from __future__ import annotations

import pytest

import floorstream
from floorstream.model import Event
from floorstream.processing import Envelope
from floorstream.store.store import Store
from floorstream.testing.detectors import T0


def _event(subject: str, n: int, **fields: object) -> Event:
    return Event.create(type="po.approved", source="erp", subject=subject, position=str(n),
                        occurred_at=T0, fields={"summary": f"{subject} approved", **fields})


@pytest.mark.postgres
def test_a_post_postgresql_refuses_is_quarantined_and_its_batch_committed(
        pg_url: str) -> None:
    with floorstream.open(store=pg_url) as stream:
        batch = [Envelope("erp", event=_event("PO 1", 1)),
                 Envelope("erp", event=_event("PO \x00 2", 2)),  # text columns refuse NUL
                 Envelope("erp", event=_event("PO 3", 3))]
        posts = stream.pipeline.run_now(batch)
        assert sorted(p.subject for p in posts) == ["PO 1", "PO 3"]
        sentinel = stream.publish(source="erp", subject="PO 4", type="po.approved",
                                  summary="sentinel", key="s")
        assert sentinel is not None and sentinel.summary == "sentinel"
        store: Store = stream.store
        (item,) = store.quarantined(source="erp")
        assert item.error.startswith("the store refused this post: ")
        assert "0x00" in item.error or "NUL" in item.error
        assert b"PO \\u0000 2" in item.raw  # the post itself, kept
        assert item.context["subject"] == "PO \\x00 2"
        assert store.count_posts("erp") == 3

