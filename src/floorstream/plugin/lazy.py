"""Names a package re-exports but imports on first use (PEP 562's module ``__getattr__``).

A plugin package's ``__init__`` is imported with its entry point; what it re-exports (the
adapter, its config model) should load only when a config uses it, so a daemon pays the
imports (and RSS) of what it runs (issue 16). ``__getattr__ = lazy_exports(__name__, {...})``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, homes: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: ``homes`` maps each name to the submodule
    (relative to ``package``) that defines it."""

    def __getattr__(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{home}"), name)

    return __getattr__
