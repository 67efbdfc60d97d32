"""Code tables as JSON data under ``codes/``: carrier statuses, purpose codes, units.

**Statuses.** Every status table (``at7``, ``x12_315``, ``iftsta``, ``dcsa``, ``aftership``,
``trackingmore``, ``shippo``, ``easypost``, ``17track``, ``generic``) maps a code to
``[milestone, detail]``: one of the canonical milestones of ``milestones.json`` (in transit,
out for delivery, delivery attempted, delivered, exception…) and the code's own qualifier. A
milestone has one phrase and one kind wherever it came from, so TrackingMore's ``pickup``,
AfterShip's ``OutForDelivery`` and EasyPost's ``out_for_delivery`` all read "out for delivery".
A source can add or override entries (its ``codes:`` key) as ``[milestone, detail]`` or the
older ``[text, kind]``; an unknown code is never an error: it passes through as the message's
own text, classified by the table's keywords.

**Purpose codes** (``x12_353``, ``edifact_1225``): what a document does to its story (original,
change, replace, cancel, ignore). **Units** (``units``): which codes are the same unit and the
fixed conversions between units.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from typing import Any

__all__ = ["AGGREGATORS", "EFFECTS", "KINDS", "CodeTables", "Meaning", "Purpose", "fixed_factor",
           "load_table", "milestones", "unit_id", "unit_words"]

KINDS = ("status", "estimate", "delayed", "delivered", "exception")
#: the status tables of tracking aggregators; their codes fall back to the generic table
AGGREGATORS = ("aftership", "trackingmore", "shippo", "easypost", "17track")
EFFECTS = ("original", "change", "replace", "cancel", "ignore")


@dataclass(frozen=True, slots=True)
class Meaning:
    """What a status says: the words of a post, the kind (event type), the milestone.

    ``detail`` is the code's qualifier ("vessel", "by the recipient"); ``target`` the milestone
    an estimate announces (``delivered`` for an estimated delivery)."""

    text: str
    kind: str
    milestone: str = "other"
    detail: str | None = None
    target: str | None = None


@dataclass(frozen=True, slots=True)
class Purpose:
    """A document's purpose code: its words and its effect on the story (see EFFECTS).
    ``known`` is False for a code in no table (read as an original, with a warning)."""

    code: str
    words: str
    effect: str
    known: bool = True


@cache
def load_table(scheme: str) -> dict[str, Any]:
    """The packaged table ``codes/<scheme>.json`` (empty when there is none)."""
    path = resources.files("floorstream.adapters.supply.codes").joinpath(f"{scheme}.json")
    if not path.is_file():
        return {"codes": {}}
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


@cache
def milestones() -> dict[str, dict[str, Any]]:
    """Canonical milestone id → ``{phrase, kind[, target]}``."""
    table: dict[str, dict[str, Any]] = load_table("milestones")["milestones"]
    return table


@cache
def _units() -> tuple[dict[str, tuple[str, str]], dict[tuple[str, str], float]]:
    data = load_table("units")
    codes = {code.upper(): (unit, words) for code, (unit, words) in data["codes"].items()}
    conversions: dict[tuple[str, str], float] = {}
    for big, smaller in data.get("conversions", {}).items():
        for small, factor in smaller.items():
            conversions[(big, small)] = float(factor)
            conversions[(small, big)] = 1 / float(factor)
    return codes, conversions


@lru_cache(maxsize=1024)
def unit_id(code: str | None) -> str | None:
    """The unit a code means (``EA``, ``PCE`` and ``C62`` are all ``piece``); unknown codes
    are their own unit (upper-cased)."""
    if not code:
        return None
    key = code.strip().upper()
    found = _units()[0].get(key)
    return found[0] if found else key


def unit_words(code: str | None) -> str:
    """``EA`` → ``pcs``: the unit as a post shows it."""
    if not code:
        return ""
    found = _units()[0].get(code.strip().upper())
    return found[1] if found else code.strip().lower()


def fixed_factor(from_unit: str, to_unit: str) -> float | None:
    """1 ``from_unit`` = factor ``to_unit`` for units with a fixed ratio (kg → g), else None."""
    if from_unit == to_unit:
        return 1.0
    return _units()[1].get((from_unit, to_unit))


class CodeTables:
    """The packaged tables plus a source's overrides and its aggregator vocabulary."""

    def __init__(self, overrides: Mapping[str, Mapping[str, Sequence[str | None]]] | None = None,
                 vocabulary: str | None = None) -> None:
        self._overrides = {k: dict(v) for k, v in (overrides or {}).items()}
        self.vocabulary = vocabulary if vocabulary not in (None, "generic") else None
        self._seen: dict[tuple[str, str, str | None, bool], Meaning] = {}

    def status(self, scheme: str, code: str, text: str | None = None, *,
               private: bool = False) -> Meaning:
        """What a status code means (see :meth:`_status`); remembered, codes repeat a lot."""
        key = (scheme, code, text, private)
        found = self._seen.get(key)
        if found is None:
            found = self._status(scheme, code, text, private=private)
            if len(self._seen) < 4_096:
                self._seen[key] = found
        return found

    def _status(self, scheme: str, code: str, text: str | None = None, *,
                private: bool = False) -> Meaning:
        """What a status code means; falls back to the message's text, then to the code.

        ``private``: the code is from the sender's own list (EDIFACT agency other than UN), so
        the packaged table of the standard list must not be applied; overrides still are.
        Plain carrier JSON (``generic``) is read with the source's vocabulary first (its
        aggregator's list), then with the generic table; an aggregator's own table falls back
        to the generic one too."""
        schemes = [scheme]
        if scheme == "generic" and self.vocabulary:
            schemes.insert(0, self.vocabulary)
        elif scheme in AGGREGATORS:
            schemes.append("generic")
        for name in schemes:
            found = self._overrides.get(name, {}).get(code)
            if found is None and not private:
                codes = load_table(name)["codes"]
                found = codes.get(code)
                if found is None and name in (*AGGREGATORS, "generic"):
                    found = codes.get(code.lower()) or _casefold(codes).get(code.lower())
                if found is None and name in AGGREGATORS:  # a sub-status: its main status
                    main = _SUB_STATUS.sub("", code)
                    found = codes.get(main) or _casefold(codes).get(main.lower()) \
                        if main != code else None
                elif found is None:
                    found = codes.get(code.lower())
            if found is not None:
                return _meaning(found[0], found[1] if len(found) > 1 else None, code)
        words = (text or "").strip()
        kind = "status"
        for keyword, keyword_kind in load_table(scheme).get("keywords", {}).items():
            if keyword in words.lower():
                kind = keyword_kind
                break
        if not words and scheme in (*AGGREGATORS, "generic"):
            words = code.replace("_", " ")  # a word already (a feed's own status)
        return Meaning(words or f"status {code}", kind)

    def reason(self, scheme: str, code: str | None) -> Meaning | None:
        """A reason code's words and whether it is ``normal`` or a ``problem``."""
        if not code:
            return None
        found = self._overrides.get(scheme, {}).get(code)
        if found is None:
            entry = load_table(scheme)["codes"].get(code)
            found = (entry[0], entry[1]) if entry else (f"reason {code}", "problem")
        return Meaning(str(found[0]), str(found[1]))

    def purpose(self, scheme: str, code: str | None) -> Purpose:
        """A purpose code's effect; no code at all is an original (CSV, most 214s)."""
        if not code:
            return Purpose("", "original", "original")
        entry = load_table(scheme)["codes"].get(code.strip())
        if entry is None:
            return Purpose(code, "original", "original", known=False)
        return Purpose(code, entry[0], entry[1])


def _casefold(codes: dict[str, Any]) -> dict[str, Any]:
    """The table with lower-cased codes (aggregators spell ``InTransit``, ``in_transit``…)."""
    cached = _CASEFOLDED.get(id(codes))
    if cached is None:
        cached = _CASEFOLDED[id(codes)] = {code.lower(): entry for code, entry in codes.items()}
    return cached


_CASEFOLDED: dict[int, dict[str, Any]] = {}
#: AfterShip ``InTransit_003``, TrackingMore ``transit001``, 17TRACK ``InTransit_PickedUp``
_SUB_STATUS = re.compile(r"(_\w+|\d{3})$")


def _meaning(first: str | None, second: str | None, code: str) -> Meaning:
    """``[milestone, detail]`` (the packaged tables) or ``[text, kind]`` (older overrides)."""
    table = milestones()
    if first in table:
        info = table[first]
        phrase = info["phrase"] or second or f"status {code}"
        return Meaning(str(phrase), str(info["kind"]), str(first),
                       detail=second if info["phrase"] else None, target=info.get("target"))
    if second in table:  # an override [detail, milestone]
        return _meaning(second, first, code)
    kind = second if second in KINDS else "status"
    return Meaning(str(first or f"status {code}"), kind)
