"""The ``erp.table`` adapter: one poll loop per source over its watched tables.

Faults are part of the job. A database that goes away is retried with exponential backoff
(tenacity) and, because every watcher restarts from the last position it handed the pipeline,
no row is missed. A tracked column renamed or dropped pauses that table only: one
``source.problem`` post (its id derives from the message, so a restart does not repeat it),
then the schema is looked at again every ``_SCHEMA_RECHECK_S`` and the table resumes by itself
once the column is back. Nothing in here ever crash-loops.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import replace
from typing import Any, ClassVar, Protocol

from sqlalchemy import Engine, create_engine, func, inspect, select, table
from sqlalchemy.exc import DBAPIError, NoSuchTableError
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_when_event_set,
    wait_exponential_jitter,
)

from floorstream.adapters.erp.audit import AuditWatcher
from floorstream.adapters.erp.auditlogs import log_tables
from floorstream.adapters.erp.config import ErpTableConfig, TableConfig
from floorstream.adapters.erp.cursor import CursorWatcher
from floorstream.adapters.erp.lifecycle import lifecycle_column
from floorstream.adapters.erp.listen import Listener
from floorstream.adapters.erp.lock import SourceLock
from floorstream.adapters.erp.prune import prune_changes
from floorstream.adapters.erp.publish import Publisher
from floorstream.adapters.erp.snapshot import SnapshotWatcher
from floorstream.adapters.erp.sqlcommon import (
    CLIENT_COLUMN,
    SchemaProblem,
    client_column,
    present_columns,
    require,
)
from floorstream.adapters.erp.status import StatusWatcher
from floorstream.plugin import (
    Adapter,
    AdapterContext,
    Emitter,
    Progress,
    PruneContext,
    Registry,
    SourceConfig,
    hookimpl,
)

__all__ = ["ErpTableAdapter", "register_adapters"]

_SCHEMA_RECHECK_S = 30.0


class Watcher(Protocol):
    """What the three capture modes have in common."""

    last_query_s: float

    @property
    def position(self) -> Any: ...

    def poll(self, engine: Engine) -> Any: ...


def make_engine(config: ErpTableConfig) -> Engine:
    """One pool per source, pre-pinged so a restarted database is noticed on checkout."""
    if config.url.startswith("sqlite"):
        return create_engine(config.url, pool_pre_ping=True)
    return create_engine(config.url, pool_pre_ping=True, pool_size=config.pool_size,
                         max_overflow=1, pool_recycle=1800)


def needed_columns(cfg: TableConfig) -> list[str]:
    """Columns the config names for this table (key, cursor, tracked, lookups)."""
    names = [cfg.key, *([cfg.cursor] if cfg.cursor else []), *cfg.track, *cfg.lookups,
             *(cfg.columns or []), *([cfg.deletion_flag] if cfg.deletion_flag else [])]
    return list(dict.fromkeys(names))


class ErpTableAdapter(Adapter[ErpTableConfig]):
    name: ClassVar[str] = "erp.table"
    reports_connection: ClassVar[bool] = True  # context.health: polls and the lock

    def __init__(self, config: ErpTableConfig, context: AdapterContext) -> None:
        super().__init__(config, context)
        self.cfg = config
        if context.display_zone is not None:  # datetimes in posts on the plant's clock
            for table_config in config.tables:
                table_config._site = replace(table_config.site, display_zone=context.display_zone)
        saved = _load(context.checkpoint)
        self.sent: dict[str, str] = {t: json.dumps(p) for t, p in saved.items()}
        self.engine: Engine | None = None
        self.watchers: dict[str, Watcher] = {}
        self.columns: dict[str, list[str] | None] = {}
        self.paused: dict[str, float] = {}
        self.query_times: dict[str, list[float]] = {t.table: [] for t in config.tables}
        self.listener: Listener | None = None
        self.lock: SourceLock | None = None
        self.polls = 0

    # -- the loop -----------------------------------------------------------------------

    def run(self, emitter: Emitter, stop: threading.Event) -> None:
        self.engine = engine = make_engine(self.cfg)
        publisher = Publisher(
            self.cfg.name, emitter, dict(self.cfg.attrs), self._checkpoint,
            detector_summary=any(spec.name == "field_change" for spec in self.cfg.detect))
        self.emitter = emitter
        wake = threading.Event()
        if self.cfg.notify and engine.dialect.name == "postgresql":
            self.listener = Listener(self.cfg.url, wake, stop)
            self.listener.start()
        # under a fleet's lease (docs/fleet.md) this daemon alone runs the source: the
        # ERP-side lock would only repeat it
        if (self.cfg.single_poller and engine.dialect.name == "postgresql"
                and not self.context.leased):
            self.lock = SourceLock(self.cfg.url, self.cfg.name, retry=self.cfg.standby_retry)
        tables = {t.table: t for t in self.cfg.tables}
        due = dict.fromkeys(tables, 0.0)
        standing_by = False
        retrying = Retrying(
            retry=retry_if_exception_type(DBAPIError),
            wait=wait_exponential_jitter(multiplier=0.5, max=30.0),
            stop=stop_when_event_set(stop), sleep=lambda s: _wait(stop, s), reraise=False,
            before_sleep=self._unavailable)
        while not stop.is_set():
            if self.lock is not None and not self.lock.held():
                if self.lock.error:
                    self.context.health.disconnected(f"database unreachable: {self.lock.error}")
                else:
                    self.context.health.connected()  # reachable; another daemon polls
                if not standing_by:
                    standing_by = True
                    self.watchers.clear()
                    self.context.log.info(
                        "erp_standby", error=self.lock.error,
                        reason="the database is unreachable" if self.lock.error else
                        "another daemon polls this source (advisory lock)")
                stop.wait(0.25)
                continue
            if standing_by:
                standing_by = False
                self._take_over()
            woke = wake.is_set()
            wake.clear()
            now = time.monotonic()
            todo = [name for name in tables if woke or due[name] <= now]
            for name in todo:
                if stop.is_set():
                    break
                started = time.monotonic()
                for attempt in retrying:
                    with attempt:
                        # after an outage the lock may have gone to another daemon
                        if self.lock is None or self.lock.held():
                            self._poll(tables[name], engine, publisher)
                            self.context.health.connected()
                # the next poll is due an interval after this one started, not after it
                # ended: otherwise every poll's own duration adds to the worst-case latency
                interval = tables[name].interval or self.cfg.interval
                due[name] = max(started + interval, time.monotonic() + interval / 10)
            while not stop.is_set() and not wake.is_set():
                remaining = min(due.values()) - time.monotonic()
                if remaining <= 0:
                    break
                wake.wait(min(remaining, 0.25))

    def _poll(self, cfg: TableConfig, engine: Engine, publisher: Publisher) -> None:
        name = cfg.table
        if name in self.paused:
            if time.monotonic() < self.paused[name]:
                return
            try:
                self._columns(cfg, engine, refresh=True)
                if self._schema_problem(cfg, engine) is not None:
                    raise SchemaProblem(name)
            except SchemaProblem:
                self.paused[name] = time.monotonic() + _SCHEMA_RECHECK_S
                return
            self.context.log.info("erp_table_resumed", table=name)
            del self.paused[name]
        try:
            watcher = self._watcher(cfg, engine)
            self.polls += 1
            progress = self._progress(cfg, watcher, engine)
            rows = watcher.poll(engine)
            publisher.publish(cfg, self._timed(name, watcher, rows))
            if progress is not None:
                watcher.on_rows = None  # type: ignore[attr-defined]
                if progress.lines or not progress.fields["snapshot"]:
                    progress.finish()  # a snapshot poll that took long, or any first start
            position = json.dumps(watcher.position, separators=(",", ":"))
            if self.sent.get(name) != position:
                # e.g. the audit log's baseline, or a cursor window re-read without news
                publisher.mark(name, watcher.position)
        except SchemaProblem as exc:
            self._pause(cfg, str(exc))
        except DBAPIError:
            self.watchers.pop(name, None)  # restart from what was handed to the pipeline
            problem = self._schema_problem(cfg, engine)
            if problem is None:
                raise  # the database itself: retried with backoff
            self._pause(cfg, problem)
        except NoSuchTableError as exc:
            self._pause(cfg, f"table {exc} does not exist")

    def _unavailable(self, state: RetryCallState) -> None:
        """A poll failed on the database itself (down, missing, refusing us): retried with
        backoff, and the source reported disconnected until a poll goes through."""
        exc = state.outcome.exception() if state.outcome else None
        orig = getattr(exc, "orig", None) or exc
        error = " ".join(str(orig).split()) if orig is not None else "unknown error"
        self.context.log.warning("erp_database_unavailable", attempt=state.attempt_number,
                                 error=str(exc) if exc is not None else None)
        self.context.health.disconnected(f"database unreachable: {error}")

    def _take_over(self) -> None:
        """This daemon holds the lock after standing by: resume from what the previous
        poller committed, not from the checkpoint read at start."""
        saved = _load(self.context.committed_checkpoint())
        self.sent = {t: json.dumps(p, separators=(",", ":")) for t, p in saved.items()}
        self.watchers.clear()
        self.context.log.info("erp_took_over", tables=sorted(self.sent))

    def _progress(self, cfg: TableConfig, watcher: Watcher, engine: Engine) -> Progress | None:
        """Progress lines (done / total, rate, ETA every 5 s) for a first start of a cursor
        or snapshot table (the whole table is read) and for every snapshot poll (logged only
        when one takes longer than that). Plugins log through ``context.log``."""
        first = not getattr(watcher, "initialized", True)
        snapshot = cfg.mode == "snapshot"
        if cfg.mode == "audit" or not (first or snapshot) or not hasattr(watcher, "on_rows"):
            return None
        total: int | None = None
        if snapshot and not first:
            total = len(getattr(watcher, "hashes", {})) or None  # the last snapshot's rows
        else:
            try:
                with engine.connect() as conn:
                    total = conn.execute(select(func.count()).select_from(
                        table(cfg.table))).scalar_one()
            except DBAPIError:
                total = None
        event = "erp_baseline_progress" if first else "erp_snapshot_progress"
        progress = Progress(self.context.log, event, total, table=cfg.table, mode=cfg.mode,
                            initial=cfg.initial if first else None, snapshot=not first)
        watcher.on_rows = progress.advance
        return progress

    def _timed(self, name: str, watcher: Watcher, rows: Any) -> Any:
        yield from rows
        times = self.query_times[name]
        times.append(watcher.last_query_s)
        del times[:-1000]

    # -- watchers, columns, schema ------------------------------------------------------

    def _watcher(self, cfg: TableConfig, engine: Engine) -> Watcher:
        known = self.watchers.get(cfg.table)
        if known is not None:
            return known
        watcher: Watcher
        saved = json.loads(self.sent[cfg.table]) if cfg.table in self.sent else None
        if cfg.mode == "audit":
            self.columns.pop(cfg.table, None)

            def optional() -> list[str] | None:
                try:
                    return self._columns(cfg, engine, required=cfg.audit.style == "floorstream")
                except SchemaProblem:
                    return None
            if cfg.audit.style == "floorstream":
                optional()  # a dropped tracked column is a problem here too
            watcher = AuditWatcher(cfg, saved, optional)
        else:
            self._columns(cfg, engine, refresh=True)

            def columns() -> list[str]:
                found = self._columns(cfg, engine)
                assert found is not None
                return found
            watcher = (CursorWatcher(cfg, saved, columns) if cfg.mode == "cursor"
                       else StatusWatcher(cfg, saved, columns) if cfg.mode == "status"
                       else SnapshotWatcher(cfg, saved, columns))
        self.watchers[cfg.table] = watcher
        return watcher

    def _columns(self, cfg: TableConfig, engine: Engine, *, refresh: bool = False,
                 required: bool = True) -> list[str] | None:
        if not refresh and self.columns.get(cfg.table):
            return self.columns[cfg.table]
        with engine.connect() as conn:
            present = present_columns(conn, cfg.table)
        if required:
            require(present, needed_columns(cfg), cfg.table)
        # a record's archive or deletion flag is read even when columns: leaves it out
        life = lifecycle_column(cfg.site.system, present) if cfg.columns is not None else None
        chosen = [c for c in present if cfg.columns is None or c in needed_columns(cfg)
                  or (cfg.site.client and c.lower() == CLIENT_COLUMN) or c == life]
        self.columns[cfg.table] = chosen
        return chosen

    def _schema_problem(self, cfg: TableConfig, engine: Engine) -> str | None:
        if cfg.mode == "audit":
            # a change log that is not there is the config's or the ERP's problem, not the
            # database being down: say which table, instead of retrying as an outage
            with engine.connect() as conn:
                inspector = inspect(conn)
                missing = [t for t in log_tables(cfg) if not inspector.has_table(t)]
            if missing:
                return (f"audit log table {missing[0]} does not exist (audit style "
                        f"{cfg.audit.style} of table {cfg.table})")
        if cfg.mode == "audit" and cfg.audit.style != "floorstream":
            return None
        try:
            self._columns(cfg, engine, refresh=True)
        except SchemaProblem as exc:
            return str(exc)
        return None

    def _pause(self, cfg: TableConfig, message: str) -> None:
        self.watchers.pop(cfg.table, None)
        self.paused[cfg.table] = time.monotonic() + _SCHEMA_RECHECK_S
        self.context.log.error("erp_table_paused", table=cfg.table, problem=message)
        digest = hashlib.blake2b(message.encode(), digest_size=6).hexdigest()
        self.emitter.problem(cfg.table, f"{message}; polling of {cfg.table} is paused until "
                             "the schema is fixed", position=f"{cfg.table}:schema:{digest}",
                             fields={"table": cfg.table})

    # -- checkpoints --------------------------------------------------------------------

    def _checkpoint(self, table: str, position: Any) -> str:
        self.sent[table] = json.dumps(position, separators=(",", ":"))
        if len(self.sent) == 1:  # the common case, once per emitted row: no sorting, no loop
            return '{"v":1,"tables":{' + json.dumps(table) + ":" + self.sent[table] + "}}"
        parts = ",".join(f"{json.dumps(t)}:{p}" for t, p in sorted(self.sent.items()))
        return '{"v":1,"tables":{' + parts + "}}"

    def close(self) -> None:
        if self.listener is not None:
            self.listener.join()
        if self.lock is not None:
            self.lock.release()
        if self.engine is not None:
            self.engine.dispose()

    @classmethod
    def prune(cls, config: Any, context: PruneContext) -> int:
        """Delete the ``fs_erp_changes`` rows this source consumed (see :mod:`.prune`)."""
        assert isinstance(config, ErpTableConfig)
        return prune_changes(config, context)

    @classmethod
    def check(cls, config: SourceConfig) -> list[str]:
        """Warn about tables or columns that are missing and cursors without an index."""
        assert isinstance(config, ErpTableConfig)
        warnings = []
        engine = make_engine(config)
        try:
            inspector = inspect(engine)
            for cfg in config.tables:
                if not inspector.has_table(cfg.table):
                    warnings.append(f"table {cfg.table} does not exist")
                    continue
                present = {c["name"] for c in inspector.get_columns(cfg.table)}
                missing = [c for c in needed_columns(cfg) if c not in present]
                if missing and not (cfg.mode == "audit" and cfg.audit.style != "floorstream"):
                    warnings.append(f"table {cfg.table} has no column {', '.join(missing)}")
                if client_column(present) and not config.client and cfg.mode != "audit":
                    warnings.append(
                        f"table {cfg.table} has SAP's client column {client_column(present)} "
                        "but the source names no client: the rows of every client (production, "
                        "training, test) are read and posted as one; set client: (e.g. '100')")
                if cfg.mode == "audit":
                    warnings += [f"audit log table {log} of table {cfg.table} does not exist"
                                 f" (audit style {cfg.audit.style})"
                                 for log in log_tables(cfg) if not inspector.has_table(log)]
                header = cfg.audit.header_table or "change_header"
                if (cfg.mode == "audit" and cfg.audit.style == "sap" and not config.client
                        and inspector.has_table(header)):
                    held = [c["name"] for c in inspector.get_columns(header)
                            if c["name"].lower() in ("mandant", "mandt")]
                    if held:
                        warnings.append(
                            f"change documents {header} have SAP's client column {held[0]} "
                            "but the source names no client: every client's changes "
                            "(production, training, test) are posted as one; set client: "
                            "(e.g. '100')")
                if cfg.mode == "cursor" and cfg.cursor in present:
                    firsts = {ix["column_names"][0] for ix in inspector.get_indexes(cfg.table)
                              if ix.get("column_names")}
                    pk = inspector.get_pk_constraint(cfg.table).get("constrained_columns") or []
                    if pk:
                        firsts.add(pk[0])
                    if cfg.cursor not in firsts:
                        warnings.append(
                            f"table {cfg.table}: no index starts with the cursor column "
                            f"{cfg.cursor}; every poll scans the table (CREATE INDEX ON "
                            f"{cfg.table} ({cfg.cursor}, {cfg.key}))")
        finally:
            engine.dispose()
        return warnings


def _wait(stop: threading.Event, seconds: float) -> None:
    stop.wait(seconds)


def _load(checkpoint: str | None) -> dict[str, Any]:
    if not checkpoint:
        return {}
    try:
        data = json.loads(checkpoint)
    except ValueError:
        return {}
    tables = data.get("tables") if isinstance(data, dict) else None
    return tables if isinstance(tables, dict) else {}


@hookimpl
def register_adapters(registry: Registry[type[Adapter[Any]]]) -> None:
    registry.add(ErpTableAdapter)

