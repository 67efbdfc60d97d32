"""The ``erp.table`` source's configuration.

A source holds one database URL (one connection pool) and one or more watched tables. The
single-table shorthand (``table:``, ``key:``, ``cursor:`` … at source level, as the demo writes
it) is folded into ``tables:`` before validation, so both spellings give the same model.

``track:`` implies a ``field_change`` detector with the tracked columns and their labels, so a
user never has to configure the same list twice; an explicit ``field_change`` entry wins.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Any, Literal
from zoneinfo import ZoneInfo

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from floorstream.plugin import Duration, SourceConfig, TimeZoneName
from floorstream.plugin.alpha import alpha_out

__all__ = [
    "AuditConfig",
    "ChildConfig",
    "ErpTableConfig",
    "FormatsConfig",
    "LookupConfig",
    "ParentConfig",
    "Site",
    "StatusConfig",
    "TableConfig",
    "parse_erp_version",
    "subject_environment",
]

#: the ERPs whose idioms the adapter knows (``erp_version: odoo 17``); erpnext is frappe
ERP_SYSTEMS = ("odoo", "frappe", "sap")


def parse_erp_version(value: str | None) -> tuple[str | None, str | None]:
    """``"odoo 17"`` / ``"odoo-17.0"`` / ``"ERPNext 15"`` / ``"sap s4"`` → (system, version)."""
    if not value:
        return None, None
    match = re.fullmatch(r"\s*([A-Za-z]+)[\s_/-]*([A-Za-z0-9.]*)\s*", value)
    if match is None:
        raise ValueError(f"erp_version {value!r}: expected '<system> <version>', e.g. "
                         "'odoo 17', 'frappe 15', 'sap s4'")
    system, version = match.group(1).lower(), match.group(2).lower() or None
    system = {"erpnext": "frappe"}.get(system, system)
    if system not in ERP_SYSTEMS:
        raise ValueError(f"erp_version {value!r}: unknown ERP {system!r}; known: odoo, "
                         "frappe (erpnext), sap")
    if version is not None and system in ("odoo", "frappe"):
        version = version.split(".")[0]  # 17.0 → 17, saas~17.2 is not a release to match
    return system, version


def _alpha(value: object) -> object:
    """Jinja filter: SAP ALPHA output conversion (``000001000123`` → ``1000123``), the same
    :func:`~floorstream.plugin.alpha.alpha_out` that ``row_attrs`` and the status mode use,
    so a subject and an attr name one object alike (CHAR padding stripped too)."""
    return alpha_out(value)


def subject_environment() -> ImmutableSandboxedEnvironment:
    """The sandbox ``subject:`` and ``thread:`` templates run in, for the adapter and for
    ``check`` alike; it knows the filter ``alpha`` (SAP ALPHA: leading zeros dropped)."""
    env = ImmutableSandboxedEnvironment(undefined=jinja2.ChainableUndefined, autoescape=False)
    env.filters["alpha"] = _alpha
    return env


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


class ParentConfig(_Strict):
    """A record made from another one of the same table (an amendment, a backorder, a split):
    its posts join the thread of the first record of the chain, and its first post names
    the one it came from."""

    column: str = Field(description="the column pointing at the parent record "
                                    "(amended_from, backorder_id)")
    key: str | None = Field(default=None,
                            description="the parent's column it holds (default: key:; "
                                        "Frappe's amended_from holds the name)")
    verb: Literal["amended", "backorder", "split"] = Field(
        default="backorder", description="how the first post says it: '<parent> amended as "
                                         "<new>', '<new>: backorder of <parent>', "
                                         "'<new> split from <parent>'")


class ChildConfig(_Strict):
    """A child table of a Frappe document, as its tabVersion rows name it."""

    label: str | None = Field(default=None, description="how people call its rows "
                                                        "(default: the field name)")
    name: str | None = Field(default=None,
                             description="the row field that names a row (item_code, "
                                         "operation): shown next to the row number")
    table: str | None = Field(default=None,
                              description="the child table ('tabWork Order Operation'), to "
                                          "read name: of a changed row")
    labels: dict[str, str] = Field(default_factory=dict, description="row field → label")
    track: list[str] = Field(default_factory=list,
                             description="row fields whose changes matter (default: all)")


class StatusConfig(_Strict):
    """``mode: status``: SAP status sets (JEST) diffed per object."""

    object: str = Field(default="objnr", description="JEST column of the object number")
    status: str = Field(default="stat", description="JEST column of the status (I0002, E0001)")
    inactive: str = Field(default="inact", description="JEST column flagging an inactive "
                                                        "status ('X')")
    objects: str | None = Field(
        default="OR", description="object number prefix to watch: OR orders, NP networks, "
                                  "QL inspection lots (None: every object)")
    texts: str | None = Field(default="tj02t",
                              description="system status texts (ISTAT, SPRAS, TXT04, TXT30); "
                                          "shipped English texts when missing")
    user_texts: str | None = Field(default="tj30t",
                                   description="user status texts (STSMA, ESTAT, SPRAS, "
                                               "TXT04, TXT30)")
    change: str | None = Field(
        default="chgnr",
        description="JEST column of the change number (CHGNR) that last switched the status: "
                    "tells one change between two polls from several (whose intermediate "
                    "states were not seen)")
    history: str | None = Field(
        default="jcds",
        description="status change documents (JCDS: OBJNR, STAT, CHGNR, INACT, UDATE, "
                    "UTIME): several changes of an object between two polls are posted one "
                    "by one, in order, when the table has every one of them")
    profiles: str | None = Field(default="jsto",
                                 description="object → status profile (OBJNR, STSMA), to "
                                             "pick the user status text of its profile")


@dataclass(frozen=True)
class Site:
    """What every table of a source shares about its ERP (``TableConfig.site``)."""

    system: str | None = None
    version: str | None = None
    language: str | None = None
    time_zone: tzinfo = field(default_factory=lambda: ZoneInfo("UTC"))
    formats: Any = None  # FormatsConfig; None: Frappe's defaults
    client: str | None = None  # SAP client (MANDT) every query of an SAP table is held to
    interval: float = 5.0  # the source's poll interval: what a post that missed steps says
    #: the plant's display zone (``display.timezone``): datetimes in posts are shown in it,
    #: labelled; None: in the zone the ERP stores them in (``time_zone``; Odoo: UTC)
    display_zone: tzinfo | None = None


class TableConfig(_Strict):
    """One watched table."""

    _site: Site = PrivateAttr(default_factory=Site)

    @property
    def site(self) -> Site:
        """The source's ERP facts (``erp_version``, ``time_zone``, ``language``,
        ``formats``), set when the source is validated."""
        return self._site

    @field_validator("subject", "thread", check_fields=False)
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
    mode: Literal["cursor", "audit", "snapshot", "status"] = Field(
        default="cursor", description="cursor column | change-log table | diff of row hashes "
                                      "| SAP status sets (JEST)")
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
    model: str | None = Field(
        default=None,
        description="the ERP's name of this table's records: Odoo model (mrp.production), "
                    "Frappe DocType (Work Order), SAP object; default audit.object, else "
                    "from the table name (mrp_production, tabWork Order)")
    thread: str | None = Field(
        default=None,
        description="Jinja2 template of the thread a row's posts join, e.g. "
                    "'{{ row.parent }}' for child rows; default the subject (or the first "
                    "record of a parent: chain)")
    parent: ParentConfig | None = Field(
        default=None,
        description="amendments, backorders, splits: the column naming the record this one "
                    "came from (erp_version gives Frappe amended_from and Odoo backorder_id)")
    alpha: list[str] = Field(
        default_factory=list,
        description="SAP ALPHA columns: shown and matched without leading zeros "
                    "(000001000123 → 1000123)")
    row_attrs: dict[str, str] = Field(
        default_factory=dict,
        description="attr → column: the column's stored value (selection key, ALPHA without "
                    "zeros) as an attr of every post of this table, for routes and to match "
                    "other sources")
    selection_keys: dict[str, dict[str, str]] = Field(
        default_factory=dict,
        description="column → {label: key}: labels an audit log wrote (Odoo tracking, in any "
                    "language) mapped back to keys, after the database's own selection "
                    "tables and the shipped ones; an unknown label is kept as it is")
    children: dict[str, ChildConfig] = Field(
        default_factory=dict,
        description="frappe: child-table field (operations, items) → how its rows are named")
    status: StatusConfig = Field(default_factory=StatusConfig,
                                 description="status mode: the SAP status tables")
    deletion_flag: str | None = Field(
        default=None,
        description="column flagging a record deleted (a boolean, 0/1 or an SAP indicator; "
                    "'S' blocks): its changes are posted as deleted / blocked / restored, not "
                    "as field changes. Default: Odoo's active (archived), SAP's LOEKZ, LVORM, "
                    "LOEVM")

    @model_validator(mode="before")
    @classmethod
    def _status_key(cls, data: Any) -> Any:
        """A status table is keyed by its object number column."""
        if isinstance(data, dict) and data.get("mode") == "status" and "key" not in data:
            status: dict[str, Any] = data["status"] if isinstance(data.get("status"), dict) \
                else {}
            data = {**data, "key": status.get("object", "objnr")}
        return data

    @model_validator(mode="after")
    def _mode_needs(self) -> TableConfig:
        if self.mode == "cursor" and not self.cursor:
            raise ValueError(f"table {self.table}: mode cursor needs cursor: (a monotonic "
                             "column such as write_date, modified or id)")
        return self


_TABLE_KEYS = frozenset(TableConfig.model_fields)


class FormatsConfig(_Strict):
    """How the ERP site writes numbers and dates as text (Frappe System Settings): used to
    read tabVersion values back as numbers and dates. Unset keys come from the site's own
    settings (``tabSingles``), else Frappe's defaults."""

    number: str | None = Field(default=None,
                               description="number format: #,###.## (default), #.###,##, "
                                           "# ###.##, #'###.##, #,##,###.##, #,###.### …")
    date: str | None = Field(default=None,
                             description="date format: dd-mm-yyyy (default), mm/dd/yyyy, "
                                         "yyyy-mm-dd, dd.mm.yyyy …")
    time: str | None = Field(default=None, description="time format: HH:mm:ss (default)")

    @field_validator("number")
    @classmethod
    def _number(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"#[^#]{0,2}#*(?:[^#]#+)*", value):
            raise ValueError(f"number format {value!r}: expected a Frappe number format "
                             "such as '#,###.##' or '#.###,##'")
        return value

    @field_validator("date")
    @classmethod
    def _date(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"(dd|mm|yyyy)([^a-z])(dd|mm|yyyy)\2"
                                                  r"(dd|mm|yyyy)", value):
            raise ValueError(f"date format {value!r}: expected dd, mm and yyyy with one "
                             "separator, e.g. 'dd-mm-yyyy' or 'mm/dd/yyyy'")
        return value


