"""How many sources each live daemon of a fleet may hold: its fair share.

Pure arithmetic, the same in every daemon, so all of them agree without talking to each
other: a daemon's share is ``ceil(n_sources * weight / total_weight)`` over the live daemons
that run the same config. A daemon capped by ``max_sources`` keeps its cap and the rest is
shared among the others by weight again, so a cap never leaves a source unheld while another
daemon has room. Shares add up to at least ``n_sources`` (the ceiling), so every source finds
a holder; none holds more than its share while the others are alive.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["Candidate", "order", "shares"]


@dataclass(frozen=True)
class Candidate:
    """A live daemon as the balance sees it."""

    id: str
    weight: int = 1
    max_sources: int | None = None


def shares(daemons: Sequence[Candidate], sources: int) -> dict[str, int]:
    """Each daemon's share of ``sources`` (see the module's docstring)."""
    result: dict[str, int] = {}
    pool = sorted(daemons, key=lambda d: d.id)
    remaining = sources
    while pool:
        total = sum(d.weight for d in pool)
        capped = [d for d in pool if d.max_sources is not None
                  and d.max_sources < math.ceil(remaining * d.weight / total)]
        if not capped:
            for d in pool:
                result[d.id] = math.ceil(remaining * d.weight / total)
            break
        for d in capped:
            assert d.max_sources is not None
            result[d.id] = d.max_sources
            remaining = max(0, remaining - d.max_sources)
        pool = [d for d in pool if d not in capped]
    return result


def order(daemon: str, sources: Iterable[str]) -> list[str]:
    """The order in which ``daemon`` tries free sources: a hash of (daemon, source), so two
    daemons looking for work at the same moment mostly ask for different sources first."""
    return sorted(sources, key=lambda s: hashlib.blake2b(f"{daemon}\x1f{s}".encode(),
                                                         digest_size=8).digest())
