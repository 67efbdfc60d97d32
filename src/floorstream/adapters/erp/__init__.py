"""``erp.table``: field-level change capture from ERP tables through SQLAlchemy.

Capture modes (cursor, audit, snapshot, and SAP status sets), one connection pool per source,
several tables per source, each ERP's idioms (``erp_version``). See ``docs/erp.md`` for the
guarantee each mode gives.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from floorstream.plugin import lazy_exports

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

__getattr__ = lazy_exports(__name__, _HOME)
