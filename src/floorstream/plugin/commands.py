"""Subcommands contributed by plugins (``floorstream erp install-triggers``).

The core's command line knows none of them: a plugin's ``register_commands`` hook gets a
:class:`Commands` and adds its own parser, which keeps an integration's tools next to its
code.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from floorstream.plugin.adapter import SourceConfig

if TYPE_CHECKING:  # only the command line builds a Commands, and it has imported argparse
    import argparse

__all__ = ["Commands"]


class Commands:
    """Adds subcommands to ``floorstream``; handed to the ``register_commands`` hook."""

    def __init__(self, subparsers: Any,
                 load_sources: Callable[[argparse.Namespace], Sequence[SourceConfig]],
                 add_config_argument: Callable[[argparse.ArgumentParser], None]) -> None:
        self._subparsers = subparsers
        self._load_sources = load_sources
        self._add_config_argument = add_config_argument
        self.added: list[str] = []

    def add(self, name: str, *, help: str) -> argparse.ArgumentParser:
        """A new subcommand's parser; set ``func`` (``args → exit code``) as its default."""
        parser: argparse.ArgumentParser = self._subparsers.add_parser(name, help=help)
        self.added.append(name)
        return parser

    def add_config_argument(self, parser: argparse.ArgumentParser) -> None:
        """Give ``parser`` the usual ``-c/--config`` option (default ``floorstream.yaml``)."""
        self._add_config_argument(parser)

    def sources(self, args: argparse.Namespace) -> Sequence[SourceConfig]:
        """The validated sources of the config named by ``args.config`` (every problem in it
        is reported the way ``floorstream check`` reports it)."""
        return self._load_sources(args)
