"""`floorstream deliveries [--failed]` and `deliveries retry ID|--all-failed`."""

from __future__ import annotations

import pytest

from floorstream.cli import main
from floorstream.delivery.outbox import Outbox
from floorstream.store.store import Store

from .helpers import commit, make_post


def test_list_failed_and_retry(sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    store = Store.open(sqlite_url)
    posts = [make_post(n, "maintenance") for n in range(3)]
    commit(store, posts, {"maintenance": ["chat"]})
    outbox = Outbox(store.engine)
    claim = outbox.claim("chat", {})
    assert claim is not None and len(claim.immediate) == 3
    first, second, third = claim.immediate
    outbox.delivered(claim.token, [(first.id, None)])
    outbox.fail(claim.token, [second.id, third.id], "HTTP 404 from chat (permanent error)")
    outbox.finished(claim.sink, claim.team)  # as a worker does when its claim is done

    assert main(["deliveries", "--store", sqlite_url]) == 0
    out = capsys.readouterr().out
    assert "delivered: 1  failed: 2" in out and "maintenance post 0" in out
    assert main(["deliveries", "--store", sqlite_url, "--failed"]) == 0
    out = capsys.readouterr().out
    assert "maintenance post 0" not in out and "HTTP 404 from chat" in out

    assert main(["deliveries", "--store", sqlite_url, "retry", str(second.id)]) == 0
    assert "queued 1" in capsys.readouterr().out
    assert outbox.counts() == {"delivered": 1, "failed": 1, "pending": 1}
    assert main(["deliveries", "--store", sqlite_url, "retry", "--all-failed"]) == 0
    assert outbox.counts() == {"delivered": 1, "pending": 2}
    again = outbox.claim("chat", {})
    assert again is not None and [r.id for r in again.immediate] == [second.id, third.id]
    assert main(["deliveries", "--store", sqlite_url, "retry"]) == 2
    store.close()