#: a missing driver module → what to install (as the store's check says it)
_DRIVER_PACKAGES = {"psycopg": "'floorstream[postgres]'", "pymysql": "'floorstream[mysql]'"}


class ErpTableConfig(SourceConfig):
    """An ERP database and the tables watched in it."""

    erp_version: str | None = Field(
        default=None,
        description="which ERP and release the database is: 'odoo 16|17|18', 'frappe 15' "
                    "(or 'erpnext 15'), 'sap ecc|s4'; selects the shipped value tables and "
                    "field meanings, and each ERP's idioms")
    time_zone: TimeZoneName = Field(
        default="UTC",
        description="IANA zone of the times the ERP stores without one (SAP CDHDR "
                    "UDATE/UTIME, naive cursor columns, Frappe modified/creation: the "
                    "plant's or app server's zone); read there, converted to UTC once; "
                    "not applied on Odoo, which stores UTC")
    language: str | None = Field(
        default=None,
        description="language of labels: Odoo en_US/fr_FR (the first choice when a label is "
                    "mapped back to its key, and the labels shown), SAP E/D/F (status texts)")
    formats: FormatsConfig = Field(default_factory=FormatsConfig,
                                   description="frappe: how the site writes numbers and dates")
    client: str | None = Field(
        default=None, pattern=r"^[0-9A-Za-z]{1,3}$",
        description="SAP client (MANDT, e.g. '100'): every table with a mandt column (JEST, "
                    "AUFK, EKPO, TJ30T, JSTO …) is read for this client only, so a training "
                    "or test client on the same database is never posted as real")

    @field_validator("erp_version")
    @classmethod
    def _erp_version(cls, value: str | None) -> str | None:
        parse_erp_version(value)
        return value

    url: str = Field(description="SQLAlchemy URL of the ERP database")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        """The database as the adapter will open it: a URL, a database SQLAlchemy knows, its
        driver installed. A missing driver is a property of the installation, so ``check``
        says what to install instead of ``run`` restarting the adapter on a
        ModuleNotFoundError every few seconds. Never repeats the URL (it may hold a password).
        """
        try:
            url = make_url(value)
        except (ArgumentError, ValueError):
            raise ValueError("not a database URL; expected e.g. "
                             "postgresql+psycopg://user@host/db or sqlite:///erp.db") from None
        try:
            dialect = url.get_dialect()
        except NoSuchModuleError:
            raise ValueError(f"unknown database {url.drivername!r}") from None
        try:
            dialect.import_dbapi()
        except ImportError as exc:
            module = (exc.name or url.get_driver_name()).split(".")[0]
            raise ValueError(f"its driver {module} is not installed: pip install "
                             f"{_DRIVER_PACKAGES.get(module, module)}") from None
        return value
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
        from floorstream.adapters.erp.idioms import implied_fields

        tables = [*([raw] if "table" in raw else []), *(raw.get("tables") or [])]
        fields: list[str] = []
        labels: dict[str, str] = {}
        try:
            system, version = parse_erp_version(raw.get("erp_version")) \
                if isinstance(raw.get("erp_version"), str | None) else (None, None)
        except ValueError:
            system, version = None, None  # reported by validation
        for table in tables:
            if not isinstance(table, dict):
                continue
            track, named = table.get("track") or [], table.get("labels") or {}
            if isinstance(track, list):
                fields.extend(f for f in track if isinstance(f, str) and f not in fields)
                # the ERP's own meaning of a column (Odoo 17's date_start is the planned
                # start), and the fields of its idioms (Frappe's docstatus: submitted, …)
                extra, meant = implied_fields(table, system, version)
                fields.extend(f for f in extra if f not in fields)
                labels.update({k: v for k, v in meant.items() if k not in labels})
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
        system, version = parse_erp_version(self.erp_version)
        site = Site(system, version, self.language, ZoneInfo(self.time_zone), self.formats,
                    self.client, self.interval)
        for table in self.tables:
            table._site = site
        return self
