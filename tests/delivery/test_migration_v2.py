"""A v1 store (before the outbox had claim tokens) is upgraded in place, rows kept."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, select

from floorstream.store import schema
from floorstream.store.store import Store


def _v1_metadata() -> MetaData:
    v1 = MetaData()
    for table in schema.metadata.sorted_tables:
        if table.name != "fs_deliveries":
            table.to_metadata(v1)
    Table(
        "fs_deliveries", v1,
        Column("id", schema.Seq, primary_key=True, autoincrement=True),
        Column("post_id", String(32), nullable=False),
        Column("team", String(64), nullable=False),
        Column("sink", String(128), nullable=False),
        Column("status", String(16), nullable=False),
        Column("attempts", Integer, nullable=False, default=0),
        Column("next_attempt_at", schema.UTCDateTime, nullable=False),
        Column("last_error", schema.Text),
        Column("created_at", schema.UTCDateTime, nullable=False),
        Column("delivered_at", schema.UTCDateTime),
        **schema.MYSQL,
    )
    return v1


def test_v1_database_is_upgraded_to_v2(store_url: str) -> None:
    engine = create_engine(store_url)
    now = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
    with engine.begin() as conn:
        v1 = _v1_metadata()
        v1.create_all(conn)
        conn.execute(v1.tables["fs_schema_version"].insert().values(version=1, upgraded_at=now))
        conn.execute(v1.tables["fs_deliveries"].insert().values(
            post_id="p1", team="maintenance", sink="chat", status="pending", attempts=0,
            next_attempt_at=now, created_at=now))
    engine.dispose()

    store = Store.open(store_url)
    try:
        with store.engine.connect() as conn:
            assert (conn.execute(select(schema.schema_version.c.version)).scalar_one()
                    == schema.SCHEMA_VERSION)
            row = conn.execute(select(schema.deliveries)).mappings().one()
        assert (row["post_id"], row["team"], row["status"]) == ("p1", "maintenance", "pending")
        assert row["claim"] is None and row["remote_ref"] is None
        with store.engine.begin() as conn:
            conn.execute(schema.deliveries.update().values(claim="c" * 32, remote_ref="17.5"))
        with store.engine.connect() as conn:
            row = conn.execute(select(schema.deliveries)).mappings().one()
        assert (row["claim"], row["remote_ref"]) == ("c" * 32, "17.5")
    finally:
        store.close()
