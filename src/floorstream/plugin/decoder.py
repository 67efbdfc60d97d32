"""The decoder contract."""

from __future__ import annotations

from typing import Any, ClassVar


class Decoder:
    """Turns one raw payload into a record.

    Subclasses set ``name`` and override :meth:`decode`. A payload that cannot be decoded must
    raise :class:`floorstream.errors.DecodeError` with a message a person can act on; the
    adapter then quarantines the raw bytes with that message.
    """

    name: ClassVar[str]
    #: the largest payload accepted; bigger ones are quarantined without being parsed.
    max_bytes: ClassVar[int] = 1_048_576

    def decode(self, payload: bytes) -> Any:
        raise NotImplementedError
