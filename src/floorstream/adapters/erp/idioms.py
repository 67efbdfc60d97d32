"""What a table means in its ERP: value labels, field meanings, lifecycles, parents.

One :class:`Idiom` per watched table, built from the source's ``erp_version`` (or the audit
style, which names the ERP too), the table's ``model`` and the data files shipped in
``data/`` (``odoo.json``, ``frappe.json``, ``sap.json``), and completed from the ERP's own
tables when they are there (read once per watcher, never required):

- **Odoo**: selection keys ↔ labels per model, field and language from
  ``ir_model_fields_selection`` (labels as JSON per language from 16 on, ``ir_translation``
  before), whether a field is tracked from ``ir_model_fields.tracking`` /
  ``ir_model.is_mail_thread``; else the release's shipped tables.
- **Frappe**: the site's number/date/time formats from ``tabSingles`` (System Settings), the
  field types of a DocType (and its child tables) from ``tabDocField`` / ``tabCustom
  Field``; docstatus labels and actions (submitted, cancelled) and ``amended_from``.
- **SAP**: nothing per table here (status texts: :mod:`.status`; ALPHA: :mod:`.alpha`).

Nothing in here ever drops a value: an unknown label stays the label, an unknown key the key.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from functools import cache
from importlib import resources
from typing import Any

from sqlalchemy import Connection, bindparam, column, inspect, select, table
from sqlalchemy.exc import DBAPIError

from floorstream.adapters.erp.config import ParentConfig, Site, TableConfig
from floorstream.adapters.erp.formats import SiteFormats, parse_value

__all__ = ["Idiom", "data_file", "implied_fields", "model_of", "odoo_field_specs",
           "untracked_fields"]


@cache
def data_file(name: str) -> dict[str, Any]:
    """A shipped data file, ``data/<name>.json`` (empty when there is none)."""
    path = resources.files("floorstream.adapters.erp").joinpath("data", f"{name}.json")
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _release_key(version: str) -> tuple[int, str]:
    digits = re.match(r"\d+", version)
    return (int(digits.group()) if digits else 0, version)


def odoo_field_specs(model: str | None, version: str | None) -> dict[str, dict[str, Any]]:
    """The shipped facts of an Odoo model's fields as of ``version`` (None: the newest
    release described): ``selection``, ``label``, ``tracking``; fields ``gone`` by then are
    left out. A release older than the oldest described reads as the oldest."""
    spec = data_file("odoo").get("models", {}).get(model or "")
    if not spec:
        return {}
    releases = sorted(data_file("odoo").get("releases", []), key=_release_key)
    wanted = _release_key(version) if version else _release_key(releases[-1] if releases
                                                                 else "0")
    out: dict[str, dict[str, Any]] = {}
    for name, base in spec.get("fields", {}).items():
        resolved = {k: v for k, v in base.items() if k != "from"}
        for since, change in sorted(base.get("from", {}).items(),
                                    key=lambda kv: _release_key(kv[0])):
            if _release_key(since) <= wanted:
                resolved.update(change)
        if not resolved.get("gone"):
            out[name] = resolved
    return out


def _all_odoo_selections(model: str | None) -> dict[str, list[dict[str, str]]]:
    """Every release's selection of each field of ``model``, newest first (a tracking value
    written before an upgrade carries the older release's label)."""
    spec = data_file("odoo").get("models", {}).get(model or "", {})
    out: dict[str, list[dict[str, str]]] = {}
    for name, base in spec.get("fields", {}).items():
        found = [base["selection"]] if "selection" in base else []
        for _since, change in sorted(base.get("from", {}).items(),
                                     key=lambda kv: _release_key(kv[0])):
            if "selection" in change:
                found.insert(0, change["selection"])
        if found:
            out[name] = found
    return out


def model_of(cfg: TableConfig, system: str | None) -> str | None:
    """The ERP's name of the table's records: ``model:``, else the audit log's object, else
    derived from the table name (Odoo ``mrp_production`` → ``mrp.production``, Frappe
    ``tabWork Order`` → ``Work Order``)."""
    if cfg.model:
        return cfg.model
    if cfg.mode == "audit" and cfg.audit.object and cfg.audit.style in ("odoo", "frappe"):
        return cfg.audit.object
    if system == "odoo":
        return cfg.table.replace("_", ".")
    if system == "frappe" and cfg.table.startswith("tab"):
        return cfg.table[3:]
    return None


