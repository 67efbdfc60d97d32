"""Builds X12 214 documents in the shape of the real staedi sample, for delay scenarios."""

from __future__ import annotations


def x12_214(control: int, statuses: list[tuple[str, str, str, str]], *, pro: str = "PRO7781",
            po: str = "4500012", scac: str = "ABFS", terminator: str = "~\r\n",
            element: str = "*") -> bytes:
    """``statuses``: (AT7-01 code, AT7-02 reason, CCYYMMDD, HHMM) per LX loop."""
    e = element
    body = [f"ST{e}214{e}{control:04d}", f"B10{e}{pro}{e}SHIP{control}{e}{scac}",
            f"L11{e}{po}{e}PO", f"N1{e}SH{e}ACME GMBH", f"N1{e}CN{e}FLOORSTREAM PLANT"]
    for index, (code, reason, date, time) in enumerate(statuses, start=1):
        body += [f"LX{e}{index}", f"AT7{e}{code}{e}{reason}{e}{e}{e}{date}{e}{time}{e}UT"]
    body.append(f"SE{e}{len(body) + 1}{e}{control:04d}")
    isa = (f"ISA{e}00{e}          {e}00{e}          {e}02{e}{scac:<15}{e}ZZ{e}{'BUYER':<15}"
           f"{e}261125{e}1200{e}U{e}00401{e}{control:09d}{e}0{e}P{e}>")
    segments = [isa, f"GS{e}QM{e}{scac}{e}BUYER{e}20261125{e}1200{e}{control}{e}X{e}004010",
                *body, f"GE{e}1{e}{control}", f"IEA{e}1{e}{control:09d}"]
    return "".join(s + terminator for s in segments).encode()
