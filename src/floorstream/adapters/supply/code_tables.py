"""Code tables (carrier status codes → words) kept as JSON data under ``codes/``.

Each table maps a code to ``[text, kind]`` where kind is floorstream's classification:
``status`` (a milestone), ``estimate`` (a new delivery estimate), ``delayed``, ``delivered`` or
``exception``. A source can add or override entries (its ``codes:`` key) because carriers use
private lists; an unknown code is never an error: it passes through as the message's own text.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

__all__ = ["CodeTables", "Meaning", "load_table"]

KINDS = ("status", "estimate", "delayed", "delivered", "exception")


@dataclass(frozen=True, slots=True)
class Meaning:
    text: str
    kind: str


@cache
def load_table(scheme: str) -> dict[str, Any]:
    """The packaged table ``codes/<scheme>.json`` (empty when there is none)."""
    path = resources.files("floorstream.adapters.supply.codes").joinpath(f"{scheme}.json")
    if not path.is_file():
        return {"codes": {}}
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


class CodeTables:
    """The packaged tables plus a source's overrides."""

    def __init__(self, overrides: Mapping[str, Mapping[str, tuple[str, str]]] | None = None
                 ) -> None:
        self._overrides = {k: dict(v) for k, v in (overrides or {}).items()}

    def status(self, scheme: str, code: str, text: str | None = None, *,
               private: bool = False) -> Meaning:
        """What a status code means; falls back to the message's text, then to the code.

        ``private``: the code is from the sender's own list (EDIFACT agency other than UN), so
        the packaged table of the standard list must not be applied; overrides still are."""
        found = self._overrides.get(scheme, {}).get(code)
        table = load_table(scheme)
        if found is None and not private:
            entry = table["codes"].get(code) or table["codes"].get(code.lower())
            found = (entry[0], entry[1]) if entry else None
        if found is not None:
            return Meaning(found[0], found[1])
        words = (text or "").strip()
        kind = "status"
        for keyword, keyword_kind in table.get("keywords", {}).items():
            if keyword in words.lower():
                kind = keyword_kind
                break
        return Meaning(words or f"status {code}", kind)

    def reason(self, scheme: str, code: str | None) -> Meaning | None:
        """A reason code's words and whether it is ``normal`` or a ``problem``."""
        if not code:
            return None
        found = self._overrides.get(scheme, {}).get(code)
        if found is None:
            entry = load_table(scheme)["codes"].get(code)
            found = (entry[0], entry[1]) if entry else (f"reason {code}", "problem")
        return Meaning(found[0], found[1])
