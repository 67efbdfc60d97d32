"""A request in flight longer than the lease keeps its claim.

Leases are short (6 s) so a crashed worker's lane is free again at once; the worker's process
renews them while it holds the claim. Here the receiver answers one request only after four
leases, while a second delivery service (another daemon) polls the same outbox: it must never
take the lane over — every post arrives once, in commit order.
"""

from __future__ import annotations

import time
from pathlib import Path

from floorstream.delivery.outbox import Outbox
from floorstream.delivery.service import DeliveryService
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