def implied_fields(raw: Mapping[str, Any], system: str | None, version: str | None
                   ) -> tuple[list[str], dict[str, str]]:
    """For ``implied_detectors``, from a table's raw config: the fields the ERP's idioms add
    to the ``field_change`` detector (Frappe: ``docstatus``, whose change is a submit or a
    cancel) and the labels of its tracked columns by the ERP's meaning (Odoo)."""
    audit: Mapping[str, Any] = raw["audit"] if isinstance(raw.get("audit"), dict) else {}
    style = audit.get("style") if raw.get("mode") == "audit" else None
    system = system or (style if style in ("odoo", "frappe", "sap") else None)
    if system == "frappe":
        return ["docstatus"], {}
    if system != "odoo":
        return [], {}
    model = raw.get("model") or (audit.get("object") if style == "odoo" else None) or \
        str(raw.get("table", "")).replace("_", ".")
    track = [f for f in raw.get("track") or [] if isinstance(f, str)]
    specs = odoo_field_specs(model if isinstance(model, str) else None,
                             version if system == "odoo" else None)
    return [], {f: specs[f]["label"] for f in track
                if isinstance(specs.get(f, {}).get("label"), str)}


def untracked_fields(model: str | None, version: str | None, fields: Iterable[str]
                     ) -> list[str]:
    """Which of ``fields`` the shipped Odoo tables say never reach mail_tracking_value."""
    spec = data_file("odoo").get("models", {}).get(model or "")
    if not spec:
        return []
    if spec.get("mail_thread") is False:
        return list(fields)
    specs = odoo_field_specs(model, version)
    return [f for f in fields if specs.get(f, {}).get("tracking") is False]


