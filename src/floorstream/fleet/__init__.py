"""A fleet of daemons on one PostgreSQL or MariaDB store (docs/fleet.md, design.md §10).

Each source is leased to exactly one daemon through a session lock on the store
(:mod:`.locks`), with a row per daemon (:mod:`.membership`) and per lease (:mod:`.leases`)
saying who holds what since when; sources spread over the live daemons by a fair share
(:mod:`.balance`); commits of a holder that lost its lease are fenced (:mod:`.fence`); the
thread that runs it all is :class:`.coordinator.Fleet`. A SQLite store has no fleet: one
daemon per file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import make_url

if TYPE_CHECKING:
    from floorstream.fleet.coordinator import Fleet

__all__ = ["FLEET_BACKENDS", "Fleet", "fleet_problem", "fleet_wanted"]

#: store backends a fleet runs on (session locks that end with their session)
FLEET_BACKENDS = ("postgresql", "mysql", "mariadb")


def fleet_wanted(store: str, enabled: bool | None) -> bool:
    """Whether a daemon on ``store`` with ``fleet.enabled`` = ``enabled`` runs the fleet."""
    backend = make_url(store).get_backend_name()
    if enabled is None:
        return backend in FLEET_BACKENDS
    return enabled and backend in FLEET_BACKENDS


def fleet_problem(store: str, enabled: bool | None) -> str | None:
    """Why ``fleet.enabled: true`` cannot be had on ``store`` (``check`` reports it)."""
    backend = make_url(store).get_backend_name()
    if enabled and backend not in FLEET_BACKENDS:
        return (f"fleet.enabled is true but the store is {backend}: a fleet needs a "
                "PostgreSQL or MariaDB store (SQLite: one daemon per database file)")
    return None


def __getattr__(name: str) -> Any:
    """``Fleet`` on first use: a daemon asks :func:`fleet_wanted` (and ``check`` asks
    :func:`fleet_problem`) of every store, but only a fleet daemon needs the coordinator,
    its locks, leases and membership."""
    if name == "Fleet":
        from floorstream.fleet.coordinator import Fleet

        return Fleet
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
