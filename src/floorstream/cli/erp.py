"""``floorstream erp install-triggers``: create the change log and its triggers in the ERP DB."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from sqlalchemy import create_engine

from floorstream.adapters.erp.config import ErpTableConfig
from floorstream.adapters.erp.triggers import install_triggers, trigger_statements
from floorstream.cli.common import add_config_arg, load


def register(subparsers: Any) -> None:
    erp = subparsers.add_parser("erp", help="ERP table adapter tools")
    sub = erp.add_subparsers(dest="erp_command", metavar="ACTION")
    install = sub.add_parser("install-triggers",
                             help="create fs_erp_changes and the triggers that fill it")
    add_config_arg(install)
    install.add_argument("--source", help="only this erp.table source")
    install.add_argument("--print", action="store_true", dest="print_only",
                         help="print the DDL instead of running it")
    install.set_defaults(func=run_install)
    erp.set_defaults(func=lambda args: (erp.print_help(), 2)[1])


def run_install(args: argparse.Namespace) -> int:
    config, _plugins = load(args)
    sources = [s for s in config.sources if isinstance(s, ErpTableConfig)
               and (args.source is None or s.name == args.source)]
    if not sources:
        print(f"floorstream: no erp.table source{' named ' + args.source if args.source else ''}"
              " in the config", file=sys.stderr)
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
