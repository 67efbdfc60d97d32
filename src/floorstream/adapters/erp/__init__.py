"""``erp.table``: field-level change capture from ERP tables through SQLAlchemy.

Capture modes (cursor, audit, snapshot, and SAP status sets), one connection pool per source,
several tables per source, each ERP's idioms (``erp_version``). See ``docs/erp.md`` for the
guarantee each mode gives.
"""

from __future__ import annotations

from floorstream.adapters.erp.adapter import ErpTableAdapter, register_adapters
from floorstream.adapters.erp.config import AuditConfig, ErpTableConfig, LookupConfig, TableConfig

__all__ = ["AuditConfig", "ErpTableAdapter", "ErpTableConfig", "LookupConfig", "TableConfig",
           "register_adapters"]
