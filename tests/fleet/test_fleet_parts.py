"""The fleet's parts on real stores: fair shares, session locks and who holds them, the
commit fence, and SQLite's answer (no fleet)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from floorstream.cli import main
from floorstream.fleet import fleet_problem, fleet_wanted, leases
from floorstream.fleet.balance import Candidate, order, shares
from floorstream.fleet.fence import Fence
from floorstream.fleet.locks import LockSession, holders
from floorstream.model import Post, event_id
from floorstream.store.store import CommitBatch, Store
from support import all_posts, wait_for

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


def test_shares_are_fair_weighted_and_caps_are_passed_on() -> None:
    assert shares([Candidate("a"), Candidate("b"), Candidate("c")], 6) == {
        "a": 2, "b": 2, "c": 2}
    assert shares([Candidate("a"), Candidate("b")], 7) == {"a": 4, "b": 4}
    assert shares([Candidate("a")], 6) == {"a": 6}
    assert shares([Candidate("a", weight=2), Candidate("b")], 6) == {"a": 4, "b": 2}
    # a capped daemon keeps its cap; the others share the rest, none is left unheld
    found = shares([Candidate("a", max_sources=1), Candidate("b"), Candidate("c")], 7)
    assert found == {"a": 1, "b": 3, "c": 3}
    assert sum(found.values()) >= 7
    # more caps than sources can cover: what is left is simply not held
    assert shares([Candidate("a", max_sources=1), Candidate("b", max_sources=1)], 5) == {
        "a": 1, "b": 1}
    assert sorted(order("a", ["x", "y", "z"])) == ["x", "y", "z"]
    assert order("a", ["x", "y", "z"]) == order("a", ["z", "y", "x"])


def test_sqlite_has_no_fleet_and_check_says_so(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path}/fs.db"
    assert not fleet_wanted(url, None) and not fleet_wanted(url, True)
    assert fleet_wanted("postgresql+psycopg://h/db", None)
    assert not fleet_wanted("postgresql+psycopg://h/db", False)
    assert fleet_problem(url, True) is not None and fleet_problem(url, None) is None
    config = tmp_path / "fs.yaml"
    config.write_text(f"store: {url}\nsources: []\n")
    assert main(["check", "--offline", "-c", str(config)]) == 0
    assert "fleet: off (SQLite store: one daemon per database file)" in capsys.readouterr().out
    assert main(["fleet", "-c", str(config)]) == 2
    config.write_text(f"store: {url}\nsources: []\nfleet: {{enabled: true}}\n")
    assert main(["check", "--offline", "-c", str(config)]) == 2
    assert "a fleet needs a PostgreSQL or MariaDB store" in capsys.readouterr().err


def _post(source: str, n: int) -> Post:
    return Post(id=event_id(source, "m", str(n), "machine.state_changed"),
                type="machine.state_changed", source=source, subject="m",
                summary=f"{source} {n}", teams=("general",), occurred_at=T0,
                created_at=T0 + timedelta(seconds=n),
                routing=({"team": "general", "rule": "default"},))


@pytest.mark.parametrize("engine", [pytest.param("pg_url", marks=pytest.mark.postgres),
                                    pytest.param("mysql_url", marks=pytest.mark.mysql)])
def test_locks_end_with_their_session_and_the_fence_strips_a_lost_source(
        engine: str, request: pytest.FixtureRequest) -> None:
    url: str = request.getfixturevalue(engine)
    store = Store.open(url)
    one = LockSession(url, client_timeout=2.0, server_idle=6.0)
    two = LockSession(url, client_timeout=2.0, server_idle=6.0)
    try:
        session = one.connect()
        two.connect()
        assert one.try_lock("source", "presses")
        assert not two.try_lock("source", "presses")  # held: exactly one holder
        with store.engine.connect() as conn:
            assert holders(conn, [("source", "presses"), ("source", "ovens")]) == {
                ("source", "presses"): session, ("source", "ovens"): None}
        one.close()  # the session ends: the lock goes with it, no unlock needed
        wait_for(lambda: two.try_lock("source", "presses"), timeout=5,
                 what="the lock freed with its session")
        # a daemon that took presses at epoch 1 while another has taken it since (epoch 2)
        with store.engine.begin() as conn:
            assert leases.take(conn, "presses", "old") == 1
            assert leases.take(conn, "presses", "new") == 2
        fenced: list[set[str]] = []
        store.fence = Fence("old", ["presses", "ovens"], lambda: {"presses": 1},
                            fenced.append)
        batch = CommitBatch(posts=[_post("presses", 1), _post("other", 2)],
                            deliveries=[(_post("presses", 1).id, "general", "chat")],
                            checkpoints={"presses": "p1", "other": "o1"})
        store.commit(batch)
        assert fenced == [{"presses"}]
        assert [p.source for p in all_posts(store)] == ["other"]  # unmanaged: committed
        assert store.checkpoints() == {"other": "o1"}
        assert store.fence.fenced == 1
        # the holder at the current epoch commits
        store.fence = Fence("new", ["presses"], lambda: {"presses": 2}, fenced.append)
        store.commit(CommitBatch(posts=[_post("presses", 3)], checkpoints={"presses": "p3"}))
        assert store.checkpoints()["presses"] == "p3"
        assert len(fenced) == 1
    finally:
        one.dispose()
        two.dispose()
        store.close()
