"""Two daemons in this process on one store: the share, ``floorstream fleet``, ``/readyz`` and
``/metrics``, a store session killed under a holder, and a clean stop handing over."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from floorstream.cli import main
from floorstream.daemon import Daemon
from floorstream.store import schema
from support import DaemonRunner, wait_for

from .support import FreezableProxy

SOURCES = ["s0", "s1", "s2"]


def _config(url: str, interval: float = 0.2) -> str:
    sources = "".join(f"""
  - name: {name}
    adapter: simulator
    machines: {{m{n}: press}}
    interval: {interval}
""" for n, name in enumerate(SOURCES))
    return f"""
store: {url}
flood: null
fleet: {{takeover: 3}}
sources:{sources}"""


def _held(daemon: Daemon) -> set[str]:
    assert daemon.fleet is not None
    return set(daemon.fleet.held_now())


def _fleet_cli(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    code = main(["fleet", "-c", str(path), "--json"])
    return code, json.loads(capsys.readouterr().out)


def _kill_session(url: str, session: str) -> None:
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": int(session)})
        else:
            conn.execute(text(f"KILL {int(session)}"))
    engine.dispose()


@pytest.mark.parametrize("engine", [pytest.param("pg_url", marks=pytest.mark.postgres),
                                    pytest.param("mysql_url", marks=pytest.mark.mysql)])
def test_two_daemons_share_report_lose_a_session_and_hand_over(
        engine: str, request: pytest.FixtureRequest, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    url: str = request.getfixturevalue(engine)
    text_ = _config(url)
    path = tmp_path / "fs.yaml"
    path.write_text(text_)
    with DaemonRunner(text_, name="a") as a, DaemonRunner(text_, name="b") as b:
        a.start()
        b.start()
        da, db = a.daemon, b.daemon
        assert da is not None and db is not None and da.fleet and db.fleet
        wait_for(lambda: len(_held(da)) + len(_held(db)) == 3
                 and sorted([len(_held(da)), len(_held(db))]) == [1, 2], timeout=20,
                 what="three sources spread 2/1")
        assert not _held(da) & _held(db)
        # each has seen the other live (the view of a daemon's last round)
        wait_for(lambda: da.fleet.report()["live_daemons"] == db.fleet.report()["live_daemons"]
                 == 2, timeout=10, what="both see two live daemons")
        code, report = _fleet_cli(path, capsys)
        assert code == 0 and report["unheld"] == []
        daemons = report["daemons"]
        assert isinstance(daemons, list) and len(daemons) == 2
        by_id = {d["id"]: d for d in daemons}
        for daemon in (da, db):
            row = by_id[daemon.fleet.id]
            assert row["live"] and row["pid"] > 0 and row["version"]
            assert {s["source"] for s in row["sources"]} == _held(daemon)
        ready = da.readiness()
        assert ready["status"] == "ready", ready["reasons"]
        assert set(ready["fleet"]["held"]) == _held(da)
        assert {n for n, s in ready["sources"].items() if s["state"] == "standby"} == (
            set(SOURCES) - _held(da))
        metrics = da.metrics.render()[0].decode()
        assert "floorstream_fleet_live_daemons 2.0" in metrics, [
            line for line in metrics.splitlines() if line.startswith("floorstream_fleet")]
        for name in SOURCES:
            held = 1.0 if name in _held(da) else 0.0
            assert f'floorstream_fleet_source_held{{source="{name}"}} {held}' in metrics

        # the store ends a's lock session (a DBA, a failover of the database): a stops its
        # sources at once; they run again, on one daemon each, from the committed checkpoints
        session = da.fleet.session.session
        assert session is not None
        lost = set(_held(da))
        _kill_session(url, session)
        wait_for(lambda: da.fleet.losses == 1, timeout=10, what="a noticed the lost session")
        wait_for(lambda: len(_held(da)) + len(_held(db)) == 3, timeout=15,
                 what="every source held again")
        assert not _held(da) & _held(db)
        # a's stopped sources report standby once their threads have ended, which can come
        # after b took them over
        wait_for(lambda: all(da.status[s].state == "standby" for s in SOURCES
                             if s not in _held(da)), timeout=10, what="a's lost sources standby")
        assert lost  # a held something when its session went

        # a clean stop hands a's sources to b, and a leaves the fleet
        a.stop()
        wait_for(lambda: _held(db) == set(SOURCES), timeout=15, what="b holds all three")
        code, report = _fleet_cli(path, capsys)
        assert code == 0 and [d["id"] for d in report["daemons"]] == [db.fleet.id]
        assert main(["fleet", "-c", str(path)]) == 0
        out = capsys.readouterr().out
        assert out.startswith("1 live daemons, 3 sources held, 0 held by nobody")
        assert f"{db.fleet.id}  live  host " in out and "  s0 " in out and "lag " in out
        b.stop()
        code, report = _fleet_cli(path, capsys)
        assert code == 1
        assert [u["source"] for u in report["unheld"]] == SOURCES


@pytest.mark.postgres
def test_max_sources_caps_a_daemon_and_the_others_take_the_rest(
        pg_url: str) -> None:
    capped = _config(pg_url).replace("fleet: {takeover: 3}", "fleet: {takeover: 3, "
                                                               "max_sources: 1}")
    with DaemonRunner(capped, name="small") as small, \
            DaemonRunner(_config(pg_url), name="big") as big:
        small.start()
        big.start()
        ds, dbig = small.daemon, big.daemon
        assert ds is not None and dbig is not None
        # without the cap the shares would be 2 and 2; capped, small keeps 1 and big takes 2
        wait_for(lambda: len(_held(ds)) == 1 and len(_held(dbig)) == 2, timeout=20,
                 what="small 1, big 2")
        assert ds.fleet is not None and ds.fleet.share == 1
        big.stop()
        # alone, the capped daemon still holds only one: two sources are held by nobody
        wait_for(lambda: ds.fleet is not None and sorted(ds.fleet.report()["unheld"])
                 == sorted(set(SOURCES) - _held(ds)) and len(ds.fleet.report()["unheld"]) == 2,
                 timeout=20, what="two sources unheld")
        assert len(_held(ds)) == 1


@pytest.mark.parametrize("engine", [pytest.param("pg_url", marks=pytest.mark.postgres),
                                    pytest.param("mysql_url", marks=pytest.mark.mysql)])
def test_a_daemon_cut_off_from_the_store_stops_its_sources_before_another_takes_them(
        engine: str, request: pytest.FixtureRequest) -> None:
    """A network partition between daemon a and the store (a proxy that stops moving bytes,
    sockets open): a halts its sources after 0.3 x takeover without an answer, the server
    ends a's silent session after 0.6 x takeover, and only then b can take them."""
    url: str = request.getfixturevalue(engine)
    parsed = make_url(url)
    proxy = FreezableProxy(parsed.host or "127.0.0.1", parsed.port or 5432)
    via_proxy = parsed.set(host="127.0.0.1", port=proxy.port).render_as_string(False)
    try:
        # readings every 20 ms: a's pipeline is likely mid-commit when the bytes stop, so
        # its transaction holds the lease rows FOR SHARE until the server ends it
        with DaemonRunner(_config(via_proxy, 0.02), name="a") as a, \
                DaemonRunner(_config(url, 0.02), name="b") as b:
            a.start()
            wait_for(lambda: a.daemon is not None and len(_held(a.daemon)) == 3, timeout=20,
                     what="a holds everything")
            b.start()
            da, db = a.daemon, b.daemon
            assert da is not None and db is not None and da.fleet and db.fleet
            wait_for(lambda: sorted([len(_held(da)), len(_held(db))]) == [1, 2], timeout=20,
                     what="three sources spread 2/1")
            cut = _held(da)
            frozen_at = time.time()
            proxy.freeze()
            wait_for(lambda: _held(db) == set(SOURCES), timeout=20,
                     what="b took a's sources over")
            halted_at = da.fleet.last_loss_at
            assert halted_at is not None and halted_at > frozen_at
            taken = _lease_since(url, cut)
            # a had stopped them before the store freed them for b
            assert all(halted_at < at for at in taken.values()), (halted_at, taken)
            assert not da._active  # nothing of a's is processed or acked any more
            proxy.thaw()
            # a comes back, joins again and takes its share back from b
            wait_for(lambda: sorted([len(_held(da)), len(_held(db))]) == [1, 2], timeout=30,
                     what="the share restored")
            assert not _held(da) & _held(db)
            print(f"\n{engine}: halted {halted_at - frozen_at:.2f}s after the cut, taken over "
                  f"{min(taken.values()) - frozen_at:.2f}s after it (takeover 3s); "
                  f"{da.fleet.fence.fenced} of a's commits fenced")
    finally:
        proxy.close()


def _lease_since(url: str, sources: set[str]) -> dict[str, float]:
    engine = create_engine(url)
    t = schema.source_leases
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(t.c.source, t.c.since).where(t.c.source.in_(sources)))
            return {s: since.timestamp() for s, since in rows}
    finally:
        engine.dispose()
