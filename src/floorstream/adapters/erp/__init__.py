"""``erp.table``: field-level change capture from ERP tables through SQLAlchemy.

Capture modes (cursor, audit, snapshot, and SAP status sets), one connection pool per source,
several tables per source, each ERP's idioms (``erp_version``). See ``docs/erp.md`` for the
guarantee each mode gives.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from floorstream.adapters.erp.adapter import ErpTableAdapter, register_adapters
    from floorstream.adapters.erp.config import (
        AuditConfig,
        ErpTableConfig,
        LookupConfig,
        TableConfig,
    )

__all__ = ["AuditConfig", "ErpTableAdapter", "ErpTableConfig", "LookupConfig", "TableConfig",
           "register_adapters"]

#: where each name lives: imported on first use, so importing a submodule (the phrases, the
#: commands) does not import the adapter (issue 16: a config without ERP sources never does)
_HOME = {"ErpTableAdapter": "adapter", "register_adapters": "adapter", "AuditConfig": "config",
         "ErpTableConfig": "config", "LookupConfig": "config", "TableConfig": "config"}


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
