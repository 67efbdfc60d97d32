"""``erp.table``: field-level change capture from ERP tables through SQLAlchemy.

Three capture modes (cursor, audit, snapshot), one connection pool per source, several tables
per source. See ``docs/erp.md`` for the guarantee each mode gives.
"""

from __future__ import annotations

from floorstream.adapters.erp.adapter import ErpTableAdapter, register_adapters
from floorstream.adapters.erp.config import AuditConfig, ErpTableConfig, LookupConfig, TableConfig

__all__ = ["AuditConfig", "ErpTableAdapter", "ErpTableConfig", "LookupConfig", "TableConfig",
           "register_adapters"]
