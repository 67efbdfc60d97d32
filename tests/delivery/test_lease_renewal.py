"""A request in flight longer than the lease keeps its claim.

Leases are short (6 s) so a crashed worker's lane is free again at once; the worker's process
renews them while it holds the claim. Here the receiver answers one request only after four
leases, while a second delivery service (another daemon) polls the same outbox: it must never
take the lane over — every post arrives once, in commit order.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import text

from floorstream.delivery.outbox import Claim, Outbox
from floorstream.delivery.service import DeliveryService
from floorstream.model import utcnow
from floorstream.store.store import Store

from .helpers import commit, config, make_post
from .test_lease_recovery import receiver

LEASE = 1.0  # seconds; renewed every 0.25 s

CONFIG = """\
store: {store}
teams: {{line: {{sinks: [chat]}}}}
sinks:
  - {{name: chat, type: webhook, url: "{url}/hook", timeout: 30s}}
"""


def _wait(condition: object, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def test_a_request_longer_than_the_lease_keeps_its_claim(store_url: str,
                                                         tmp_path: Path) -> None:
    seed = Store.open(store_url)
    posts = [make_post(n, "line") for n in range(5)]
    commit(seed, posts, {"line": ["chat"]})
    outbox = Outbox(seed.engine)
    services: list[tuple[DeliveryService, Store]] = []
    with receiver(posts[1].id, hold_for=4 * LEASE) as (url, rec):
        try:
            for _ in range(2):  # two daemons: own engines and workers, one outbox
                cfg, plugins = config(CONFIG.format(store=store_url, url=url))
                store = Store.open(store_url)
                services.append((DeliveryService(cfg, plugins, store, poll=0.02, lease=LEASE),
                                 store))
            for service, _store in services:
                service.start()
            _wait(rec.held.is_set, "the held request")
            _wait(lambda: outbox.counts() == {"delivered": len(posts)}, "all delivered")
            # sentinel: a post committed behind the others in the same lane; once it is
            # delivered, a takeover of the held claim would have sent its rows before it
            marker = make_post(99, "line")
            commit(seed, [marker], {"line": ["chat"]})
            _wait(lambda: outbox.counts() == {"delivered": len(posts) + 1}, "the sentinel")
        finally:
            for service, store in services:
                service.stop()
                store.close()
            seed.close()
    arrived = [a.post_id for a in rec.arrivals]
    assert arrived == [p.id for p in posts] + [marker.id]  # each once, in commit order
    held = next(a for a in rec.arrivals if a.post_id == posts[1].id)
    after = next(a for a in rec.arrivals if a.post_id == posts[2].id)
    assert after.at - held.at >= 4 * LEASE * 0.9  # the lane waited for the held request



def _next_claim(outbox: Outbox) -> Claim:
    found: list[Claim] = []

    def probe() -> bool:
        claim = outbox.claim("chat", {})
        if claim is not None:
            found.append(claim)
        return bool(found)

    _wait(probe, "a claim of the lane", timeout=10)
    return found[0]


def test_a_claim_hung_past_max_hold_gives_the_lane_up(sqlite_url: str) -> None:
    """A sink call that hangs (no timeout) is renewed for ``max_hold`` only; then the lane's
    rows go to the next claim, and the hung worker finishing late leaves that claim alone."""
    store = Store.open(sqlite_url)
    try:
        commit(store, [make_post(n, "line") for n in range(3)], {"line": ["chat"]})
        outbox = Outbox(store.engine, lease=0.4, renew_every=0.1, max_hold=0.3)
        hung = _next_claim(outbox)
        assert len(hung.immediate) == 3
        assert outbox.claim("chat", {}) is None  # held (and renewed) meanwhile
        _wait(lambda: not outbox.holds(hung), "the hung claim's lease to lapse")
        after = _next_claim(outbox)
        assert after.token != hung.token
        assert [r.id for r in after.immediate] == [r.id for r in hung.immediate]
        outbox.finished("chat", "line", hung.token)  # the hung worker returns at last
        assert outbox.holds(after)
        outbox.delivered(hung.token, [(r.id, None) for r in hung.immediate])
        assert outbox.counts() == {"sending": 3}  # a late outcome of a lost claim is ignored
        outbox.delivered(after.token, [(r.id, None) for r in after.immediate])
        outbox.finished("chat", "line", after.token)
        assert outbox.counts() == {"delivered": 3}
    finally:
        store.close()


@pytest.mark.mysql
def test_mariadb_renewal_reads_only_its_rows(mysql_url: str) -> None:
    """The renewal runs every 1.5 s next to concurrent claims: on MariaDB it must go by
    primary key. (Without the hint MariaDB scanned the (status, next_attempt_at) index, and a
    claim's SKIP LOCKED read stepped past rows the renewal had locked: a lane out of order in
    ``test_scale_out.py``.)"""
    store = Store.open(mysql_url)
    try:
        commit(store, [make_post(n, f"team{n % 4}") for n in range(8)],
               {f"team{n}": ["chat"] for n in range(4)})
        outbox = Outbox(store.engine)
        claim = outbox.claim("chat", {})
        assert claim is not None
        ids = [r.id for r in claim.immediate]
        statement = outbox.renewal(claim.token, ids, utcnow())
        sql = str(statement.compile(store.engine, compile_kwargs={"literal_binds": True}))
        with store.engine.connect() as conn:
            plan = conn.execute(text(f"EXPLAIN {sql}")).mappings().one()
        assert plan["key"] == "PRIMARY", plan
        assert outbox.renew({claim.token: ids}) == {claim.token: True}
        outbox.finished(claim.sink, claim.team, claim.token)
    finally:
        store.close()
