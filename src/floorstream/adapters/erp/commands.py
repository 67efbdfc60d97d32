"""``floorstream erp install-triggers`` / ``uninstall-triggers``: the change log and its
triggers in the ERP database, made and removed.

Contributed through the ``register_commands`` hook, so the ERP integration owns its tool and
the core's command line knows nothing of it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from sqlalchemy import Engine, create_engine, func, inspect, select, table

from floorstream.adapters.erp.auditlogs import LOG_TABLE
from floorstream.adapters.erp.config import ErpTableConfig
from floorstream.adapters.erp.triggers import (
    install_triggers,
    trigger_statements,
    uninstall_statements,
    uninstall_triggers,
)
from floorstream.plugin import Commands, SourceConfig, hookimpl

__all__ = ["register_commands"]


@hookimpl
def register_commands(commands: Commands) -> None:
    erp = commands.add("erp", help="ERP table adapter tools")
    sub = erp.add_subparsers(dest="erp_command", metavar="ACTION")
    install = sub.add_parser("install-triggers",
                             help="create fs_erp_changes and the triggers that fill it")
    commands.add_config_argument(install)
    install.add_argument("--source", help="only this erp.table source")
    install.add_argument("--print", action="store_true", dest="print_only",
                         help="print the DDL instead of running it")
    install.set_defaults(func=lambda args: run_install(args, commands.sources(args)))
    uninstall = sub.add_parser(
        "uninstall-triggers",
        help="remove the triggers (and functions) install-triggers made; --drop-log also "
             "fs_erp_changes")
    commands.add_config_argument(uninstall)
    uninstall.add_argument("--source", help="only the database of this erp.table source")
    uninstall.add_argument("--print", action="store_true", dest="print_only",
                           help="print the DDL instead of running it")
    uninstall.add_argument("--drop-log", action="store_true",
                           help="drop the fs_erp_changes table too (rows not read yet with it)")
    uninstall.set_defaults(func=lambda args: run_uninstall(args, commands.sources(args)))
    erp.set_defaults(func=lambda _args: _usage(erp))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _erp_sources(args: argparse.Namespace, configured: Sequence[SourceConfig]
                 ) -> list[ErpTableConfig]:
    sources = [s for s in configured if isinstance(s, ErpTableConfig)
               and (args.source is None or s.name == args.source)]
    if not sources:
        print(f"floorstream: no erp.table source{' named ' + args.source if args.source else ''}"
              " in the config", file=sys.stderr)
    return sources


def run_install(args: argparse.Namespace, configured: Sequence[SourceConfig]) -> int:
    sources = _erp_sources(args, configured)
    if not sources:
        return 1
    for source in sources:
        engine = create_engine(source.url)
        try:
            if args.print_only:
                for statement in trigger_statements(engine, source.tables):
                    print(statement.rstrip() + ";\n")
                continue
            done = install_triggers(engine, source.tables)
            print(f"{source.name}: {len(done)} trigger statements run on "
                  f"{engine.url.render_as_string(hide_password=True)}")
        finally:
            engine.dispose()
    return 0


def run_uninstall(args: argparse.Namespace, configured: Sequence[SourceConfig]) -> int:
    """Per database (sources sharing one URL are one database): every trigger
    install-triggers made there, whichever table it is on; the log table only with
    --drop-log (then how many rows went with it is said first)."""
    sources = _erp_sources(args, configured)
    if not sources:
        return 1
    done: set[str] = set()
    for source in sources:
        engine = create_engine(source.url)
        try:
            where = engine.url.render_as_string(hide_password=True)
            if where in done:
                continue
            done.add(where)
            logs = sorted({t.audit.table or LOG_TABLE for t in source.tables
                           if t.mode == "audit" and t.audit.style == "floorstream"}
                          | {LOG_TABLE})
            for log in logs:
                if args.print_only:
                    for statement in uninstall_statements(engine, log=log,
                                                          drop_log=args.drop_log):
                        print(statement + ";")
                    continue
                left = _rows(engine, log)
                ran = uninstall_triggers(engine, log=log, drop_log=args.drop_log)
                triggers = sum(1 for s in ran if s.startswith("DROP TRIGGER"))
                print(f"{source.name}: {triggers} triggers removed on {where}")
                if left is not None:
                    if args.drop_log:
                        print(f"{source.name}: {log} dropped ({left:,} rows)")
                    else:
                        print(f"{source.name}: {log} kept ({left:,} rows); --drop-log "
                              "removes it")
        finally:
            engine.dispose()
    return 0


def _rows(engine: Engine, log: str) -> int | None:
    """Rows in the log table, None when there is none."""
    if not inspect(engine).has_table(log):
        return None
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table(log))).scalar_one())

