"""SAP's ALPHA conversion: document and material numbers stored with leading zeros.

SAP keeps purely numeric numbers left-padded to the field's length (AUFNR CHAR12
``000001000123``, VBELN CHAR10 ``0080001234``, MATNR CHAR18/CHAR40) and shows them without
the zeros; an MES, an EDI partner or a spreadsheet writes ``1000123``. floorstream shows and
matches the *canonical* form, the one without zeros (:func:`alpha_out`): posts, subjects,
templates (the ``alpha`` filter) and ``row_attrs`` carry it, so a route or another source
that says ``1000123`` meets the SAP record. :func:`alpha_in` goes back to SAP's stored form
(to query SAP tables by a number another source gave).

Only numbers that are all digits are converted, as SAP does: ``A-100`` stays ``A-100``.

The conversion itself lives in the plugin API (:mod:`floorstream.plugin.alpha`), since the
supply chain's PO matching needs it too and integrations do not import each other.
"""

from __future__ import annotations

from floorstream.plugin.alpha import alpha_in, alpha_out, canonical

__all__ = ["alpha_in", "alpha_out", "canonical"]
