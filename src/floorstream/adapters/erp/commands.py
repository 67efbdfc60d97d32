"""``floorstream erp install-triggers``: create the change log and its triggers in the ERP DB.

Contributed through the ``register_commands`` hook, so the ERP integration owns its tool and
the core's command line knows nothing of it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from sqlalchemy import create_engine

from floorstream.adapters.erp.config import ErpTableConfig
from floorstream.adapters.erp.triggers import install_triggers, trigger_statements
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
    erp.set_defaults(func=lambda _args: _usage(erp))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def run_install(args: argparse.Namespace, configured: Sequence[SourceConfig]) -> int:
    sources = [s for s in configured if isinstance(s, ErpTableConfig)
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
