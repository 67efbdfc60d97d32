"""IFTSTA status codes: the UN/EDIFACT 4405 table (as data), private lists, keyword order."""

from __future__ import annotations

import pytest

from floorstream.adapters.supply.code_tables import CodeTables, load_table, milestones
from floorstream.adapters.supply.events import Interpreter
from floorstream.adapters.supply.formats.detect import parse_any
from floorstream.adapters.supply.memory import Memory
from floorstream.testing.detectors import phrase


def _iftsta(sts: str) -> bytes:
    """One consignment with one STS, shaped like the real D00B sample."""
    segments = ["UNB+UNOC:3+CARRIER:ZZ+BUYER:ZZ+261125:1200+IF0001", "UNH+1+IFTSTA:D:00B:UN",
                "BGM+23+IF0001+9", "NAD+CA+DBCARGO", "CNI+1+BL4711", "RFF+BM:BL4711", sts,
                "DTM+334:202611250930:203", "LOC+175+DEHAM:139:6:Hamburg", "UNT+9+1",
                "UNZ+1+IF0001"]
    return "".join(s + "'" for s in segments).encode()


def _post(sts: str) -> tuple[str, str, str]:
    interpreter = Interpreter("carrier", memory=Memory(), codes=CodeTables())
    ((event,),) = [interpreter.events(d) for d in parse_any(_iftsta(sts)).documents]
    return event.type, event.severity.label, phrase(event)


@pytest.mark.parametrize(("sts", "expected"), [
    # a code reads as its canonical milestone, the code's own qualifier next to the place
    ("STS+1+364", ("shipment.status_changed", "info",
                   "Carrier DBCARGO: shipment BL4711 arrived (yard, Hamburg, 25 Nov)")),
    ("STS+1+266::6", ("shipment.delayed", "warning",
                      "Carrier DBCARGO: shipment BL4711 delayed — adverse weather")),
    ("STS+1+325", ("shipment.exception", "warning",
                   "Carrier DBCARGO: shipment BL4711 — delivery refused (by the recipient, "
                   "Hamburg, 25 Nov)")),
    # a private list (agency not 6): the UN meaning of 218 ("damaged") must not be applied
    ("STS+1+218::ZZZ:Rail shipment received", (
        "shipment.status_changed", "info",
        "Carrier DBCARGO: shipment BL4711 Rail shipment received (Hamburg, 25 Nov)")),
    # unknown code, text only: a refusal is not a delivery although it says "delivery"
    ("STS+1+X9::ZZZ:DELIVERY REFUSED BY CONSIGNEE", (
        "shipment.exception", "warning",
        "Carrier DBCARGO: shipment BL4711 — DELIVERY REFUSED BY CONSIGNEE (Hamburg, 25 Nov)")),
    ("STS+1+X9::ZZZ:Delivered to consignee", (
        "shipment.delivered", "notice", "Carrier DBCARGO: shipment BL4711 delivered "
        "(Hamburg, 25 Nov)")),
])
def test_iftsta_status_codes(sts: str, expected: tuple[str, str, str]) -> None:
    assert _post(sts) == expected


def test_the_table_is_data_with_only_known_milestones() -> None:
    table = load_table("iftsta")
    assert len(table["codes"]) >= 60
    used = {milestone for milestone, _detail in table["codes"].values()}
    assert used <= set(milestones())
    assert all(code.isdigit() for code in table["codes"])  # 4405 codes are numeric


def test_a_source_override_still_wins_for_a_private_code() -> None:
    codes = CodeTables({"iftsta": {"P": ("departed by rail", "status")}})
    assert codes.status("iftsta", "P", "Rail Departed", private=True).text == "departed by rail"
