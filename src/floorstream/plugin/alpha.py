"""SAP's ALPHA conversion: document and material numbers stored with leading zeros.

SAP keeps purely numeric numbers left-padded to the field's length (AUFNR CHAR12
``000001000123``, VBELN CHAR10 ``0080001234``, EBELN CHAR10 ``0004500012``, MATNR
CHAR18/CHAR40) and shows them without the zeros; an MES, an EDI partner or a spreadsheet writes
``1000123``. Two sources that must meet on a number compare the *canonical* form, the one
without zeros (:func:`alpha_out`); :func:`alpha_in` goes back to SAP's stored form (to query
SAP tables by a number another source gave).

Part of the plugin API because several integrations need it (the ERP tables, the supply
chain's PO matching) and integrations do not import each other.

Only numbers that are all digits are converted, as SAP does: ``A-100`` stays ``A-100``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["alpha_in", "alpha_out", "canonical"]


def alpha_out(value: Any) -> Any:
    """SAP ``CONVERSION_EXIT_ALPHA_OUTPUT``: ``000001000123`` → ``1000123``; ``0000`` →
    ``0``; anything not all digits (``A-100``, None, a number) is returned unchanged, apart
    from the blanks a CHAR field is padded with."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.isdigit():
        return text.lstrip("0") or "0"
    return text


def alpha_in(value: Any, length: int) -> Any:
    """SAP ``CONVERSION_EXIT_ALPHA_INPUT``: ``1000123`` with length 12 →
    ``000001000123``; not all digits (or too long) → unchanged."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.isdigit() and len(text) <= length:
        return text.zfill(length)
    return text


def canonical(value: Any) -> str:
    """The form two sources compare on: :func:`alpha_out` as text (None → "")."""
    out = alpha_out(value)
    return "" if out is None else str(out)
