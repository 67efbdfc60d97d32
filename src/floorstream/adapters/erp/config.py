"""The ``erp.table`` source's configuration.

A source holds one database URL (one connection pool) and one or more watched tables. The
single-table shorthand (``table:``, ``key:``, ``cursor:`` … at source level, as the demo writes
it) is folded into ``tables:`` before validation, so both spellings give the same model.

``track:`` implies a ``field_change`` detector with the tracked columns and their labels, so a
user never has to configure the same list twice; an explicit ``field_change`` entry wins.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from floorstream.plugin import Duration, SourceConfig

__all__ = ["AuditConfig", "ErpTableConfig", "LookupConfig", "TableConfig", "subject_environment"]


def subject_environment() -> ImmutableSandboxedEnvironment:
    """The sandbox ``subject:`` templates run in, for the adapter and for ``check`` alike."""
    return ImmutableSandboxedEnvironment(undefined=jinja2.ChainableUndefined, autoescape=False)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LookupConfig(_Strict):
    """Resolve a foreign key to the name people know (``product_id`` 7 → "M8 bolt")."""

    table: str | None = Field(default=None, description="table holding the names")
    key: str = Field(default="id", description="its key column")
    name: str = Field(default="name", description="its display column")
    sql: str | None = Field(default=None,
                            description="or a query with a :value parameter returning one name")
    cache_size: int = Field(default=10_000, ge=1, description="names kept in memory")
    ttl: Duration = Field(default=300.0, description="how long a cached name is trusted")

    @model_validator(mode="after")
    def _one_way(self) -> LookupConfig:
        if (self.table is None) == (self.sql is None):
            raise ValueError("a lookup needs either table: (with key:/name:) or sql:")
        return self


class AuditConfig(_Strict):
    """Where the change log lives and which shape it has."""

    style: Literal["floorstream", "sap", "odoo", "frappe"] = Field(
        default="floorstream",
        description="floorstream (installed triggers), sap (CDHDR/CDPOS), "
                    "odoo (mail_message + mail_tracking_value), frappe (tabVersion)")
    table: str | None = Field(
        default=None,
        description="log table; default fs_erp_changes | change_item | mail_tracking_value "
                    "| tabVersion")
    header_table: str | None = Field(
        default=None, description="sap: change_header (CDHDR); odoo: mail_message")
    object: str | None = Field(
        default=None,
        description="which object the log rows must be about: sap OBJECTCLAS, odoo model "
                    "(mrp.production), frappe ref_doctype (Work Order); floorstream: the table")


class TableConfig(_Strict):
    """One watched table."""

    @field_validator("subject", check_fields=False)
    @classmethod
    def _subject_compiles(cls, value: str | None) -> str | None:
        """A broken ``subject:`` template is a config error, not a source that dies at start."""
        if value:
            try:
                subject_environment().from_string(value)
            except jinja2.TemplateAssertionError as exc:  # an unknown filter or test
                raise ValueError(f"subject template: {exc.message}") from None
            except jinja2.TemplateSyntaxError as exc:
                raise ValueError(f"subject template syntax error: {exc.message}") from None
        return value

    table: str = Field(description="the table (or view) to watch")
    key: str = Field(default="id", description="primary-key column")
    mode: Literal["cursor", "audit", "snapshot"] = Field(
        default="cursor", description="cursor column | change-log table | diff of row hashes")
    cursor: str | None = Field(
        default=None, description="cursor mode: monotonic column (write_date, modified, id)")
    overlap: Duration = Field(
        default=5.0,
        description="cursor: re-read this far behind the cursor (seconds, or cursor units "
                    "for numeric cursors) to catch late commits; audit: how long a gap in "
                    "the log ids is waited for")
    track: list[str] = Field(default_factory=list, description="columns whose changes matter")
    labels: dict[str, str] = Field(default_factory=dict, description="column → how people "
                                                                      "call it")
    values: dict[str, dict[str, str]] = Field(
        default_factory=dict, description="column → {stored value → label}; unknown values "
                                          "are shown raw")
    lookups: dict[str, LookupConfig] = Field(default_factory=dict,
                                             description="foreign-key column → name lookup")
    columns: list[str] | None = Field(default=None,
                                      description="columns to read (default: all)")
    subject: str | None = Field(default=None,
                                description="Jinja2 template of the subject, e.g. "
                                            "'{{ row.name }}'; default table:key")
    initial: Literal["baseline", "post"] = Field(
        default="baseline",
        description="first start: record the current rows silently, or post each as created")
    mass_update: int = Field(
        default=1000, ge=0,
        description="this many rows changed by one statement make one summary post (0: off)")
    batch: int = Field(default=1000, ge=1, description="rows per query")
    interval: Duration | None = Field(default=None, description="poll interval for this table")
    datetime_format: str = Field(default="%-d %b %Y %H:%M",
                                 description="strftime format of datetimes in posts")
    date_format: str = Field(default="%-d %b %Y", description="strftime format of dates")
    audit: AuditConfig = Field(default_factory=AuditConfig,
                               description="audit mode: the change log to read")

    @model_validator(mode="after")
    def _mode_needs(self) -> TableConfig:
        if self.mode == "cursor" and not self.cursor:
            raise ValueError(f"table {self.table}: mode cursor needs cursor: (a monotonic "
                             "column such as write_date, modified or id)")
        return self


_TABLE_KEYS = frozenset(TableConfig.model_fields)


class ErpTableConfig(SourceConfig):
    """An ERP database and the tables watched in it."""

    url: str = Field(description="SQLAlchemy URL of the ERP database")
    tables: list[TableConfig] = Field(default_factory=list,
                                      description="watched tables (or the shorthand table:)")
    interval: Duration = Field(default=5.0, description="poll interval")
    notify: bool = Field(default=True,
                         description="PostgreSQL: LISTEN for the installed triggers' NOTIFY "
                                     "and poll at once")
    pool_size: int = Field(default=2, ge=1, description="connections kept open")
    single_poller: bool = Field(
        default=True,
        description="PostgreSQL: one active poller per source across daemons (advisory lock); "
                    "the other daemons stand by and take over when it dies")
    standby_retry: Duration = Field(default=2.0,
                                    description="how often a standby daemon asks for the lock")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if "table" in data:
            single = {k: data.pop(k) for k in list(data) if k in _TABLE_KEYS}
            data["tables"] = [single, *list(data.get("tables") or [])]
        return data

    @classmethod
    def implied_detectors(cls, raw: Mapping[str, Any]) -> list[dict[str, Any]]:
        """``field_change`` over the tables' ``track:`` columns, unless the user named it."""
        tables = [*([raw] if "table" in raw else []), *(raw.get("tables") or [])]
        fields: list[str] = []
        labels: dict[str, str] = {}
        for table in tables:
            if not isinstance(table, dict):
                continue
            track, named = table.get("track") or [], table.get("labels") or {}
            if isinstance(track, list):
                fields.extend(f for f in track if isinstance(f, str) and f not in fields)
            if isinstance(named, dict):
                labels.update({k: v for k, v in named.items() if isinstance(v, str)})
        detect = raw.get("detect") or []
        named_specs = {e if isinstance(e, str) else next(iter(e)) for e in detect
                       if isinstance(e, str) or (isinstance(e, dict) and len(e) == 1)}
        if not fields or "field_change" in named_specs:
            return []
        return [{"field_change": {"fields": fields, "labels": labels}}]

    @model_validator(mode="after")
    def _some_table(self) -> ErpTableConfig:
        if not self.tables:
            raise ValueError("name at least one table (table: or tables:)")
        names = [t.table for t in self.tables]
        if len(set(names)) != len(names):
            raise ValueError("a table is listed twice")
        return self
