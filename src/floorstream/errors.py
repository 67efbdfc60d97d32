"""Every exception floorstream raises on purpose.

::

    FloorstreamError
    ├── ConfigError            the YAML does not validate (carries every problem at once)
    ├── PluginError            a plugin cannot be loaded or registered
    │   ├── DuplicateNameError two plugins register the same name
    │   └── UnknownNameError   a config names an adapter/detector/decoder/sink nobody registered
    ├── DecodeError            an input cannot be decoded or validated (→ quarantine)
    ├── StoreError             the store is unusable (schema too new, unreachable)
    │   └── SchemaVersionError
    └── DeliveryError          a sink could not deliver: retry with backoff
        ├── RetryAfter         retry after the delay the service asked for (HTTP 429)
        └── PermanentDeliveryError  do not retry: the request itself is wrong

The delivery errors are defined with the sink contract (:mod:`floorstream.plugin.sink`).

Catch ``FloorstreamError`` to handle all of them; ``DecodeError`` is what adapters and decoders
raise for bad input so the pipeline can quarantine it instead of crashing.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ConfigError",
    "ConfigProblem",
    "DecodeError",
    "DuplicateNameError",
    "FloorstreamError",
    "PluginError",
    "SchemaVersionError",
    "StoreError",
    "UnknownNameError",
]


class FloorstreamError(Exception):
    """Base of every floorstream error."""


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong in a config file: where it is and what was expected."""

    file: str
    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        key = self.path or "<top level>"
        return f"{where}: {key}: {self.message}"


class ConfigError(FloorstreamError):
    """The configuration is invalid; ``problems`` lists every issue found, not only the first."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class PluginError(FloorstreamError):
    """A plugin could not be loaded or registered."""


class DuplicateNameError(PluginError):
    """Two plugins registered the same name in one registry."""


class UnknownNameError(PluginError):
    """A name was looked up that nobody registered; the message suggests close matches."""

    def __init__(self, kind: str, name: str, known: list[str], suggestion: str | None) -> None:
        self.kind, self.name, self.known, self.suggestion = kind, name, known, suggestion
        hint = f"; did you mean {suggestion!r}?" if suggestion else ""
        listed = ", ".join(known) or "none"
        super().__init__(f"unknown {kind} {name!r}{hint} (known: {listed})")


class DecodeError(FloorstreamError):
    """Input that cannot be decoded or validated; the pipeline quarantines it."""


class StoreError(FloorstreamError):
    """The store cannot be used."""


class SchemaVersionError(StoreError):
    """The database was written by a newer floorstream than this one."""