class Idiom:
    """One table's ERP knowledge (see the module docstring)."""

    def __init__(self, cfg: TableConfig) -> None:
        site: Site = cfg.site
        self.site = site
        style_system = cfg.audit.style if cfg.mode == "audit" and \
            cfg.audit.style in ("odoo", "frappe", "sap") else None
        self.system = site.system or style_system
        self.version = site.version if site.system == self.system else None
        self.model = model_of(cfg, self.system)
        self.cfg = cfg
        #: column → {stored key → label}: the ERP's own labels (config ``values:`` win)
        self.value_labels: dict[str, dict[str, str]] = {}
        #: column → how people call it, by the ERP's meaning (config ``labels:`` win)
        self.field_labels: dict[str, str] = {}
        #: column → [{label → key}, …] tried in order (config, database, shipped)
        self._keys: dict[str, list[dict[str, str]]] = {}
        self.parent: ParentConfig | None = cfg.parent
        self.split_names: re.Pattern[str] | None = None
        #: frappe: docstatus value → verb (1 submitted, 2 cancelled)
        self.actions: dict[str, str] = {}
        self.formats = SiteFormats()
        #: frappe: (child table field or "") → field → fieldtype
        self.fieldtypes: dict[str, dict[str, str]] = {}
        #: frappe: child table field → child DocType
        self.child_doctypes: dict[str, str] = {}
        self.loaded = False
        self._static()

    # -- what the data files say ------------------------------------------------------------

    def _static(self) -> None:
        cfg = self.cfg
        if self.system == "odoo":
            specs = odoo_field_specs(self.model, self.version)
            for name, spec in specs.items():
                if isinstance(spec.get("selection"), dict):
                    self.value_labels[name] = dict(spec["selection"])
                if isinstance(spec.get("label"), str):
                    self.field_labels[name] = spec["label"]
            model = data_file("odoo").get("models", {}).get(self.model or "", {})
            if self.parent is None and isinstance(model.get("parent"), dict):
                self.parent = ParentConfig(**model["parent"])
            if isinstance(model.get("split_names"), str):
                self.split_names = re.compile(model["split_names"])
        elif self.system == "frappe":
            data = data_file("frappe")
            self.value_labels["docstatus"] = dict(data.get("docstatus", {}))
            self.actions = dict(data.get("actions", {}))
            if self.parent is None and isinstance(data.get("parent"), dict):
                self.parent = ParentConfig(**data["parent"])
            self._set_formats({})
        # the config's own maps come first: selection_keys, then values: read backwards
        for col, mapping in cfg.selection_keys.items():
            self._keys.setdefault(col, []).append(dict(mapping))
        for col, mapping in cfg.values.items():
            self._keys.setdefault(col, []).append({label: key for key, label in mapping.items()})

    def _set_formats(self, stored: Mapping[str, str]) -> None:
        defaults = data_file("frappe").get("defaults", {})
        given = self.site.formats

        def pick(key: str, fallback: str) -> str:
            chosen = getattr(given, key, None) or stored.get(f"{key}_format") or \
                defaults.get(key, fallback)
            return str(chosen)
        self.formats = SiteFormats(number=pick("number", "#,###.##"),
                                   date=pick("date", "dd-mm-yyyy"), time=pick("time", "HH:mm:ss"))

    # -- what the database says (once per watcher) -------------------------------------------

    def load(self, conn: Connection) -> None:
        """Complete the shipped knowledge from the ERP's own tables, when they are there."""
        if self.loaded:
            return
        self.loaded = True
        try:
            if self.system == "odoo" and self.model:
                self._load_odoo(conn)
            elif self.system == "frappe":
                self._load_frappe(conn)
        except DBAPIError:
            conn.rollback()  # a table of another shape: the shipped tables stand
        if self.system == "odoo":
            # last: every release's shipped labels (old tracking rows keep old labels)
            for name, selections in _all_odoo_selections(self.model).items():
                for selection in selections:
                    self._keys.setdefault(name, []).append(
                        {label: key for key, label in selection.items()})

    def _tables(self, conn: Connection) -> set[str]:
        return set(inspect(conn).get_table_names())

    def _load_odoo(self, conn: Connection) -> None:
        present = self._tables(conn)
        if not {"ir_model_fields", "ir_model_fields_selection"} <= present:
            return
        f = table("ir_model_fields", column("id"), column("model"), column("name"))
        s = table("ir_model_fields_selection", column("id"), column("field_id"),
                  column("value"), column("name"))
        rows = conn.execute(select(s.c.id, f.c.name, s.c.value, s.c.name.label("label"))
                            .select_from(s.join(f, f.c.id == s.c.field_id))
                            .where(f.c.model == self.model)).all()
        labels: dict[int, dict[str, str]] = {}  # selection id → lang → label
        where: dict[int, tuple[str, str]] = {}
        for sid, fname, value, label in rows:
            labels[sid] = _languages(label)
            where[sid] = (str(fname), str(value))
        if rows and "ir_translation" in present:  # Odoo ≤ 15: translations apart
            t = table("ir_translation", column("name"), column("res_id"), column("lang"),
                      column("value"))
            stmt = select(t.c.res_id, t.c.lang, t.c.value).where(
                t.c.name == "ir.model.fields.selection,name",
                t.c.res_id.in_(bindparam("ids", expanding=True)))
            for res_id, lang, value in conn.execute(stmt, {"ids": list(labels)}):
                if value:
                    labels.setdefault(res_id, {})[str(lang)] = str(value)
        by_field: dict[str, list[tuple[str, dict[str, str]]]] = {}
        for sid, (fname, value) in where.items():
            by_field.setdefault(fname, []).append((value, labels.get(sid, {})))
        prefer = _language_order(self.site.language)
        for fname, options in by_field.items():
            shown = {}
            reverse: list[dict[str, str]] = [{} for _ in range(len(prefer) + 1)]
            for value, langs in options:
                chosen = _pick(langs, prefer)
                if chosen is not None:
                    shown[value] = chosen
                for lang, label in langs.items():
                    rank = next((i for i, p in enumerate(prefer) if lang.startswith(p)),
                                len(prefer))
                    reverse[rank].setdefault(label, value)
            if shown:
                # the database's labels (in the configured language) are what posts show
                self.value_labels[fname] = {**self.value_labels.get(fname, {}), **shown}
            for mapping in reverse:
                if mapping:
                    self._keys.setdefault(fname, []).append(mapping)

    def tracked_in_database(self, conn: Connection, fields: Iterable[str]
                            ) -> list[str] | None:
        """Odoo: which of ``fields`` the database says are not tracked; None when it cannot
        say (no ``ir_model_fields.tracking``)."""
        wanted = list(fields)
        try:
            present = self._tables(conn)
            if "ir_model" in present and "is_mail_thread" in {
                    c["name"] for c in inspect(conn).get_columns("ir_model")}:
                m = table("ir_model", column("model"), column("is_mail_thread"))
                flag = conn.execute(select(m.c.is_mail_thread)
                                    .where(m.c.model == self.model)).first()
                if flag is not None and not flag[0]:
                    return wanted
            if "ir_model_fields" not in present or "tracking" not in {
                    c["name"] for c in inspect(conn).get_columns("ir_model_fields")}:
                return None
            f = table("ir_model_fields", column("model"), column("name"), column("tracking"))
            rows = dict(conn.execute(select(f.c.name, f.c.tracking).where(
                f.c.model == self.model, f.c.name.in_(bindparam("names", expanding=True))),
                {"names": wanted}).all())
        except DBAPIError:
            conn.rollback()
            return None
        if not rows:
            return None
        return [name for name in wanted if name in rows and not rows[name]]

    def _load_frappe(self, conn: Connection) -> None:
        present = self._tables(conn)
        if "tabSingles" in present:
            singles = table("tabSingles", column("doctype"), column("field"), column("value"))
            stored = {str(k): str(v) for k, v in conn.execute(
                select(singles.c.field, singles.c.value).where(
                    singles.c.doctype == "System Settings",
                    singles.c.field.in_(["number_format", "date_format", "time_format"])))
                      if v}
            self._set_formats(stored)
        if not self.model:
            return
        sources = [(name, parent_col, dt_col) for name, parent_col, dt_col in
                   (("tabDocField", "parent", None), ("tabCustom Field", "dt", None))
                   if name in present]
        if not sources:
            return

        def types_of(doctype: str) -> dict[str, tuple[str, str | None]]:
            out: dict[str, tuple[str, str | None]] = {}
            for name, parent_col, _ in sources:
                t = table(name, column(parent_col), column("fieldname"), column("fieldtype"),
                          column("options"))
                for fieldname, fieldtype, options in conn.execute(
                        select(t.c.fieldname, t.c.fieldtype, t.c.options)
                        .where(t.c[parent_col] == doctype)):
                    out[str(fieldname)] = (str(fieldtype), options)
            return out

        own = types_of(self.model)
        self.fieldtypes[""] = {k: t for k, (t, _) in own.items()}
        for fieldname, (fieldtype, options) in own.items():
            if fieldtype in ("Table", "Table MultiSelect") and options:
                self.child_doctypes[fieldname] = str(options)
                self.fieldtypes[fieldname] = {k: t for k, (t, _) in
                                              types_of(str(options)).items()}

    # -- answers ----------------------------------------------------------------------------

    def key_of(self, col: str, value: Any) -> Any:
        """A label an audit log wrote → its selection key; unknown labels stay as they are."""
        if not isinstance(value, str):
            return value
        maps = self._keys.get(col)
        if not maps:
            return value
        for mapping in maps:
            if value in mapping:
                return mapping[value]
        folded = value.casefold().strip()
        for mapping in maps:
            for label, key in mapping.items():
                if label.casefold() == folded:
                    return key
        return value

    def parse(self, col: str, value: Any, child: str = "") -> Any:
        """Frappe: a tabVersion value (formatted text) as its typed value."""
        if self.system != "frappe":
            return value
        types = self.fieldtypes.get(child)
        return parse_value(value, self.formats, None if types is None else types.get(col))


def _languages(label: Any) -> dict[str, str]:
    """A selection label as lang → text: Odoo 16+ stores JSON per language, older a string
    (the en_US source, translated in ir_translation)."""
    if isinstance(label, dict):
        return {str(k): str(v) for k, v in label.items() if v}
    if isinstance(label, str):
        text = label.strip()
        if text.startswith("{"):
            try:
                loaded = json.loads(text)
            except ValueError:
                return {"en_US": label}
            if isinstance(loaded, dict):
                return {str(k): str(v) for k, v in loaded.items() if v}
        return {"en_US": label}
    return {}


def _language_order(language: str | None) -> list[str]:
    """Languages to prefer, most wanted first: the configured one, then English."""
    order = []
    if language:
        order.append(language.replace("-", "_"))
        order.append(language.replace("-", "_").split("_")[0])
    order += ["en_US", "en"]
    return list(dict.fromkeys(order))


def _pick(langs: Mapping[str, str], prefer: list[str]) -> str | None:
    for wanted in prefer:
        for lang, label in langs.items():
            if lang == wanted or lang.startswith(wanted + "_") or lang == wanted.split("_")[0]:
                return label
    return next(iter(langs.values()), None)
