"""Keys both MTConnect sources share, and the detectors they imply.

A source of machine tools wants alarms and cycles, not a post per axis sample, so both
sources add ``mtconnect.condition`` and ``mtconnect.cycle`` to their ``detect:`` list unless
the user lists them already (with their own options) or turns them off
(``conditions: false``, ``cycles: false``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field

from floorstream.plugin import SourceConfig

__all__ = ["MTConnectSource"]

_IMPLIED = (("conditions", "mtconnect.condition"), ("cycles", "mtconnect.cycle"))


class MTConnectSource(SourceConfig):
    conditions: bool = Field(default=True, description="add the mtconnect.condition detector "
                                                       "(alarm posts and their clears)")
    cycles: bool = Field(default=True, description="add the mtconnect.cycle detector "
                                                   "(\"cycle complete, part N\" posts)")
    max_document: int = Field(default=16 * 1024 * 1024, ge=1024,
                              description="bytes a document (or an SHDR line) may have; "
                                          "a larger one is quarantined")

    @classmethod
    def implied_detectors(cls, raw: Mapping[str, Any]) -> list[dict[str, Any]]:
        detect = raw.get("detect") or []
        named = {e if isinstance(e, str) else next(iter(e)) for e in detect
                 if isinstance(e, str) or (isinstance(e, dict) and len(e) == 1)}
        return [{name: {}} for key, name in _IMPLIED
                if raw.get(key, True) is not False and name not in named]
