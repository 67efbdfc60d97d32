"""Stories (design.md §9): every post has a thread and a relation to the earlier posts of it —
new, update, resolution, retraction — kept in the store (indexed), upgraded from schema v3,
and shown as Activity Streams 2.0 Announce / Update / Undo with ``context`` and
``inReplyTo``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import inspect, text

from floorstream.model import Event, Post, Severity
from floorstream.store import schema
from floorstream.store.migrations import MIGRATIONS, current_version
from floorstream.store.store import CommitBatch, Store

T0 = datetime(2026, 11, 2, 6, 0, tzinfo=UTC)


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = Store.open(store_url)
    try:
        yield opened
    finally:
        opened.close()


def _post(n: int, *, subject: str = "PO 4500012", thread: str = "", relation: str = "new",
          refers_to: str | None = None, source: str = "supply") -> Post:
    return Post.model_validate({
        "id": f"{n:032x}", "type": "shipment.status_changed", "source": source,
        "subject": subject, "summary": f"post {n}", "severity": Severity.INFO,
        "teams": ("purchasing",), "occurred_at": T0 + timedelta(minutes=n),
        "created_at": T0 + timedelta(minutes=n), "thread": thread, "relation": relation,
        "refers_to": refers_to, "routing": ({"team": "purchasing", "rule": "r"},)})


def test_an_event_defaults_to_a_new_story_in_its_subjects_thread() -> None:
    event = Event.create(type="machine.state_changed", source="presses", subject="press-07",
                         position="1", occurred_at=T0)
    assert (event.thread, event.relation, event.refers_to, event.clears) == (
        None, "new", None, None)
    post = _post(1, subject="press-07")
    assert post.thread == "press-07"  # the subject when the producer chose none


def test_clears_is_a_resolution_and_other_relations_are_explicit() -> None:
    resolved = Event.create(type="machine.online", source="m", subject="press-07",
                            position="2", occurred_at=T0, clears="abc")
    assert (resolved.relation, resolved.refers_to, resolved.clears) == ("resolution", "abc",
                                                                        "abc")
    update = Event.create(type="shipment.delayed", source="s", subject="PO 1", position="3",
                          occurred_at=T0, relation="update", refers_to="def",
                          thread="shipment 00123")
    assert (update.relation, update.refers_to, update.clears, update.thread) == (
        "update", "def", None, "shipment 00123")
    with pytest.raises(ValueError, match="unknown relation"):
        Event.create(type="x.y", source="s", subject="a", position="1", occurred_at=T0,
                     relation="edit")  # type: ignore[arg-type]
    # the older constructor spelling still reads as a resolution
    older = Post.model_validate({**_post(4).model_dump(exclude={"relation", "refers_to"}),
                                 "clears": "abc"})
    assert (older.relation, older.refers_to, older.clears) == ("resolution", "abc", "abc")


@pytest.mark.parametrize(("relation", "activity_type"), [
    ("new", "Announce"), ("update", "Update"), ("resolution", "Announce"),
    ("retraction", "Undo")])
def test_activity_streams_type_context_and_in_reply_to(relation: str,
                                                       activity_type: str) -> None:
    refers = None if relation == "new" else "f" * 32
    activity = _post(7, thread="shipment 00123", relation=relation,
                     refers_to=refers).as_activity()
    assert activity["type"] == activity_type
    assert activity["context"] == "urn:floorstream:thread:shipment 00123"
    assert activity["floorstream:relation"] == relation
    if refers is None:
        assert "inReplyTo" not in activity
    else:
        assert activity["inReplyTo"] == f"urn:floorstream:post:{refers}"
    if relation == "retraction":  # Undo takes back the earlier activity itself
        assert activity["object"]["id"] == f"urn:floorstream:post:{refers}"


def test_a_thread_spans_sources_and_replies_are_found_by_index(store: Store) -> None:
    first = _post(1, thread="PO 4500012", source="erp", subject="PO 4500012")
    shipped = _post(2, thread="PO 4500012", source="supply", subject="ASN 77")
    moved = _post(3, thread="PO 4500012", relation="update", refers_to=shipped.id)
    other = _post(4, thread="PO 999", subject="PO 999")
    cancelled = _post(5, thread="PO 4500012", relation="retraction", refers_to=shipped.id)
    batch = CommitBatch()
    batch.posts.extend([first, shipped, moved, other, cancelled])
    store.commit(batch)
    story = store.thread("PO 4500012")
    assert [p.id for p in story] == [first.id, shipped.id, moved.id, cancelled.id]
    assert [(p.relation, p.refers_to) for p in story][2:] == [
        ("update", shipped.id), ("retraction", shipped.id)]
    assert [p.id for p in store.replies(shipped.id)] == [moved.id, cancelled.id]
    assert store.post(cancelled.id) == cancelled.model_copy(
        update={"teams": cancelled.teams})
    with store.engine.connect() as conn:
        indexes = {i["name"]: i["column_names"] for i in inspect(conn).get_indexes("fs_posts")}
    assert indexes["ix_fs_posts_thread"] == ["thread", "seq"]
    assert indexes["ix_fs_posts_refers_to"] == ["refers_to"]


def test_a_v3_store_is_upgraded_and_its_clears_become_resolutions(store_url: str) -> None:
    store = Store.open(store_url)
    try:
        with store.engine.begin() as conn:
            # back to what v3 looked like: no thread columns, the resolved post in clears
            conn.execute(text("DROP INDEX ix_fs_posts_thread" + (
                " ON fs_posts" if conn.dialect.name in ("mysql", "mariadb") else "")))
            conn.execute(text("DROP INDEX ix_fs_posts_refers_to" + (
                " ON fs_posts" if conn.dialect.name in ("mysql", "mariadb") else "")))
            for column in ("thread", "relation", "refers_to"):
                conn.execute(text(f"ALTER TABLE fs_posts DROP COLUMN {column}"))
            conn.execute(text(
                "INSERT INTO fs_posts (id, type, source, subject, severity, summary, tags, "
                "links, fields, routing, clears, occurred_at, created_at) VALUES "
                "('a1', 'machine.online', 'presses', 'press-07', 10, 'back', '[]', '{}', "
                "'{}', '[]', 'a0', :t, :t)"), {"t": T0.replace(tzinfo=None)})
            conn.execute(schema.schema_version.update().values(version=3))
        assert 4 in MIGRATIONS
    finally:
        store.close()
    upgraded = Store.open(store_url)
    try:
        with upgraded.engine.connect() as conn:
            assert current_version(conn) == schema.SCHEMA_VERSION
        (post,) = upgraded.thread("press-07")
        assert (post.id, post.relation, post.refers_to, post.clears) == (
            "a1", "resolution", "a0", "a0")
    finally:
        upgraded.close()
