"""Helpers shared by the subcommands: finding the config, opening the store."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from floorstream.config import Config, load_config
from floorstream.errors import ConfigError, ConfigProblem
from floorstream.plugins import Plugins, build_plugins
from floorstream.store.store import Store

DEFAULT_CONFIG = "floorstream.yaml"


def add_config_arg(parser: argparse.ArgumentParser, required: bool = False) -> None:
    parser.add_argument("-c", "--config", default=os.environ.get("FLOORSTREAM_CONFIG"),
                        required=required and not os.environ.get("FLOORSTREAM_CONFIG"),
                        help="config file (default: $FLOORSTREAM_CONFIG or ./floorstream.yaml)")


def add_store_args(parser: argparse.ArgumentParser) -> None:
    add_config_arg(parser)
    parser.add_argument("--store", help="store URL, instead of the config's store:")


def load(args: argparse.Namespace) -> tuple[Config, Plugins]:
    """The validated config and the plugins it runs with: all installed ones but those its
    ``plugins.disable`` blocks (validated again without them, so a source of a disabled
    plugin is an error, not a crash at start)."""
    if not config_path(args).exists():
        raise ConfigNotFound(args)
    plugins = build_plugins()
    path = args.config or DEFAULT_CONFIG
    config = load_config(path, plugins)
    disable = config.settings.plugins.disable
    if disable:
        plugins = build_plugins(disable=disable)
        config = load_config(path, plugins)
    return config, plugins


def open_store(args: argparse.Namespace) -> Store:
    """The store named by --store, else by the config file."""
    url = getattr(args, "store", None)
    if not url:
        path = args.config or DEFAULT_CONFIG
        if not Path(path).exists():
            url = "sqlite:///floorstream.db"
        else:
            url = load(args)[0].settings.store
    return Store.open(url)


def config_path(args: argparse.Namespace) -> Path:
    """The config file a command reads: ``-c``, else ``$FLOORSTREAM_CONFIG``, else
    ``./floorstream.yaml``."""
    return Path(args.config or DEFAULT_CONFIG)


class ConfigNotFound(ConfigError):
    """There is no config file where the command looked: say how to name one."""

    def __init__(self, args: argparse.Namespace) -> None:
        path = config_path(args)
        if not args.config:
            where = f"no {DEFAULT_CONFIG} in {Path.cwd()}"
        elif args.config == os.environ.get("FLOORSTREAM_CONFIG"):
            where = f"config file {path} (from FLOORSTREAM_CONFIG) not found"
        else:
            where = f"config file {path} not found"
        self.message = f"{where}: pass -c FILE or set FLOORSTREAM_CONFIG"
        super().__init__([ConfigProblem(str(path), "", None, self.message)])
