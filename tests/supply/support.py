"""Helpers for the supply-chain tests: sample paths and reading the posts of a run.

The ERP database (``support.erp.create_purchasing``), the daemon (``support.DaemonRunner``),
the HTTP server and waiting come from ``tests/support``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from floorstream.model import Post
from floorstream.store.store import Store
from support import all_posts as _all_posts

HERE = Path(__file__).parent
SAMPLES = HERE.parent / "samples"


def all_posts(store_url: str, source: str | None = None) -> list[Post]:
    """The posts of the ``everyone`` team (of ``source``), oldest first."""
    store = Store.open(store_url)
    try:
        posts = _all_posts(store, "everyone")
    finally:
        store.close()
    return [p for p in posts if source is None or p.source == source]


def inbox_empty(inbox: Path) -> Callable[[], bool]:
    return lambda: not any(p.is_file() for p in inbox.iterdir())
